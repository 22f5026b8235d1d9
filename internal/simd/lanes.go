package simd

import "fmt"

// Lanes is the channels of one block of oneDNN's nChw16c layout, in which
// a run of memory is rows of 16 values, lane l of each row belonging to
// channel l of the block: per-channel parameters become per-lane arrays.
const Lanes = 16

func rows(what string, n int) {
	if n%Lanes != 0 {
		panic(fmt.Sprintf("simd: %s of %d values, not rows of %d", what, n, Lanes))
	}
}

// LaneShiftedSums adds Σ(s[16i+l]−k[l]) to sum[l] and Σ(s[16i+l]−k[l])²
// to sq[l], in float64, rows in order.
func LaneShiftedSums(s []float32, k, sum, sq *[Lanes]float64) {
	rows("LaneShiftedSums", len(s))
	for ; len(s) >= Lanes; s = s[Lanes:] {
		for l, e := range s[:Lanes] {
			d := float64(e) - k[l]
			sum[l] += d
			sq[l] += d * d
		}
	}
}

// LaneAffine sets dst[16i+l] = src[16i+l]·a[l] + b[l], then max(·, 0)
// when relu is set (NaN passes, as Affine).
func LaneAffine(dst, src []float32, a, b *[Lanes]float32, relu bool) {
	rows("LaneAffine", len(dst))
	src = src[:len(dst)]
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

// LaneGradSums adds Σg' to sum[l] and Σg'·(x−mu[l]) to dot[l] in float64,
// rows in order, with g' as in GradSums.
func LaneGradSums(g, x, mask []float32, mu, sum, dot *[Lanes]float64) {
	rows("LaneGradSums", len(g))
	x, mask = x[:len(g)], opt(mask, len(g))
	for i := 0; i < len(g); i += Lanes {
		for l := range Lanes {
			gj := float64(masked(g, mask, i+l))
			sum[l] += gj
			dot[l] += gj * (float64(x[i+l]) - mu[l])
		}
	}
}

// LaneGradRun sets dx[16i+l] = (g'−gm[l]−(x−mu[l])·k[l])·a[l] when
// overwrite is set, else adds it, with g' as in GradSums; dx may be g.
func LaneGradRun(dx, g, x, mask []float32, gm, mu, k, a *[Lanes]float32, overwrite bool) {
	rows("LaneGradRun", len(dx))
	g, x, mask = g[:len(dx)], x[:len(dx)], opt(mask, len(dx))
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
