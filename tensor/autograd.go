package tensor

// SetRequiresGrad marks t as a leaf whose gradient Backward keeps in t.Grad.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	t.requiresGrad = on
	return t
}

// RequiresGrad reports whether t is a leaf that keeps its gradient.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// OwnsGrad reports whether the backward function of out owns out's
// gradient: it may write over it and hand it on as an input's, since
// nothing reads it after the call unless out is a leaf that keeps it.
func OwnsGrad(out *Tensor) bool { return !out.requiresGrad }

// NeedsGrad reports whether a gradient must flow to t: it is a leaf that
// requires one, or the recorded result of an operation that does.
func (t *Tensor) NeedsGrad() bool { return t.requiresGrad || t.node != nil }

// Record makes out the result of an operation on inputs. backward receives
// out's gradient and must add each input's share into GradOf(input) for the
// inputs that NeedsGrad. Nothing is recorded when no input needs a gradient,
// so inference builds no graph.
func Record(out *Tensor, backward func(grad *Tensor), inputs ...*Tensor) {
	for _, in := range inputs {
		if in != nil && in.NeedsGrad() {
			out.node = &node{inputs: inputs, backward: backward}
			return
		}
	}
}

// GradOf returns t's gradient buffer, allocating zeros on first use, for a
// backward function to accumulate into.
func GradOf(t *Tensor) *Tensor {
	if t.Grad == nil {
		t.Grad = ZerosLike(t)
	}
	return t.Grad
}

// ZeroGrad drops t's accumulated gradient.
func (t *Tensor) ZeroGrad() { t.Grad = nil }

// Detach returns a tensor sharing t's data that is outside any graph.
func (t *Tensor) Detach() *Tensor {
	t.plain()
	t.own = false
	return &Tensor{shape: t.shape, data: t.data}
}

// Backward computes the gradient of t with respect to every tensor that
// requires one and that t was computed from, seeding t's gradient with ones
// (for a scalar loss: dloss/dloss = 1). Leaf gradients accumulate across
// calls; the graph and intermediate gradients are released.
func (t *Tensor) Backward() {
	seed := ZerosLike(t)
	seed.Fill(1)
	t.BackwardWith(seed)
}

// BackwardWith is Backward with an explicit seed gradient of t's shape.
func (t *Tensor) BackwardWith(seed *Tensor) { t.backward(seed, false) }

// BackwardReleasing is Backward for a training step that reads no
// intermediate result after it: each result's values are recycled (see
// Empty) as soon as the backward pass is past the last function that reads
// them, as PyTorch frees saved tensors. The memory of the forward pass then
// serves the gradients and the next step's forward pass, where otherwise it
// would stay allocated until the collector ran, which lets the heap grow to
// twice what is live. Only float32 host results are recycled, and only those
// whose array no View or Detach shares (a module's kept gates are such
// copies); t itself, leaves and tensors that keep their gradient are kept.
// Reading a released tensor panics with a *ShapeError.
func (t *Tensor) BackwardReleasing() {
	seed := ZerosLike(t)
	seed.Fill(1)
	t.backward(seed, true)
}

// backward runs the graph below t in reverse order. A tensor's values are
// needed by the backward functions of the operations that read it, which
// come before it in that order, and by its own; so once its own has run,
// release may recycle them.
func (t *Tensor) backward(seed *Tensor, release bool) {
	if !SameShape(seed, t) {
		Panicf("BackwardWith: seed %v for tensor %v", seed.shape, t.shape)
	}
	order := topoOrder(t)
	GradOf(t).CopyFrom(seed)
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		if n.Grad != nil && n.node != nil {
			n.node.backward(n.Grad)
		}
		if n.node != nil {
			inputs := n.node.inputs
			n.node = nil
			if !n.requiresGrad {
				if n.Grad != nil {
					recycleGrad(n.Grad, inputs)
				}
				n.Grad = nil
				if release && n != t {
					n.releaseData()
				}
			}
		}
	}
	if release {
		trimRecycled()
	}
}

// Inputs returns the tensors the operation that computed t read, in the
// order it recorded them (some may be nil), or nil for a leaf, a result
// outside any graph, or a result whose backward pass has run. With Graph it
// lets a caller inspect a recorded computation, as PyTorch's grad_fn does:
// gpucheck pairs the results of two engines' graphs through them.
func (t *Tensor) Inputs() []*Tensor {
	if t.node == nil {
		return nil
	}
	return t.node.inputs
}

// Graph lists t and every tensor a gradient flows to from t (the results
// and leaves of its recorded graph), each after its inputs.
func (t *Tensor) Graph() []*Tensor { return topoOrder(t) }

// topoOrder lists the graph below t with every tensor after its inputs,
// iteratively so deep networks cannot overflow the stack.
func topoOrder(t *Tensor) []*Tensor {
	var order []*Tensor
	seen := map[*Tensor]bool{t: true}
	type frame struct {
		t    *Tensor
		next int
	}
	stack := []frame{{t: t}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.t.node != nil && f.next < len(f.t.node.inputs) {
			in := f.t.node.inputs[f.next]
			f.next++
			if in != nil && !seen[in] && in.NeedsGrad() {
				seen[in] = true
				stack = append(stack, frame{t: in})
			}
			continue
		}
		order = append(order, f.t)
		stack = stack[:len(stack)-1]
	}
	return order
}
