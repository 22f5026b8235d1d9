package simd

// The assembly in lanes_amd64.s; lengths are multiples of 16 (whole rows).

//go:noescape
func laneShiftedSumsAVX2(s []float32, k, sum, sq *[Lanes]float64)

//go:noescape
func laneGradSumsAVX2(g, x, mask, out []float32, mu, sum, dot *[Lanes]float64)

//go:noescape
func laneAffineAVX2(dst, src []float32, a, b *[Lanes]float32, relu bool)

//go:noescape
func laneAffineAddAVX2(dst, src, short []float32, a, b *[Lanes]float32, relu bool)

//go:noescape
func laneGradRunAVX2(dx, g, x, mask []float32, gm, mu, k, a *[Lanes]float32, overwrite bool)
