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
	return scaleAddReLU[float32](x, gate, shortcut)
}

func scaleAddReLU[T kern.Float](x, gate, shortcut *tensor.Tensor) *tensor.Tensor {
	out := tensor.New(x.DType(), x.Shape()...)
	plane := x.Dim(2) * x.Dim(3)
	xs, gs, ss, ys := kern.Vals[T](x), kern.Vals[T](gate), kern.Vals[T](shortcut), kern.Vals[T](out)
	parallel.For(len(gs), plane, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			at := p * plane
			scaleAddReLURun(ys[at:at+plane], xs[at:at+plane], ss[at:at+plane], gs[p])
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		// m, the gradient past the ReLU, is the shortcut's gradient; it
		// goes where grad is when this function owns grad (see gradInto).
		own := !out.RequiresGrad()
		m := grad
		if !own {
			m = tensor.New(grad.DType(), grad.Shape()...)
		}
		dy, ms := kern.Vals[T](grad), kern.Vals[T](m)
		var dx, dg []T
		setX := x.NeedsGrad() && x.Grad == nil
		if x.NeedsGrad() {
			dx = kern.Vals[T](tensor.GradOf(x))
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
				dot := scaleAddReLUGradRun(ms[at:at+plane], dxp, dy[at:at+plane], ys[at:at+plane], xs[at:at+plane], gs[p], setX)
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

// scaleAddReLURun sets y = max(x·g + s, 0) over one channel plane; max
// passes NaN through, as the ReLU ops do.
func scaleAddReLURun[T kern.Float](y, x, s []T, g T) {
	if y, ok := any(y).([]float32); ok {
		simd.ScaleAdd(y, any(x).([]float32), any(s).([]float32), float32(g), true)
		return
	}
	x, s = x[:len(y)], s[:len(y)]
	for i := range y {
		y[i] = max(x[i]*g+s[i], 0)
	}
}

// scaleAddReLUGradRun handles one channel plane of the backward pass: m
// (which may be dy itself) gets dy where the output y is positive and
// exactly 0 elsewhere, dx (nil when x needs no gradient) gets m·g, stored
// when set, else added; it returns Σ m·x, the gate's gradient, summed in
// float64.
func scaleAddReLUGradRun[T kern.Float](m, dx, dy, y, x []T, g T, set bool) float64 {
	if m, ok := any(m).([]float32); ok {
		simd.Mask(m, any(dy).([]float32), any(y).([]float32))
		return simd.ScaleGrad(any(dx).([]float32), m, any(x).([]float32), float32(g), set)
	}
	dy, y, x = dy[:len(m)], y[:len(m)], x[:len(m)]
	var dot float64
	for i := range m {
		v := T(0)
		if y[i] > 0 {
			v = dy[i]
		}
		m[i] = v
		dot += float64(v) * float64(x[i])
		if dx != nil {
			if set {
				dx[i] = v * g
			} else {
				dx[i] += v * g
			}
		}
	}
	return dot
}
