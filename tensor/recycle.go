package tensor

import "sync"

// A training step allocates every feature map and every gradient anew;
// zeroing fresh memory, and collecting the old, then costs about a tenth
// of a CPU step. The gradients of intermediate results die at a known
// moment, when the backward pass has handed them on, and so do the results
// themselves under BackwardReleasing, so the backward pass returns their
// buffers here, and Empty (and New, which zeroes them) hands them out
// again. Only float32 host buffers of at least minRecycled values are
// recycled. A releasing backward pass ends by keeping, of each length, no
// more buffers than the step asked for (the next step will ask for as
// many), so the recycler holds one step's worth however long training
// runs; at most recycleCap bytes in any case (FreeRecycled lets them go).
var recycleCap = 1 << 30 // a variable so that a test can lower it

const minRecycled = 1024

var recycled struct {
	sync.Mutex
	bufs  map[int][][]float32 // by length
	bytes int
	// asked counts the buffers of each length asked for since the last
	// releasing backward pass ended.
	asked map[int]int
}

// Empty returns a tensor of the given type and shape whose elements are
// arbitrary, for an operation that sets every one of them: it may reuse a
// buffer an earlier backward pass released instead of zeroing a new one.
func Empty(dt DType, shape ...int) *Tensor {
	checkShape(shape)
	if dt == Float64 {
		return New(dt, shape...)
	}
	n := Numel(shape)
	buf := takeRecycled(n)
	if buf == nil {
		buf = make([]float32, n)
	}
	return &Tensor{shape: append([]int(nil), shape...), data: buf, own: true}
}

// EmptyLike is Empty with t's type and shape, on t's device (where memory
// is not recycled).
func EmptyLike(t *Tensor) *Tensor {
	if t.Device() != nil {
		return ZerosLike(t)
	}
	return Empty(t.DType(), t.shape...)
}

// pooled reports whether t's array may have come from the recycler, with
// an earlier owner's values in it.
func (t *Tensor) pooled() bool { return t.Len() >= minRecycled }

func takeRecycled(n int) []float32 {
	if n < minRecycled {
		return nil
	}
	recycled.Lock()
	defer recycled.Unlock()
	if recycled.asked == nil {
		recycled.asked = map[int]int{}
	}
	recycled.asked[n]++
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
	g.recycleStale() // the function that converted g has returned
	buf, ok := g.array()
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
	buf, ok := t.array()
	if !ok || !t.own || len(buf) == 0 {
		return
	}
	t.data, t.own = released{}, false
	recycle(buf)
	t.recycleStale()
}

// recycleStale recycles the arrays conversions left t with.
func (t *Tensor) recycleStale() {
	for _, s := range t.stale {
		recycle(s)
	}
	t.stale = nil
}

// FreeRecycled drops the recycled buffers, for the collector to return to
// the system: a training loop calls it when it ends, so that a notebook
// does not keep a step's worth of memory after training.
func FreeRecycled() {
	recycled.Lock()
	recycled.bufs, recycled.bytes, recycled.asked = nil, 0, nil
	recycled.Unlock()
}

// trimRecycled keeps, of each length, as many buffers as were asked for
// since the last trim, and starts counting anew.
func trimRecycled() {
	recycled.Lock()
	defer recycled.Unlock()
	for n, list := range recycled.bufs {
		if keep := recycled.asked[n]; len(list) > keep {
			clear(list[keep:]) // for the collector
			recycled.bufs[n] = list[:keep]
			recycled.bytes -= 4 * n * (len(list) - keep)
		}
	}
	recycled.asked = nil
}

func recycle(buf []float32) {
	if len(buf) < minRecycled {
		return
	}
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
	d, ok := t.array()
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

// GradFor16 is GradFor, with a new gradient in the blocked layout where
// blocked is set and t allows it (see Blocked16).
func GradFor16(t *Tensor, blocked bool) (grad *Tensor, first bool) {
	if t.Grad != nil || !blocked || !CanBlock16(t) {
		return GradFor(t)
	}
	t.Grad = EmptyBlocked16(t.shape...)
	return t.Grad, true
}
