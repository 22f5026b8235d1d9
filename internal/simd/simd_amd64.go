package simd

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly, which needs AVX2 and FMA. Tests turn it off
// to run the portable loops.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// The assembly in simd_amd64.s. The sums take lengths that are multiples of
// 16 (the callers run the rest through the Go loops), and so does
// scaleGradAVX2, whose dx may be nil; the others take any length.

//go:noescape
func shiftedSumsAVX2(s []float32, k float64) (sum, sq float64)

//go:noescape
func affineAVX2(dst, src []float32, a, b float32, relu bool)

//go:noescape
func affineAddAVX2(dst, src []float32, a, b float32)

//go:noescape
func gradSumsAVX2(g, x []float32, mu float64) (sum, dot float64)

//go:noescape
func gradSumsMaskAVX2(g, x, mask []float32, mu float64) (sum, dot float64)

//go:noescape
func gradRunAVX2(dx, g, x, mask []float32, gm, mu, k, a float32, overwrite bool)

//go:noescape
func addAVX2(dst, a, b []float32, k, c float32, relu bool)

//go:noescape
func maskAVX2(dst, g, y []float32, add bool)

//go:noescape
func mulAVX2(dst, a, b []float32, overwrite bool)

//go:noescape
func scaleGradAVX2(dx, gy, x []float32, a float32, overwrite bool) (dot float64)
