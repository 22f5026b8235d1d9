package op

import (
	"math"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/tensor"
)

// The loops of this file split their elements over the CPUs with
// parallel.For at a cost of 1 per element: a feature map of a training
// batch is large enough to share, while the small tensors of the
// recalibration branches stay on one goroutine, where starting others
// would cost more than the loop itself. Each part runs one of
// internal/simd's generic kernels, which take float32 (the type models
// train in) to vector code and run float64 through Go loops with the same
// semantics.

// addInto adds src to dst element by element; gradients of ops that pass
// their output gradient through unchanged use it.
func addInto[T kern.Float](dst, src []T) {
	parallel.For(len(dst), 1, func(lo, hi int) {
		simd.AddTo(dst[lo:hi], src[lo:hi])
	})
}

// ReLU returns max(x, 0).
func ReLU(x *tensor.Tensor) *tensor.Tensor {
	if d := DeviceOf("ReLU", x); d != nil {
		return pointwiseDevice(d, "ReLU", x, d.ReLU, d.ReLUBackward)
	}
	if x.DType() == tensor.Float64 {
		return relu[float64](x)
	}
	return relu[float32](x)
}

func relu[T kern.Float](x *tensor.Tensor) *tensor.Tensor {
	out := tensor.EmptyLike(x)
	xs, ys := kern.Vals[T](x), kern.Vals[T](out)
	parallel.For(len(xs), 1, func(lo, hi int) {
		// x·1 + 0 clamped at 0: max(x, 0), which passes NaN through, as
		// PyTorch does, so a diverging run shows in the loss.
		simd.Affine(ys[lo:hi], xs[lo:hi], 1, 0, true)
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs, gx := kern.Vals[T](grad), kern.Vals[T](tensor.GradOf(x))
		parallel.For(len(gx), 1, func(lo, hi int) {
			// A select, as PyTorch's threshold_backward: where the unit is
			// inactive (output not positive) the gradient is exactly 0,
			// even where the incoming one is NaN or infinite.
			simd.MaskAdd(gx[lo:hi], gs[lo:hi], ys[lo:hi])
		})
	}, x)
	return out
}

// Sigmoid returns 1/(1+exp(−x)).
func Sigmoid(x *tensor.Tensor) *tensor.Tensor {
	if d := DeviceOf("Sigmoid", x); d != nil {
		return pointwiseDevice(d, "Sigmoid", x, d.Sigmoid, d.SigmoidBackward)
	}
	if x.DType() == tensor.Float64 {
		return sigmoid[float64](x)
	}
	return sigmoid[float32](x)
}

func sigmoid[T kern.Float](x *tensor.Tensor) *tensor.Tensor {
	out := tensor.EmptyLike(x)
	xs, ys := kern.Vals[T](x), kern.Vals[T](out)
	parallel.For(len(xs), 20, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			// exp of a non-positive argument only, so large |x| saturates
			// to 0 or 1 instead of overflowing.
			if v := float64(xs[i]); v >= 0 {
				ys[i] = T(1 / (1 + math.Exp(-v)))
			} else {
				e := math.Exp(v)
				ys[i] = T(e / (1 + e))
			}
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs, gx := kern.Vals[T](grad), kern.Vals[T](tensor.GradOf(x))
		parallel.For(len(gx), 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gx[i] += gs[i] * ys[i] * (1 - ys[i])
			}
		})
	}, x)
	return out
}

// Add returns a+b for tensors of one shape (the residual addition).
func Add(a, b *tensor.Tensor) *tensor.Tensor { return addOp("Add", a, b, false) }

// AddReLU is ReLU(Add(a, b)) in one operation, the end of every residual
// block: one feature map written and read back instead of two, forward and
// backward.
func AddReLU(a, b *tensor.Tensor) *tensor.Tensor { return addOp("AddReLU", a, b, true) }

func addOp(op string, a, b *tensor.Tensor, relu bool) *tensor.Tensor {
	if !tensor.SameShape(a, b) {
		tensor.Panicf("%s: shapes %v and %v differ", op, a.Shape(), b.Shape())
	}
	kern.SameType(op, a, b)
	if d := DeviceOf(op, a, b); d != nil {
		return addDevice(d, op, a, b, relu)
	}
	if a.DType() == tensor.Float64 {
		return add[float64](a, b, relu)
	}
	if (tensor.IsBlocked16(a) || tensor.IsBlocked16(b)) && tensor.CanBlock16(a) {
		return addBlocked(a, b, relu)
	}
	return add[float32](a, b, relu)
}

// add returns a+b, clamped at 0 when relu is set.
func add[T kern.Float](a, b *tensor.Tensor, relu bool) *tensor.Tensor {
	out := tensor.EmptyLike(a)
	as, bs, ys := kern.Vals[T](a), kern.Vals[T](b), kern.Vals[T](out)
	parallel.For(len(ys), 1, func(lo, hi int) {
		simd.Add(ys[lo:hi], as[lo:hi], bs[lo:hi], relu)
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		// grad is out's, which Backward drops after this call unless
		// out keeps its gradient; then it is this function's to change
		// and to hand on.
		own := tensor.OwnsGrad(out)
		if relu {
			masked := grad
			if !own {
				masked, own = tensor.EmptyLike(grad), true
			}
			gs, ms := kern.Vals[T](grad), kern.Vals[T](masked)
			parallel.For(len(gs), 1, func(lo, hi int) {
				// Exactly 0 where the sum was clamped, as ReLU's.
				simd.Mask(ms[lo:hi], gs[lo:hi], ys[lo:hi])
			})
			grad = masked
		}
		for _, in := range []*tensor.Tensor{a, b} {
			if in.NeedsGrad() {
				own = passGrad[T](in, grad, own)
			}
		}
	}, a, b)
	return out
}

// passGrad adds grad into t's gradient and reports whether the caller
// still owns grad (see gradInto).
func passGrad[T kern.Float](t, grad *tensor.Tensor, own bool) bool {
	dst, overwrite := gradInto[T](t, grad, own)
	if !overwrite {
		addInto(dst, kern.Vals[T](grad))
	}
	return own && !overwrite
}

// gradInto returns the buffer that a backward function receiving grad
// adds t's gradient share into. own says that the function owns grad:
// Backward drops the output's gradient after the call, so nothing else
// reads it. When t has no gradient yet, t then takes grad over, and
// overwrite asks the function to store its share there rather than add it,
// which saves allocating, zeroing and reading a whole feature map; each
// element of grad must be read before it is overwritten, later additions
// into t's gradient change grad's data, and grad must not go to another
// tensor.
func gradInto[T kern.Float](t, grad *tensor.Tensor, own bool) (dst []T, overwrite bool) {
	if own && t.Grad == nil {
		t.Grad = grad
		return kern.Vals[T](grad), true
	}
	return kern.Vals[T](tensor.GradOf(t)), false
}

// Mul returns x·g where g has x's shape, or is (N, C, 1, 1) for x of shape
// (N, C, H, W) and then scales each channel plane (a recalibration gate).
func Mul(x, g *tensor.Tensor) *tensor.Tensor {
	plane := 1 // elements of x that share one element of g
	if !tensor.SameShape(x, g) {
		s, gs := x.Shape(), g.Shape()
		if len(s) != 4 || len(gs) != 4 || gs[0] != s[0] || gs[1] != s[1] || gs[2] != 1 || gs[3] != 1 {
			tensor.Panicf("Mul: gate %v fits neither x %v nor (N, C, 1, 1)", gs, s)
		}
		plane = s[2] * s[3]
	}
	kern.SameType("Mul", x, g)
	if d := DeviceOf("Mul", x, g); d != nil {
		return mulDevice(d, x, g, plane)
	}
	if x.DType() == tensor.Float64 {
		return mul[float64](x, g, plane)
	}
	return mul[float32](x, g, plane)
}

// mul multiplies each run of plane consecutive elements of x by one element
// of g; plane is 1 when g has x's shape.
func mul[T kern.Float](x, g *tensor.Tensor, plane int) *tensor.Tensor {
	out := tensor.EmptyLike(x)
	xs, gs, ys := kern.Vals[T](x), kern.Vals[T](g), kern.Vals[T](out)
	parallel.For(len(gs), plane, func(lo, hi int) {
		if plane == 1 {
			simd.Mul(ys[lo:hi], xs[lo:hi], gs[lo:hi], true)
			return
		}
		for p := lo; p < hi; p++ {
			// x·s + (−0) is x·s to the bit, zeros' signs included.
			from, to := p*plane, (p+1)*plane
			simd.Affine(ys[from:to], xs[from:to], gs[p], simd.NegZero[T](), false)
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		dy := kern.Vals[T](grad)
		var gx, gg []T
		if g.NeedsGrad() {
			gg = kern.Vals[T](tensor.GradOf(g))
		}
		overwrite := false // gx is dy, to be overwritten (see gradInto)
		if x.NeedsGrad() {
			// With x and g one tensor, g's gradient has just been made,
			// and x must not take dy over.
			gx, overwrite = gradInto[T](x, grad, tensor.OwnsGrad(out))
		}
		parallel.For(len(gs), 2*plane, func(lo, hi int) {
			if plane == 1 {
				// Elementwise: gg first, as it reads dy, which gx may
				// overwrite. With x and g one tensor, gg and gx are one
				// buffer, and both add into it.
				if gg != nil {
					simd.Mul(gg[lo:hi], dy[lo:hi], xs[lo:hi], false)
				}
				if gx != nil {
					simd.Mul(gx[lo:hi], dy[lo:hi], gs[lo:hi], overwrite)
				}
				return
			}
			for p := lo; p < hi; p++ {
				// One pass over a plane for both: g's gradient is the
				// plane's Σ dy·x in float64, and x's is dy·g, written
				// after each dy is read.
				from, to := p*plane, (p+1)*plane
				var dx []T
				if gx != nil {
					dx = gx[from:to]
				}
				dot := simd.ScaleGrad(dx, dy[from:to], xs[from:to], gs[p], overwrite)
				if gg != nil {
					gg[p] += T(dot)
				}
			}
		})
	}, x, g)
	return out
}
