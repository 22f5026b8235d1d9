//go:build !amd64

package simd

func laneShiftedSumsAVX2(s []float32, k, sum, sq *[Lanes]float64) { panic("simd: no AVX2") }

func laneGradSumsAVX2(g, x, mask, out []float32, mu, sum, dot *[Lanes]float64) {
	panic("simd: no AVX2")
}

func laneAffineAVX2(dst, src []float32, a, b *[Lanes]float32, relu bool) { panic("simd: no AVX2") }

func laneAffineAddAVX2(dst, src, short []float32, a, b *[Lanes]float32, relu bool) {
	panic("simd: no AVX2")
}

func laneGradRunAVX2(dx, g, x, mask []float32, gm, mu, k, a *[Lanes]float32, overwrite bool) {
	panic("simd: no AVX2")
}
