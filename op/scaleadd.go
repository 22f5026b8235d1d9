package op

import (
	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/tensor"
)

// ScaleAddReLU is AddReLU(Mul(x, gate), shortcut) in one operation: x
// (N, C, H, W) scaled per channel by gate (N, C, 1, 1), plus shortcut of
// x's shape, clamped at 0. It ends every recalibrated residual block, where
// the separate operations would write and read back the scaled map (and
// its gradient) once more; fused, the recalibration costs the statistics
// pass and a few per-channel values.
func ScaleAddReLU(x, gate, shortcut *tensor.Tensor) *tensor.Tensor {
	s, gs := x.Shape(), gate.Shape()
	if len(s) != 4 || len(gs) != 4 || gs[0] != s[0] || gs[1] != s[1] || gs[2] != 1 || gs[3] != 1 {
		tensor.Panicf("ScaleAddReLU: gate %v for x %v, want (N, C, 1, 1)", gs, s)
	}
	if !tensor.SameShape(x, shortcut) {
		tensor.Panicf("ScaleAddReLU: shortcut %v for x %v", shortcut.Shape(), s)
	}
	kern.SameType("ScaleAddReLU", x, gate, shortcut)
	if DeviceOf("ScaleAddReLU", x, gate, shortcut) != nil {
		return AddReLU(Mul(x, gate), shortcut)
	}
	if x.DType() == tensor.Float64 {
		return scaleAddReLU[float64](x, gate, shortcut)
	}
	if tensor.IsBlocked16(x) && tensor.CanBlock16(shortcut) {
		return scaleAddReLUBlocked(x, gate, shortcut)
	}
	return scaleAddReLU[float32](x, gate, shortcut)
}

func scaleAddReLU[T kern.Float](x, gate, shortcut *tensor.Tensor) *tensor.Tensor {
	out := tensor.EmptyLike(x)
	plane := x.Dim(2) * x.Dim(3)
	xs, gs, ss, ys := kern.Vals[T](x), kern.Vals[T](gate), kern.Vals[T](shortcut), kern.Vals[T](out)
	parallel.For(len(gs), plane, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			at := p * plane
			// y = max(x·g + s, 0); max passes NaN through, as the ReLU
			// ops do.
			simd.ScaleAdd(ys[at:at+plane], xs[at:at+plane], ss[at:at+plane], gs[p], true)
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		// m, the gradient past the ReLU, is the shortcut's gradient; it
		// goes where grad is when this function owns grad (see gradInto).
		own := tensor.OwnsGrad(out)
		m := grad
		if !own {
			m = tensor.EmptyLike(grad)
		}
		dy, ms := kern.Vals[T](grad), kern.Vals[T](m)
		var dx, dg []T
		setX := false
		if x.NeedsGrad() {
			var gx *tensor.Tensor
			gx, setX = tensor.GradFor(x)
			dx = kern.Vals[T](gx)
		}
		if gate.NeedsGrad() {
			dg = kern.Vals[T](tensor.GradOf(gate))
		}
		parallel.For(len(gs), 2*plane, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				at := p * plane
				var dxp []T
				if dx != nil {
					dxp = dx[at : at+plane]
				}
				// m (which may be dy itself) gets dy where the output
				// is positive and exactly 0 elsewhere, dx (nil when x
				// needs no gradient) gets m·g, stored when setX, else
				// added; the gate's gradient is Σ m·x, in float64.
				mp := ms[at : at+plane]
				simd.Mask(mp, dy[at:at+plane], ys[at:at+plane])
				dot := simd.ScaleGrad(dxp, mp, xs[at:at+plane], gs[p], setX)
				if dg != nil {
					dg[p] += T(dot)
				}
			}
		})
		if shortcut.NeedsGrad() {
			passGrad[T](shortcut, m, true)
		}
	}, x, gate, shortcut)
	return out
}
