package op

import (
	"math"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/tensor"
)

// BatchNorm normalises x, (N, C, H, W) or (N, C), per channel as PyTorch's
// BatchNorm2d/1d. In training it uses the batch statistics (biased variance)
// and updates runMean and runVar in place with the given momentum (runVar
// takes the unbiased batch variance); in evaluation it uses runMean and
// runVar, which are then constants to the backward pass. gamma and beta are
// (C). Training needs more than one value per channel, as in PyTorch.
func BatchNorm(x, gamma, beta, runMean, runVar *tensor.Tensor, training bool, momentum, eps float64) *tensor.Tensor {
	return batchNormOp("BatchNorm", x, gamma, beta, runMean, runVar, nil, training, momentum, eps, false)
}

// BatchNormReLU is ReLU(BatchNorm(...)) in one operation: it writes and
// reads back one feature map instead of two, forward and backward, which
// matters for the conv-BN-ReLU chains of ResNets.
func BatchNormReLU(x, gamma, beta, runMean, runVar *tensor.Tensor, training bool, momentum, eps float64) *tensor.Tensor {
	return batchNormOp("BatchNormReLU", x, gamma, beta, runMean, runVar, nil, training, momentum, eps, true)
}

// BatchNormAddReLU is ReLU(BatchNorm(...) + short) in one operation, the
// end of a residual block without recalibration: the normalised map is
// never written, so the block keeps one feature map fewer for its backward
// pass and makes one pass fewer each way. short has x's shape.
func BatchNormAddReLU(x, gamma, beta, runMean, runVar, short *tensor.Tensor, training bool, momentum, eps float64) *tensor.Tensor {
	if !tensor.SameShape(x, short) {
		tensor.Panicf("BatchNormAddReLU: shortcut %v for input %v", short.Shape(), x.Shape())
	}
	return batchNormOp("BatchNormAddReLU", x, gamma, beta, runMean, runVar, short, training, momentum, eps, true)
}

// batchNormOp normalises x, adds short (nil for none; only with relu) and
// clamps at 0 when relu is set.
func batchNormOp(op string, x, gamma, beta, runMean, runVar, short *tensor.Tensor, training bool, momentum, eps float64, relu bool) *tensor.Tensor {
	s := x.Shape()
	if len(s) != 2 && len(s) != 4 {
		tensor.Panicf("%s: input %v is neither (N, C, H, W) nor (N, C)", op, s)
	}
	for _, p := range []*tensor.Tensor{gamma, beta, runMean, runVar} {
		if p.Rank() != 1 || p.Dim(0) != s[1] {
			tensor.Panicf("%s: parameter %v for input %v, want (%d)", op, p.Shape(), s, s[1])
		}
	}
	kern.SameType(op, x, gamma, beta, runMean, runVar, short)
	bn := bnShape{n: s[0], c: s[1], hw: 1}
	if len(s) == 4 {
		bn.hw = s[2] * s[3]
	}
	if training && bn.n*bn.hw < 2 {
		tensor.Panicf("%s: training needs more than one value per channel, input %v", op, s)
	}
	if d := DeviceOf(op, x, gamma, beta, runMean, runVar, short); d != nil {
		switch {
		case short != nil && training:
			return batchNormAddReLUDevice(d, op, x, gamma, beta, runMean, runVar, short, momentum, eps, bn)
		case short != nil:
			return AddReLU(batchNormDevice(d, op, x, gamma, beta, runMean, runVar, training, momentum, eps, bn, false), short)
		}
		return batchNormDevice(d, op, x, gamma, beta, runMean, runVar, training, momentum, eps, bn, relu)
	}
	if x.DType() == tensor.Float64 {
		return batchNorm[float64](x, gamma, beta, runMean, runVar, short, training, momentum, eps, bn, relu)
	}
	if tensor.IsBlocked16(x) && (short == nil || tensor.CanBlock16(short)) {
		return batchNormBlocked(x, gamma, beta, runMean, runVar, short, training, momentum, eps, bn, relu)
	}
	return batchNorm[float32](x, gamma, beta, runMean, runVar, short, training, momentum, eps, bn, relu)
}

// bnShape views x as n × c × hw, so that (N, C) is hw = 1.
type bnShape struct{ n, c, hw int }

// plane returns the run of hw consecutive elements of d that channel ch
// owns in batch item i. Plain loops over planes keep the kernels' indices
// in registers, which an iterator's closure did not.
func plane[T kern.Float](d []T, s bnShape, i, ch int) []T { return d[s.runStart(i, ch):][:s.hw] }

// runStart is the index where channel ch's plane of batch item i starts.
func (s bnShape) runStart(i, ch int) int { return (i*s.c + ch) * s.hw }

// batchNorm normalises x, then clamps at 0 when relu is set. Its hot loops
// are internal/simd's generic kernels: vector code for float32, the type
// models train in (Go does not vectorise), and Go loops with the same
// semantics for float64; the reductions accumulate in float64 in a fixed
// order, so the results are the same bits run to run.
func batchNorm[T kern.Float](x, gamma, beta, runMean, runVar, short *tensor.Tensor, training bool, momentum, eps float64, bn bnShape, relu bool) *tensor.Tensor {
	c, m := bn.c, float64(bn.n*bn.hw)
	out := tensor.EmptyLike(x)
	xs, ys := kern.Vals[T](x), kern.Vals[T](out)
	ws, bs, rm, rv := kern.Vals[T](gamma), kern.Vals[T](beta), kern.Vals[T](runMean), kern.Vals[T](runVar)
	var ss []T
	if short != nil {
		ss = kern.Vals[T](short)
	}
	// The statistics each channel was normalised with, kept for backward.
	mean, istd := make([]float64, c), make([]float64, c)
	parallel.For(c, 4*bn.n*bn.hw, func(from, to int) {
		for ch := from; ch < to; ch++ {
			mu, v := float64(rm[ch]), float64(rv[ch])
			if training {
				// Sums of x−k and (x−k)² in float64, around one of the
				// channel's own values k: plain sums of squares lose the
				// variance when the mean is large against the spread,
				// while x−k is on the scale of the spread, so one pass
				// serves where two (mean, then squared deviations) did.
				k := float64(xs[bn.runStart(0, ch)])
				var s1, s2 float64
				for i := range bn.n {
					a, b := simd.ShiftedSums(plane(xs, bn, i, ch), k)
					s1 += a
					s2 += b
				}
				var sq float64 // Σ(x−mean)²
				mu, sq = simd.Moments(k, s1, s2, m)
				v = sq / m
				kern.UpdateRunning(&rm[ch], &rv[ch], mu, sq, m, momentum)
			}
			mean[ch], istd[ch] = mu, 1/math.Sqrt(v+eps)
			scale := float64(ws[ch]) * istd[ch]
			a, b := T(scale), T(float64(bs[ch])-mu*scale)
			for i := range bn.n {
				if ss != nil {
					simd.AffineAddTo(plane(ys, bn, i, ch), plane(xs, bn, i, ch), plane(ss, bn, i, ch), a, b, relu)
					continue
				}
				simd.Affine(plane(ys, bn, i, ch), plane(xs, bn, i, ch), a, b, relu)
			}
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs := kern.Vals[T](grad)
		if short != nil && short.NeedsGrad() {
			// The shortcut's gradient is grad past the ReLU (a shortcut
			// comes only with one), taken before x's share may overwrite
			// grad.
			m := tensor.EmptyLike(grad)
			ms := kern.Vals[T](m)
			parallel.For(len(gs), 1, func(lo, hi int) {
				simd.Mask(ms[lo:hi], gs[lo:hi], ys[lo:hi])
			})
			passGrad[T](short, m, true)
		}
		var gx, gw, gb []T
		overwrite := false // gx is gs, to be overwritten (see gradInto)
		if x.NeedsGrad() {
			gx, overwrite = gradInto[T](x, grad, tensor.OwnsGrad(out))
		}
		if gamma.NeedsGrad() {
			gw = kern.Vals[T](tensor.GradOf(gamma))
		}
		if beta.NeedsGrad() {
			gb = kern.Vals[T](tensor.GradOf(beta))
		}
		// The ReLU's gradient mask is read off the output: 1 where it
		// passed the normalised value, else 0; nil passes everything.
		var mask []T
		if relu {
			mask = ys
		}
		// The channel sums are needed for gamma and beta, and for x in
		// training, where the batch statistics depend on x.
		sums := gw != nil || gb != nil || (training && gx != nil)
		parallel.For(c, 5*bn.n*bn.hw, func(from, to int) {
			for ch := from; ch < to; ch++ {
				var sumG, dot float64 // Σg and Σg·(x−mean)
				if sums {
					for i := range bn.n {
						s, d := simd.GradSums(plane(gs, bn, i, ch), plane(xs, bn, i, ch), maskPlane(mask, bn, i, ch), mean[ch])
						sumG += s
						dot += d
					}
				}
				cg := gradOfChannel(sumG, dot, istd[ch], float64(ws[ch]), m, training)
				if gw != nil {
					gw[ch] += T(cg.dw)
				}
				if gb != nil {
					gb[ch] += T(cg.db)
				}
				if gx == nil {
					continue
				}
				gm, k, mu, a := T(cg.gm), T(cg.k), T(mean[ch]), T(cg.a)
				for i := range bn.n {
					simd.GradRun(plane(gx, bn, i, ch), plane(gs, bn, i, ch), plane(xs, bn, i, ch), maskPlane(mask, bn, i, ch), gm, mu, k, a, overwrite)
				}
			}
		})
	}, x, gamma, beta, short)
	return out
}

// channelGrad is one channel's share of BatchNorm's backward pass, from
// its gradient sums Σg and Σg·(x−mean): the weight's and the bias's
// gradients, and dx = (g − gm − k·(x−mean))·a, where in training k·(x−mean)
// is the projection of g on x̂ and gm the shift through the batch mean; in
// evaluation both vanish.
type channelGrad struct{ dw, db, gm, k, a float64 }

func gradOfChannel(sumG, dot, istd, weight, m float64, training bool) channelGrad {
	cg := channelGrad{dw: dot * istd, db: sumG, a: weight * istd} // db is Σg itself, named for its use
	if training {
		cg.gm, cg.k = sumG/m, dot*istd*istd/m
	}
	return cg
}

// maskPlane is plane(mask, ...), or nil for no mask.
func maskPlane[T kern.Float](mask []T, s bnShape, i, ch int) []T {
	if mask == nil {
		return nil
	}
	return plane(mask, s, i, ch)
}
