package op

import (
	"math"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/tensor"
)

// BatchNorm on a feature map in the blocked layout a convolution left it in
// (see tensor.Blocked16) reads and writes that layout, so that the map goes
// from convolution to convolution without a reorder. A channel's values are
// then lane l of the runs of block l/16, one run of 16·H·W values per batch
// item and block, and its parameters are lane l of 16-lane vectors; the
// arithmetic is batchNorm's, channel by channel, with the sums taken in
// another order (equal to rounding).

// blockedBN is a BatchNorm problem in the blocked layout, as its runs.
type blockedBN struct {
	tensor.Runs
	// parts splits the batch for the channel sums, so that a layer of one
	// block still shares them between CPUs; the split does not depend on
	// the CPUs, so neither do the sums' bits.
	parts int
}

func newBlockedBN(bn bnShape) blockedBN {
	return blockedBN{Runs: tensor.Runs{N: bn.n, C: bn.c, HW: bn.hw}, parts: min(bn.n, 8)}
}

// laneSums are two per-lane sums of one block.
type laneSums struct{ a, b [simd.Lanes]float64 }

// sums adds up, per channel, what add accumulates over the runs r of
// block cb, in parts of the batch computed in parallel and combined in
// order.
func (b blockedBN) sums(add func(s *laneSums, r, cb int)) []laneSums {
	nb := b.Blocks()
	partial := make([]laneSums, nb*b.parts)
	parallel.For(len(partial), 4*b.N*b.Len()/b.parts, func(from, to int) {
		for t := from; t < to; t++ {
			cb, part := t/b.parts, t%b.parts
			for i := part * b.N / b.parts; i < (part+1)*b.N/b.parts; i++ {
				add(&partial[t], i*nb+cb, cb)
			}
		}
	})
	total := make([]laneSums, nb)
	for t, p := range partial {
		s := &total[t/b.parts]
		for l := range p.a {
			s.a[l] += p.a[l]
			s.b[l] += p.b[l]
		}
	}
	return total
}

// lanes packs per-channel values into one 16-lane vector per block.
func lanes[T float32 | float64](nb int, v func(ch int) T) [][simd.Lanes]T {
	out := make([][simd.Lanes]T, nb)
	for ch := range nb * simd.Lanes {
		out[ch/simd.Lanes][ch%simd.Lanes] = v(ch)
	}
	return out
}

// batchNormBlocked is batchNorm for a float32 x in the blocked layout;
// short, when given, is taken into that layout too.
func batchNormBlocked(x, gamma, beta, runMean, runVar, short *tensor.Tensor, training bool, momentum, eps float64, bn bnShape, relu bool) *tensor.Tensor {
	b := newBlockedBN(bn)
	m := float64(bn.n * bn.hw)
	out := tensor.EmptyBlocked16(x.Shape()...)
	xs, ys := tensor.Blocked16(x), tensor.Blocked16(out)
	ws, bs, rm, rv := gamma.F32(), beta.F32(), runMean.F32(), runVar.F32()
	var ss []float32
	if short != nil {
		ss = tensor.Blocked16(short)
	}
	mean, istd := make([]float64, bn.c), make([]float64, bn.c)
	for ch := range bn.c {
		mean[ch], istd[ch] = float64(rm[ch]), 1/math.Sqrt(float64(rv[ch])+eps)
	}
	if training {
		// Shifted sums around each channel's first value, as batchNorm.
		k := lanes(b.Blocks(), func(ch int) float64 { return float64(b.Run(xs, ch/simd.Lanes)[ch%simd.Lanes]) })
		s := b.sums(func(s *laneSums, r, cb int) {
			simd.LaneShiftedSums(b.Run(xs, r), &k[cb], &s.a, &s.b)
		})
		for ch := range bn.c {
			cb, l := ch/simd.Lanes, ch%simd.Lanes
			mu, sq := simd.Moments(k[cb][l], s[cb].a[l], s[cb].b[l], m)
			mean[ch], istd[ch] = mu, 1/math.Sqrt(sq/m+eps)
			kern.UpdateRunning(&rm[ch], &rv[ch], mu, sq, m, momentum)
		}
	}
	scale := func(ch int) float64 { return float64(ws[ch]) * istd[ch] }
	as := lanes(b.Blocks(), func(ch int) float32 { return float32(scale(ch)) })
	cs := lanes(b.Blocks(), func(ch int) float32 { return float32(float64(bs[ch]) - mean[ch]*scale(ch)) })
	b.Each(b.Len(), func(r int) {
		cb := r % b.Blocks()
		if ss != nil {
			simd.LaneAffineAdd(b.Run(ys, r), b.Run(xs, r), b.Run(ss, r), &as[cb], &cs[cb], relu)
			return
		}
		simd.LaneAffine(b.Run(ys, r), b.Run(xs, r), &as[cb], &cs[cb], relu)
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs, own := gradOwned16(out, grad)
		var mask []float32
		if relu {
			mask = ys
		}
		runOrNil := func(d []float32, r int) []float32 {
			if d == nil {
				return nil
			}
			return b.Run(d, r)
		}
		// The shortcut's gradient is grad past the ReLU (a shortcut comes
		// only with one), which the sums pass stores as it reads it.
		var sgt *tensor.Tensor
		var sg []float32
		if short != nil && short.NeedsGrad() {
			sgt = tensor.EmptyBlocked16(grad.Shape()...)
			sg = tensor.Blocked16(sgt)
		}
		var gw, gb []float32
		if gamma.NeedsGrad() {
			gw = tensor.GradOf(gamma).F32()
		}
		if beta.NeedsGrad() {
			gb = tensor.GradOf(beta).F32()
		}
		var s []laneSums // Σg and Σg·(x−mean) per channel
		if gw != nil || gb != nil || (training && x.NeedsGrad()) {
			mu := lanes(b.Blocks(), func(ch int) float64 { return mean[ch] })
			s = b.sums(func(s *laneSums, r, cb int) {
				simd.LaneGradSums(b.Run(gs, r), b.Run(xs, r), runOrNil(mask, r), runOrNil(sg, r), &mu[cb], &s.a, &s.b)
			})
		} else if sg != nil {
			parallel.For(len(gs), 1, func(lo, hi int) {
				simd.Mask(sg[lo:hi], gs[lo:hi], ys[lo:hi])
			})
		}
		if sgt != nil {
			tensor.PassGrad16(short, sgt, true)
		}
		var gx []float32
		overwrite, done := false, func() {}
		if x.NeedsGrad() {
			if own && x.Grad == nil {
				x.Grad, gx, overwrite = grad, gs, true
			} else {
				gx, overwrite, done = tensor.GradBlocked16(x)
			}
		}
		cgs := make([]channelGrad, bn.c)
		for ch := range cgs {
			var sumG, dot float64
			if s != nil {
				sumG, dot = s[ch/simd.Lanes].a[ch%simd.Lanes], s[ch/simd.Lanes].b[ch%simd.Lanes]
			}
			cgs[ch] = gradOfChannel(sumG, dot, istd[ch], float64(ws[ch]), m, training)
			if gw != nil {
				gw[ch] += float32(cgs[ch].dw)
			}
			if gb != nil {
				gb[ch] += float32(cgs[ch].db)
			}
		}
		if gx == nil {
			return
		}
		gm := lanes(b.Blocks(), func(ch int) float32 { return float32(cgs[ch].gm) })
		k := lanes(b.Blocks(), func(ch int) float32 { return float32(cgs[ch].k) })
		mu := lanes(b.Blocks(), func(ch int) float32 { return float32(mean[ch]) })
		a := lanes(b.Blocks(), func(ch int) float32 { return float32(cgs[ch].a) })
		b.Each(b.Len(), func(r int) {
			cb := r % b.Blocks()
			simd.LaneGradRun(b.Run(gx, r), b.Run(gs, r), b.Run(xs, r), runOrNil(mask, r), &gm[cb], &mu[cb], &k[cb], &a[cb], overwrite)
		})
		done()
	}, x, gamma, beta, short)
	return out
}
