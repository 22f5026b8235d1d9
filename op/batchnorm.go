package op

import (
	"iter"
	"math"

	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/tensor"
)

// BatchNorm normalises x, (N, C, H, W) or (N, C), per channel as PyTorch's
// BatchNorm2d/1d. In training it uses the batch statistics (biased variance)
// and updates runMean and runVar in place with the given momentum (runVar
// takes the unbiased batch variance); in evaluation it uses runMean and
// runVar, which are then constants to the backward pass. gamma and beta are
// (C). Training needs more than one value per channel, as in PyTorch.
func BatchNorm(x, gamma, beta, runMean, runVar *tensor.Tensor, training bool, momentum, eps float64) *tensor.Tensor {
	const op = "BatchNorm"
	s := x.Shape()
	if len(s) != 2 && len(s) != 4 {
		tensor.Panicf("%s: input %v is neither (N, C, H, W) nor (N, C)", op, s)
	}
	for _, p := range []*tensor.Tensor{gamma, beta, runMean, runVar} {
		if p.Rank() != 1 || p.Dim(0) != s[1] {
			tensor.Panicf("%s: parameter %v for input %v, want (%d)", op, p.Shape(), s, s[1])
		}
	}
	checkTypes(op, x, gamma, beta, runMean, runVar)
	bn := bnShape{n: s[0], c: s[1], hw: 1}
	if len(s) == 4 {
		bn.hw = s[2] * s[3]
	}
	if training && bn.n*bn.hw < 2 {
		tensor.Panicf("%s: training needs more than one value per channel, input %v", op, s)
	}
	if x.DType() == tensor.Float64 {
		return batchNorm[float64](x, gamma, beta, runMean, runVar, training, momentum, eps, bn)
	}
	return batchNorm[float32](x, gamma, beta, runMean, runVar, training, momentum, eps, bn)
}

// bnShape views x as n × c × hw, so that (N, C) is hw = 1.
type bnShape struct{ n, c, hw int }

// runs yields the bounds of the n runs of hw consecutive elements that
// channel ch owns.
func (s bnShape) runs(ch int) iter.Seq2[int, int] {
	return func(yield func(lo, hi int) bool) {
		for i := range s.n {
			lo := (i*s.c + ch) * s.hw
			if !yield(lo, lo+s.hw) {
				return
			}
		}
	}
}

func batchNorm[T float](x, gamma, beta, runMean, runVar *tensor.Tensor, training bool, momentum, eps float64, bn bnShape) *tensor.Tensor {
	c, m := bn.c, float64(bn.n*bn.hw)
	out := tensor.ZerosLike(x)
	xs, ys := vals[T](x), vals[T](out)
	ws, bs, rm, rv := vals[T](gamma), vals[T](beta), vals[T](runMean), vals[T](runVar)
	// The statistics each channel was normalised with, kept for backward.
	mean, istd := make([]float64, c), make([]float64, c)
	parallel.For(c, 4*bn.n*bn.hw, func(from, to int) {
		for ch := from; ch < to; ch++ {
			mu, v := float64(rm[ch]), float64(rv[ch])
			if training {
				// Two passes in float64: one-pass sums of squares lose
				// the variance when the mean is large.
				var sum, sq float64
				for lo, hi := range bn.runs(ch) {
					for _, e := range xs[lo:hi] {
						sum += float64(e)
					}
				}
				mu = sum / m
				for lo, hi := range bn.runs(ch) {
					for _, e := range xs[lo:hi] {
						d := float64(e) - mu
						sq += d * d
					}
				}
				v = sq / m
				rm[ch] = T((1-momentum)*float64(rm[ch]) + momentum*mu)
				rv[ch] = T((1-momentum)*float64(rv[ch]) + momentum*sq/(m-1))
			}
			mean[ch], istd[ch] = mu, 1/math.Sqrt(v+eps)
			scale := float64(ws[ch]) * istd[ch]
			a, b := T(scale), T(float64(bs[ch])-mu*scale)
			for lo, hi := range bn.runs(ch) {
				for j := lo; j < hi; j++ {
					ys[j] = xs[j]*a + b
				}
			}
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs := vals[T](grad)
		var gx, gw, gb []T
		if x.NeedsGrad() {
			gx = vals[T](tensor.GradOf(x))
		}
		if gamma.NeedsGrad() {
			gw = vals[T](tensor.GradOf(gamma))
		}
		if beta.NeedsGrad() {
			gb = vals[T](tensor.GradOf(beta))
		}
		// The channel sums are needed for gamma and beta, and for x in
		// training, where the batch statistics depend on x.
		sums := gw != nil || gb != nil || (training && gx != nil)
		parallel.For(c, 5*bn.n*bn.hw, func(from, to int) {
			for ch := from; ch < to; ch++ {
				var sumG, dot float64 // Σg and Σg·(x−mean)
				if sums {
					mu := mean[ch]
					for lo, hi := range bn.runs(ch) {
						for j := lo; j < hi; j++ {
							g := float64(gs[j])
							sumG += g
							dot += g * (float64(xs[j]) - mu)
						}
					}
				}
				if gw != nil {
					gw[ch] += T(dot * istd[ch])
				}
				if gb != nil {
					gb[ch] += T(sumG)
				}
				if gx == nil {
					continue
				}
				// dx = (g − mean(g) − (x−mean)·k)·gamma·istd, where in
				// training k·(x−mean) is the projection of g on x̂ and
				// mean(g) the shift through the batch mean; in evaluation
				// both vanish.
				var gm, k T
				if training {
					gm, k = T(sumG/m), T(dot*istd[ch]*istd[ch]/m)
				}
				mu, a := T(mean[ch]), T(float64(ws[ch])*istd[ch])
				for lo, hi := range bn.runs(ch) {
					for j := lo; j < hi; j++ {
						gx[j] += (gs[j] - gm - (xs[j]-mu)*k) * a
					}
				}
			}
		})
	}, x, gamma, beta)
	return out
}
