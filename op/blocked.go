package op

import (
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/tensor"
)

// addBlocked is add for float32 maps of which one at least is in the
// blocked layout a convolution left it in (see tensor.Blocked16): the sum
// is taken, and written, in that layout, so that a residual block's output
// reaches the next convolution without a reorder. Element by element, the
// layout changes nothing else.
func addBlocked(a, b *tensor.Tensor, relu bool) *tensor.Tensor {
	out := tensor.EmptyBlocked16(a.Shape()...)
	as, bs, ys := tensor.Blocked16(a), tensor.Blocked16(b), tensor.Blocked16(out)
	parallel.For(len(ys), 1, func(lo, hi int) {
		simd.Add(ys[lo:hi], as[lo:hi], bs[lo:hi], relu)
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs := tensor.Blocked16(grad)
		// grad is this function's to change and hand on when Backward
		// drops it after the call and it was converted in place.
		g := grad
		if out.RequiresGrad() || !tensor.IsBlocked16(grad) {
			g = tensor.EmptyBlocked16(grad.Shape()...)
			copy(tensor.Blocked16(g), gs)
		}
		if relu {
			ms := tensor.Blocked16(g)
			parallel.For(len(ms), 1, func(lo, hi int) {
				simd.Mask(ms[lo:hi], ms[lo:hi], ys[lo:hi])
			})
		}
		give := true
		for _, in := range []*tensor.Tensor{a, b} {
			if in.NeedsGrad() && passGrad16(in, g, give) {
				give = false
			}
		}
	}, a, b)
	return out
}

// passGrad16 adds g, a gradient in the blocked layout, into t's gradient.
// Where t has none yet and give is set, t takes g itself, and passGrad16
// reports that it did: the caller must then not hand g to another tensor.
func passGrad16(t, g *tensor.Tensor, give bool) (given bool) {
	switch {
	case t.Grad == nil && give:
		t.Grad = g
		return true
	case t.Grad == nil:
		t.Grad = tensor.EmptyBlocked16(g.Shape()...)
		copy(tensor.Blocked16(t.Grad), tensor.Blocked16(g))
		return false
	}
	dst := tensor.Blocked16(t.Grad)
	if !tensor.IsBlocked16(t.Grad) { // its array is shared: add in NCHW
		addInto(t.Grad.F32(), g.F32())
		return false
	}
	addInto(dst, tensor.Blocked16(g))
	return false
}
