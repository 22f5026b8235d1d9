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
	return gs, tensor.OwnsGrad(out) && tensor.IsBlocked16(grad)
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
	rs := tensor.RunsOf(x)
	out := tensor.New(tensor.Float32, rs.N, rs.C, 1, 1)
	xs, ys := tensor.Blocked16(x), out.F32()
	rs.Each(rs.Len(), func(r int) {
		var zero, sum, sq [simd.Lanes]float64
		simd.LaneShiftedSums(rs.Run(xs, r), &zero, &sum, &sq)
		y := rs.Lanes(ys, r)
		for l, v := range sum {
			y[l] = float32(v / float64(rs.HW))
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs := make([]float32, rs.N*rs.C)
		for i, v := range grad.F32() {
			gs[i] = v / float32(rs.HW) // as avgPoolOf: the gradient over the count
		}
		gx, first, done := tensor.GradBlocked16(x)
		one := simd.Splat(1)
		rs.Each(rs.Len(), func(r int) {
			// d written into every row when first, else g·1 + d.
			dst, d := rs.Run(gx, r), rs.Lanes(gs, r)
			if first {
				for j := 0; j < len(dst); j += simd.Lanes {
					copy(dst[j:], d[:])
				}
				return
			}
			simd.LaneAffine(dst, dst, one, d, false)
		})
		done()
	}, x)
	return out
}

// scaleAddReLUBlocked is scaleAddReLU for a float32 x in the blocked
// layout: a gate per plane is a gate per lane of a run, and the block's
// output stays in the layout for the next convolution.
func scaleAddReLUBlocked(x, gate, shortcut *tensor.Tensor) *tensor.Tensor {
	rs := tensor.RunsOf(x)
	out := tensor.EmptyBlocked16(x.Shape()...)
	xs, ss, ys, gs := tensor.Blocked16(x), tensor.Blocked16(shortcut), tensor.Blocked16(out), gate.F32()
	// The planes of run r are gs[16r:16r+16]: y = max(x·g + (s + −0), 0),
	// ScaleAdd's rounding.
	negZero := simd.Splat(simd.NegZero[float32]())
	rs.Each(rs.Len(), func(r int) {
		simd.LaneAffineAdd(rs.Run(ys, r), rs.Run(xs, r), rs.Run(ss, r), rs.Lanes(gs, r), negZero, true)
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
		rs.Each(2*rs.Len(), func(r int) {
			// m past the ReLU, and the gate's gradient Σ m·x.
			var zero, sum, dot [simd.Lanes]float64
			simd.LaneGradSums(rs.Run(dy, r), rs.Run(xs, r), rs.Run(ys, r), rs.Run(ms, r), &zero, &sum, &dot)
			if dg != nil {
				g := rs.Lanes(dg, r)
				for l, v := range dot {
					g[l] += float32(v)
				}
			}
			if dx != nil {
				simd.LaneAffineAcc(rs.Run(dx, r), rs.Run(ms, r), rs.Lanes(gs, r), negZero, !first)
			}
		})
		done()
		if shortcut.NeedsGrad() {
			tensor.PassGrad16(shortcut, m, true)
		}
	}, x, gate, shortcut)
	return out
}
