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
		gs, g, ms, own := gradPast16(out, grad)
		switch {
		case relu:
			parallel.For(len(ms), 1, func(lo, hi int) {
				simd.Mask(ms[lo:hi], gs[lo:hi], ys[lo:hi])
			})
		case !own:
			copy(ms, gs)
		}
		give := true
		for _, in := range []*tensor.Tensor{a, b} {
			if in.NeedsGrad() && tensor.PassGrad16(in, g, give) {
				give = false
			}
		}
	}, a, b)
	return out
}

// gradOwned16 is grad's values in the blocked layout, and whether the
// backward function of out, which receives grad, may change them and hand
// grad on: Backward drops out's gradient after the call (out keeps none),
// and grad was converted in place rather than copied.
func gradOwned16(out, grad *tensor.Tensor) ([]float32, bool) {
	gs := tensor.Blocked16(grad)
	return gs, !out.RequiresGrad() && tensor.IsBlocked16(grad)
}

// gradPast16 is gradOwned16 with somewhere to write the gradient past a
// ReLU, which goes on to the inputs: grad itself where out's backward
// function owns it, else a new blocked tensor (m, and its values ms).
func gradPast16(out, grad *tensor.Tensor) (gs []float32, m *tensor.Tensor, ms []float32, own bool) {
	gs, own = gradOwned16(out, grad)
	m = grad
	if !own {
		m = tensor.EmptyBlocked16(grad.Shape()...)
	}
	return gs, m, tensor.Blocked16(m), own
}

// globalAvgPoolBlocked is the global average pool of a float32 map in the
// blocked layout: a network's head reads its last feature map as it is,
// and hands the gradient back in that layout.
func globalAvgPoolBlocked(x *tensor.Tensor) *tensor.Tensor {
	n, c, hw := x.Dim(0), x.Dim(1), x.Dim(2)*x.Dim(3)
	nb, run := c/simd.Lanes, hw*simd.Lanes
	out := tensor.New(tensor.Float32, n, c, 1, 1)
	xs, ys := tensor.Blocked16(x), out.F32()
	parallel.For(n*nb, run, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			var zero, sum, sq [simd.Lanes]float64
			simd.LaneShiftedSums(xs[r*run:(r+1)*run], &zero, &sum, &sq)
			for l, v := range sum {
				ys[r*simd.Lanes+l] = float32(v / float64(hw))
			}
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs := make([]float32, n*c)
		for i, v := range grad.F32() {
			gs[i] = v / float32(hw) // as avgPoolOf: the gradient over the count
		}
		gx, first, done := tensor.GradBlocked16(x)
		one := simd.Splat(1)
		parallel.For(n*nb, run, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				// d written into every row when first, else g·1 + d.
				dst, d := gx[r*run:(r+1)*run], gs[r*simd.Lanes:(r+1)*simd.Lanes]
				if first {
					for j := 0; j < len(dst); j += simd.Lanes {
						copy(dst[j:], d)
					}
					continue
				}
				simd.LaneAffine(dst, dst, one, (*[simd.Lanes]float32)(d), false)
			}
		})
		done()
	}, x)
	return out
}

// scaleAddReLUBlocked is scaleAddReLU for a float32 x in the blocked
// layout: a gate per plane is a gate per lane of a run, and the block's
// output stays in the layout for the next convolution.
func scaleAddReLUBlocked(x, gate, shortcut *tensor.Tensor) *tensor.Tensor {
	n, c, hw := x.Dim(0), x.Dim(1), x.Dim(2)*x.Dim(3)
	runs, run := n*c/simd.Lanes, hw*simd.Lanes
	out := tensor.EmptyBlocked16(x.Shape()...)
	xs, ss, ys, gs := tensor.Blocked16(x), tensor.Blocked16(shortcut), tensor.Blocked16(out), gate.F32()
	// The planes of run r are gs[16r:16r+16]: y = max(x·g + (s + −0), 0),
	// ScaleAdd's rounding.
	negZero := simd.Splat(simd.NegZero[float32]())
	gateOf := func(r int) *[simd.Lanes]float32 { return (*[simd.Lanes]float32)(gs[r*simd.Lanes:]) }
	parallel.For(runs, run, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			at := r * run
			simd.LaneAffineAdd(ys[at:at+run], xs[at:at+run], ss[at:at+run], gateOf(r), negZero, true)
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		// m, the gradient past the ReLU, is the shortcut's gradient; it
		// goes where grad is when this function owns grad.
		dy, m, ms, _ := gradPast16(out, grad)
		var dx, dg []float32
		first, done := false, func() {}
		if x.NeedsGrad() {
			dx, first, done = tensor.GradBlocked16(x)
		}
		if gate.NeedsGrad() {
			dg = tensor.GradOf(gate).F32()
		}
		parallel.For(runs, 2*run, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				at := r * run
				// m past the ReLU, and the gate's gradient Σ m·x.
				var zero, sum, dot [simd.Lanes]float64
				simd.LaneGradSums(dy[at:at+run], xs[at:at+run], ys[at:at+run], ms[at:at+run], &zero, &sum, &dot)
				for l, v := range dot {
					if dg != nil {
						dg[r*simd.Lanes+l] += float32(v)
					}
				}
				if dx == nil {
					continue
				}
				d := dx[at : at+run]
				if first {
					simd.LaneAffine(d, ms[at:at+run], gateOf(r), negZero, false)
				} else {
					simd.LaneAffineAdd(d, ms[at:at+run], d, gateOf(r), negZero, false)
				}
			}
		})
		done()
		if shortcut.NeedsGrad() {
			tensor.PassGrad16(shortcut, m, true)
		}
	}, x, gate, shortcut)
	return out
}
