package simd

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly, which needs AVX2 and FMA. Tests turn it off
// to run the portable loops.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// The assembly in simd_amd64.s. The sums take lengths that are multiples of
// 16 (the callers run the rest through the Go loops); Affine and GradRun
// take any length.

//go:noescape
func shiftedSumsAVX2(s []float32, k float64) (sum, sq float64)

//go:noescape
func affineAVX2(dst, src []float32, a, b float32, relu bool)

//go:noescape
func gradSumsAVX2(g, x []float32, mu float64) (sum, dot float64)

//go:noescape
func gradSumsMaskAVX2(g, x, mask []float32, mu float64) (sum, dot float64)

//go:noescape
func gradRunAVX2(dx, g, x, mask []float32, gm, mu, k, a float32, overwrite bool)
