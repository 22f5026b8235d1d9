//go:build !amd64

package simd

// useAVX2 is false off amd64: there is no vector code here.
var useAVX2 = false

func shiftedSumsAVX2(s []float32, k float64) (sum, sq float64) { panic("simd: no AVX2") }

func affineAVX2(dst, src []float32, a, b float32, relu bool) { panic("simd: no AVX2") }

func affineAddAVX2(dst, src []float32, a, b float32) { panic("simd: no AVX2") }

func gradSumsAVX2(g, x []float32, mu float64) (sum, dot float64) { panic("simd: no AVX2") }

func gradSumsMaskAVX2(g, x, mask []float32, mu float64) (sum, dot float64) {
	panic("simd: no AVX2")
}

func gradRunAVX2(dx, g, x, mask []float32, gm, mu, k, a float32, overwrite bool) {
	panic("simd: no AVX2")
}

func addAVX2(dst, a, b []float32, k, c float32, relu bool) { panic("simd: no AVX2") }

func maskAVX2(dst, g, y []float32, add bool) { panic("simd: no AVX2") }

func mulAVX2(dst, a, b []float32, overwrite bool) { panic("simd: no AVX2") }

func scaleGradAVX2(dx, gy, x []float32, a float32, overwrite bool) (dot float64) {
	panic("simd: no AVX2")
}
