package simd

import (
	"fmt"
	"math"
)

// Lanes is the channels of one block of oneDNN's nChw16c layout, in which
// a run of memory is rows of 16 values, lane l of each row belonging to
// channel l of the block: per-channel parameters become per-lane arrays.
// The functions run lanes_amd64.s where useAVX2 says, else the loops
// here. The sums accumulate in float64, one accumulator per lane starting
// from the caller's value, rows in order, the squares and products fused
// (math.FMA): the order of the assembly, so both give the same bits. The
// float32 results of the vector code fuse as simd.go's do, and may differ
// from the loops' in the last bit.
const Lanes = 16

// Splat is v in every lane: −0 as the offset of a lane kernel adds a
// product alone, to the bit, as in AffineAdd.
func Splat(v float32) *[Lanes]float32 {
	var s [Lanes]float32
	for l := range s {
		s[l] = v
	}
	return &s
}

func rows(what string, n int) {
	if n%Lanes != 0 {
		panic(fmt.Sprintf("simd: %s of %d values, not rows of %d", what, n, Lanes))
	}
}

// LaneShiftedSums adds Σ(s[16i+l]−k[l]) to sum[l] and Σ(s[16i+l]−k[l])²
// to sq[l], in float64, rows in order.
func LaneShiftedSums(s []float32, k, sum, sq *[Lanes]float64) {
	rows("LaneShiftedSums", len(s))
	if useAVX2 {
		laneShiftedSumsAVX2(s, k, sum, sq)
		return
	}
	for ; len(s) >= Lanes; s = s[Lanes:] {
		for l, e := range s[:Lanes] {
			d := float64(e) - k[l]
			sum[l] += d
			sq[l] = math.FMA(d, d, sq[l])
		}
	}
}

// LaneAffine sets dst[16i+l] = src[16i+l]·a[l] + b[l], then max(·, 0)
// when relu is set (NaN passes, as Affine).
func LaneAffine(dst, src []float32, a, b *[Lanes]float32, relu bool) {
	rows("LaneAffine", len(dst))
	src = src[:len(dst)]
	if useAVX2 {
		laneAffineAVX2(dst, src, a, b, relu)
		return
	}
	for i := 0; i < len(dst); i += Lanes {
		d, s := dst[i:i+Lanes], src[i:i+Lanes]
		for l := range d {
			v := s[l]*a[l] + b[l]
			if relu {
				v = max(v, 0)
			}
			d[l] = v
		}
	}
}

// LaneAffineAdd sets dst[16i+l] = src[16i+l]·a[l] + (short[16i+l] + b[l]),
// then max(·, 0) when relu is set: AffineAddTo's rounding.
func LaneAffineAdd(dst, src, short []float32, a, b *[Lanes]float32, relu bool) {
	rows("LaneAffineAdd", len(dst))
	src, short = src[:len(dst)], short[:len(dst)]
	if useAVX2 {
		laneAffineAddAVX2(dst, src, short, a, b, relu)
		return
	}
	for i := 0; i < len(dst); i += Lanes {
		d, s, h := dst[i:i+Lanes], src[i:i+Lanes], short[i:i+Lanes]
		for l := range d {
			v := s[l]*a[l] + (h[l] + b[l])
			if relu {
				v = max(v, 0)
			}
			d[l] = v
		}
	}
}

// LaneAffineAcc sets dst[16i+l] = src[16i+l]·a[l] + b[l] as LaneAffine,
// or, when acc, adds that to dst as LaneAffineAdd with short = dst: a
// gradient written by its first contribution and added to by the rest.
func LaneAffineAcc(dst, src []float32, a, b *[Lanes]float32, acc bool) {
	if acc {
		LaneAffineAdd(dst, src, dst, a, b, false)
		return
	}
	LaneAffine(dst, src, a, b, false)
}

// LaneGradSums adds Σg' to sum[l] and Σg'·(x−mu[l]) to dot[l] in float64,
// rows in order, with g' as in GradSums; where out is not nil, it also
// stores g' there, for a gradient that goes on past the ReLU (a residual
// block's shortcut) without another pass over g and the mask.
func LaneGradSums(g, x, mask, out []float32, mu, sum, dot *[Lanes]float64) {
	rows("LaneGradSums", len(g))
	x, mask, out = x[:len(g)], opt(mask, len(g)), opt(out, len(g))
	if useAVX2 {
		laneGradSumsAVX2(g, x, mask, out, mu, sum, dot)
		return
	}
	for i := 0; i < len(g); i += Lanes {
		for l := range Lanes {
			gj := masked(g, mask, i+l)
			if out != nil {
				out[i+l] = gj
			}
			sum[l] += float64(gj)
			dot[l] = math.FMA(float64(gj), float64(x[i+l])-mu[l], dot[l])
		}
	}
}

// LaneGradRun sets dx[16i+l] = (g'−gm[l]−(x−mu[l])·k[l])·a[l] when
// overwrite is set, else adds it, with g' as in GradSums; dx may be g.
func LaneGradRun(dx, g, x, mask []float32, gm, mu, k, a *[Lanes]float32, overwrite bool) {
	rows("LaneGradRun", len(dx))
	g, x, mask = g[:len(dx)], x[:len(dx)], opt(mask, len(dx))
	if useAVX2 {
		laneGradRunAVX2(dx, g, x, mask, gm, mu, k, a, overwrite)
		return
	}
	for i := 0; i < len(dx); i += Lanes {
		for l := range Lanes {
			v := (masked(g, mask, i+l) - gm[l] - (x[i+l]-mu[l])*k[l]) * a[l]
			if overwrite {
				dx[i+l] = v
			} else {
				dx[i+l] += v
			}
		}
	}
}
