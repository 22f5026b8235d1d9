package tensor

import "sync"

// A training step allocates every feature map and every gradient anew;
// zeroing fresh memory, and collecting the old, then costs about a tenth
// of a CPU step. The gradients of intermediate results die at a known
// moment, when the backward pass has handed them on, and so do the results
// themselves under BackwardReleasing, so the backward pass returns their
// buffers here, and Empty hands them to operations that overwrite every
// element of their result. Only float32 host buffers are recycled, and at
// most recycleCap bytes are held (FreeRecycled lets them go): enough for the
// feature maps of a CIFAR ResNet-110 step at batch 128.
var recycleCap = 1 << 30 // a variable so that a test can lower it

var recycled struct {
	sync.Mutex
	bufs  map[int][][]float32 // by length
	bytes int
}

// Empty returns a tensor of the given type and shape whose elements are
// arbitrary, for an operation that sets every one of them: it may reuse a
// buffer an earlier backward pass released instead of zeroing a new one.
func Empty(dt DType, shape ...int) *Tensor {
	checkShape(shape)
	if dt == Float32 {
		if buf := takeRecycled(Numel(shape)); buf != nil {
			return &Tensor{shape: append([]int(nil), shape...), data: buf, own: true}
		}
	}
	return New(dt, shape...)
}

// EmptyLike is Empty with t's type and shape, on t's device (where memory
// is not recycled).
func EmptyLike(t *Tensor) *Tensor {
	if t.Device() != nil {
		return ZerosLike(t)
	}
	return Empty(t.DType(), t.shape...)
}

func takeRecycled(n int) []float32 {
	recycled.Lock()
	defer recycled.Unlock()
	list := recycled.bufs[n]
	if len(list) == 0 {
		return nil
	}
	buf := list[len(list)-1]
	recycled.bufs[n] = list[:len(list)-1]
	recycled.bytes -= 4 * n
	return buf
}

// recycleGrad returns the buffer of g, the gradient of an intermediate
// result whose backward function has just run, unless one of that
// function's inputs took g (or a view of it) over as its own gradient.
func recycleGrad(g *Tensor, inputs []*Tensor) {
	buf, ok := g.data.([]float32)
	if !ok || len(buf) == 0 {
		return
	}
	for _, in := range inputs {
		if in != nil && in.Grad != nil && sharesArray(in.Grad, buf) {
			return
		}
	}
	recycle(buf)
}

// released stands in for the values of a tensor BackwardReleasing
// recycled.
type released struct{}

// releaseData recycles t's values if its array is its own.
func (t *Tensor) releaseData() {
	buf, ok := t.data.([]float32)
	if !ok || !t.own || len(buf) == 0 {
		return
	}
	t.data, t.own = released{}, false
	recycle(buf)
}

// FreeRecycled drops the recycled buffers, for the collector to return to
// the system: a training loop calls it when it ends, so that a notebook
// does not keep a step's worth of memory after training.
func FreeRecycled() {
	recycled.Lock()
	recycled.bufs, recycled.bytes = nil, 0
	recycled.Unlock()
}

func recycle(buf []float32) {
	recycled.Lock()
	defer recycled.Unlock()
	if recycled.bytes+4*len(buf) > recycleCap {
		return
	}
	if recycled.bufs == nil {
		recycled.bufs = map[int][][]float32{}
	}
	recycled.bufs[len(buf)] = append(recycled.bufs[len(buf)], buf)
	recycled.bytes += 4 * len(buf)
}

// sharesArray reports whether t's data lies in buf's array: two slices of
// one array end their capacity at the same element.
func sharesArray(t *Tensor, buf []float32) bool {
	d, ok := t.data.([]float32)
	return ok && cap(d) > 0 && &d[:cap(d)][cap(d)-1] == &buf[:cap(buf)][cap(buf)-1]
}

// GradFor returns t's gradient buffer for a backward function to write its
// share into, and whether that share is the first: then the buffer is new
// with arbitrary contents (see Empty), to be overwritten rather than added
// to, which saves zeroing and reading it.
func GradFor(t *Tensor) (grad *Tensor, first bool) {
	if t.Grad == nil {
		t.Grad = EmptyLike(t)
		return t.Grad, true
	}
	return t.Grad, false
}
