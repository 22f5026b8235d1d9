// Package simd holds the hot loops of BatchNorm, of the elementwise
// operations (residual additions, ReLU, gating products) and of SRM's style
// pooling and CFC, generic over float32 and float64, with float32 as vector
// code.
//
// The Go compiler does not vectorise: a loop over float32 runs one element
// at a time, about 8 cycles each for BatchNorm's reductions and updates,
// which made BatchNorm a third of a ResNet training step. On amd64 with
// AVX2 and FMA the float32 instances run hand-written assembly over 8
// floats per instruction instead; float64, and float32 elsewhere or without
// those extensions, run one portable generic Go loop per function, in this
// file. The choice is made once, when the package is initialised (useAVX2),
// so a process always takes the same path and gets the same bits from run
// to run.
//
// The reductions accumulate in float64, in a fixed order (several
// independent partial sums, combined the same way each call), so the
// results do not depend on scheduling. The vector code fuses multiplies
// and adds (FMA), so it may differ from the portable code in the last bit.
//
// Where a mask is given, a gradient g is used only where mask > 0 and is
// exactly 0 elsewhere (NaN masks included), even where g is NaN or
// infinite, as PyTorch's threshold_backward where(mask > 0, g, 0).
package simd

import (
	"math"
	"unsafe"
)

// Float is the element types the functions take: float32, the type models
// train in, goes to the vector code where the machine has it; float64 (and
// float32 without AVX2) runs one generic Go loop per function, with the
// same semantics.
type Float interface{ ~float32 | ~float64 }

// vec returns s as []float32, and whether the vector code is to take it:
// T is float32 underneath (the only 4-byte type in Float, a constant per
// instantiation) and this process runs the assembly.
func vec[T Float](s []T) ([]float32, bool) {
	if !useAVX2 || unsafe.Sizeof(*new(T)) != 4 {
		return nil, false
	}
	return f32(s), true
}

// f32 is s as []float32, where vec has said that T is float32 underneath;
// nil stays nil (no mask, no dx). A reinterpretation, not a type
// assertion, which would cost a dictionary lookup per call.
func f32[T Float](s []T) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// opt is s[:n], or nil where s is nil: an optional operand (a mask, a dx)
// cut to the length of the others.
func opt[T Float](s []T, n int) []T {
	if s == nil {
		return nil
	}
	return s[:n]
}

// ShiftedSums returns Σ(s[j]−k) and Σ(s[j]−k)², accumulated in float64.
func ShiftedSums[T Float](s []T, k float64) (sum, sq float64) {
	if v, ok := vec(s); ok {
		if n := len(v) &^ 15; n > 0 {
			sum, sq = shiftedSumsAVX2(v[:n], k)
			s = s[n:]
		}
	}
	a, b := shiftedSumsGo(s, k)
	return sum + a, sq + b
}

// Moments turns ShiftedSums' Σ(x−k) and Σ(x−k)² over n values into their
// mean and Σ(x − mean)², the form BatchNorm and style pooling use.
func Moments(k, sum, sq, n float64) (mean, dev2 float64) {
	d := sum / n
	return k + d, max(sq-sum*d, 0) // rounding may dip below 0
}

// Affine sets dst[j] = src[j]·a + b, then max(dst[j], 0) when relu is set
// (NaN passes the ReLU, as in PyTorch). src is at least as long as dst.
func Affine[T Float](dst, src []T, a, b T, relu bool) {
	src = src[:len(dst)]
	if d, ok := vec(dst); ok && len(d) > 0 {
		affineAVX2(d, f32(src), float32(a), float32(b), relu)
		return
	}
	affineGo(dst, src, a, b, relu)
}

// AffineAdd adds src[j]·a + b to dst[j]. dst may be src itself; src is at
// least as long as dst. With b = −0 it adds src[j]·a alone, to the bit
// (x·a + (−0) is x·a, zeros' signs included).
func AffineAdd[T Float](dst, src []T, a, b T) {
	src = src[:len(dst)]
	if d, ok := vec(dst); ok && len(d) > 0 {
		affineAddAVX2(d, f32(src), float32(a), float32(b))
		return
	}
	affineAddGo(dst, src, a, b)
}

// GradSums returns Σg' and Σg'·(x[j]−mu) in float64, where g' is g, or
// where mask is not nil, g where mask > 0 and 0 elsewhere. x and mask are
// at least as long as g.
func GradSums[T Float](g, x, mask []T, mu float64) (sum, dot float64) {
	x, mask = x[:len(g)], opt(mask, len(g))
	if v, ok := vec(g); ok {
		if n := len(v) &^ 15; n > 0 {
			if mask != nil {
				sum, dot = gradSumsMaskAVX2(v[:n], f32(x[:n]), f32(mask[:n]), mu)
				mask = mask[n:]
			} else {
				sum, dot = gradSumsAVX2(v[:n], f32(x[:n]), mu)
			}
			g, x = g[n:], x[n:]
		}
	}
	a, b := gradSumsGo(g, x, mask, mu)
	return sum + a, dot + b
}

// GradRun sets dx[j] = (g'[j] − gm − (x[j]−mu)·k)·a when overwrite is set,
// else adds that to dx[j], with g' as in GradSums. dx may be g itself (the
// same slice). g, x and mask are at least as long as dx.
func GradRun[T Float](dx, g, x, mask []T, gm, mu, k, a T, overwrite bool) {
	g, x, mask = g[:len(dx)], x[:len(dx)], opt(mask, len(dx))
	if d, ok := vec(dx); ok && len(d) > 0 {
		gradRunAVX2(d, f32(g), f32(x), f32(mask), float32(gm), float32(mu), float32(k), float32(a), overwrite)
		return
	}
	gradRunGo(dx, g, x, mask, gm, mu, k, a, overwrite)
}

// AddTo adds src to dst: dst[j] += src[j]. src is at least as long as dst.
func AddTo[T Float](dst, src []T) {
	Add(dst, dst, src, false)
}

// Add sets dst[j] = a[j] + b[j], then max(dst[j], 0) when relu is set (NaN
// passes the ReLU, as in Affine). dst may be a or b itself (the same
// slice). a and b are at least as long as dst.
func Add[T Float](dst, a, b []T, relu bool) { ScaleAdd(dst, a, b, 1, relu) }

// ScaleAdd is Add with a scaled by k: dst[j] = a[j]·k + b[j], a residual
// addition with its branch recalibrated by one gate.
func ScaleAdd[T Float](dst, a, b []T, k T, relu bool) { AffineAddTo(dst, a, b, k, NegZero[T](), relu) }

// AffineAddTo sets dst[j] = a[j]·k + c + b[j], then clamps at 0 when relu
// is set: a per-channel affine map (BatchNorm's) and a residual addition in
// one pass. c = −0 adds nothing, the sign of a zero included.
func AffineAddTo[T Float](dst, a, b []T, k, c T, relu bool) {
	a, b = a[:len(dst)], b[:len(dst)]
	if d, ok := vec(dst); ok && len(d) > 0 {
		addAVX2(d, f32(a), f32(b), float32(k), float32(c), relu)
		return
	}
	addGo(dst, a, b, k, c, relu)
}

// Mask sets dst[j] = g[j] where y[j] > 0 and exactly 0 elsewhere (y NaN
// included), whatever g[j] is: ReLU's gradient, with y its output. dst may
// be g itself. g and y are at least as long as dst.
func Mask[T Float](dst, g, y []T) { maskSel(dst, g, y, false) }

// MaskAdd adds g[j] to dst[j] where y[j] > 0 and leaves dst[j] elsewhere,
// as Mask would into a separate buffer, without one.
func MaskAdd[T Float](dst, g, y []T) { maskSel(dst, g, y, true) }

func maskSel[T Float](dst, g, y []T, add bool) {
	g, y = g[:len(dst)], y[:len(dst)]
	if d, ok := vec(dst); ok && len(d) > 0 {
		maskAVX2(d, f32(g), f32(y), add)
		return
	}
	maskGo(dst, g, y, add)
}

// Mul sets dst[j] = a[j]·b[j] when overwrite is set, else adds that to
// dst[j]. dst may be a or b itself. a and b are at least as long as dst.
func Mul[T Float](dst, a, b []T, overwrite bool) {
	a, b = a[:len(dst)], b[:len(dst)]
	if d, ok := vec(dst); ok && len(d) > 0 {
		mulAVX2(d, f32(a), f32(b), overwrite)
		return
	}
	mulGo(dst, a, b, overwrite)
}

// ScaleGrad is the backward step of y = x·a for one scalar a: it returns
// Σ gy[j]·x[j] in float64 (a's gradient) and sets dx[j] = gy[j]·a when
// overwrite is set, else adds that to dx[j]. dx may be gy itself, or nil
// for the sum alone; otherwise it has gy's length. x is at least as long
// as gy.
func ScaleGrad[T Float](dx, gy, x []T, a T, overwrite bool) (dot float64) {
	x, dx = x[:len(gy)], opt(dx, len(gy))
	if v, ok := vec(gy); ok {
		if n := len(v) &^ 15; n > 0 {
			if dx != nil {
				dot = scaleGradAVX2(f32(dx[:n]), v[:n], f32(x[:n]), float32(a), overwrite)
				dx = dx[n:]
			} else {
				dot = scaleGradAVX2(nil, v[:n], f32(x[:n]), float32(a), overwrite)
			}
			gy, x = gy[n:], x[n:]
		}
	}
	return dot + scaleGradGo(dx, gy, x, a, overwrite)
}

// Dot returns Σ a[j]·b[j] in float64, as ScaleGrad's sum. b is at least as
// long as a.
func Dot[T Float](a, b []T) float64 { return ScaleGrad(nil, a, b, 0, false) }

// The portable loops, for float64 and for float32 without the vector code.
// The reductions keep four partial sums in a fixed interleaving: one
// float64 accumulator would make every addition wait for the previous one
// (several cycles each), which made them latency-bound. The order is fixed,
// so the results are still the same bits run to run.

func shiftedSumsGo[T Float](s []T, k float64) (sum, sq float64) {
	var a0, a1, a2, a3, q0, q1, q2, q3 float64
	for ; len(s) >= 4; s = s[4:] {
		d0, d1, d2, d3 := float64(s[0])-k, float64(s[1])-k, float64(s[2])-k, float64(s[3])-k
		a0 += d0
		a1 += d1
		a2 += d2
		a3 += d3
		q0 += d0 * d0
		q1 += d1 * d1
		q2 += d2 * d2
		q3 += d3 * d3
	}
	for _, e := range s {
		d := float64(e) - k
		a0 += d
		q0 += d * d
	}
	return (a0 + a1) + (a2 + a3), (q0 + q1) + (q2 + q3)
}

func affineGo[T Float](dst, src []T, a, b T, relu bool) {
	src = src[:len(dst)]
	if relu {
		for j, e := range src {
			// max passes NaN through, as PyTorch's ReLU does.
			dst[j] = max(e*a+b, 0)
		}
		return
	}
	for j, e := range src {
		dst[j] = e*a + b
	}
}

func affineAddGo[T Float](dst, src []T, a, b T) {
	src = src[:len(dst)]
	for j, e := range src {
		dst[j] += e*a + b
	}
}

func gradSumsGo[T Float](g, x, mask []T, mu float64) (sum, dot float64) {
	x = x[:len(g)]
	var s0, s1, s2, s3, d0, d1, d2, d3 float64
	j := 0
	for ; j+4 <= len(g); j += 4 {
		g0, g1, g2, g3 := float64(masked(g, mask, j)), float64(masked(g, mask, j+1)), float64(masked(g, mask, j+2)), float64(masked(g, mask, j+3))
		s0 += g0
		s1 += g1
		s2 += g2
		s3 += g3
		d0 += g0 * (float64(x[j]) - mu)
		d1 += g1 * (float64(x[j+1]) - mu)
		d2 += g2 * (float64(x[j+2]) - mu)
		d3 += g3 * (float64(x[j+3]) - mu)
	}
	for ; j < len(g); j++ {
		gj := float64(masked(g, mask, j))
		s0 += gj
		d0 += gj * (float64(x[j]) - mu)
	}
	return (s0 + s1) + (s2 + s3), (d0 + d1) + (d2 + d3)
}

func gradRunGo[T Float](dx, g, x, mask []T, gm, mu, k, a T, overwrite bool) {
	g, x = g[:len(dx)], x[:len(dx)]
	if overwrite {
		for j := range dx {
			dx[j] = (masked(g, mask, j) - gm - (x[j]-mu)*k) * a
		}
		return
	}
	for j := range dx {
		dx[j] += (masked(g, mask, j) - gm - (x[j]-mu)*k) * a
	}
}

// masked is g[j], or where mask is not nil and mask[j] is not positive
// (NaN included), 0 whatever g[j] is: a select, not g·0, so that a NaN or
// infinite gradient behind a closed ReLU gives 0, as PyTorch's
// threshold_backward where(mask > 0, g, 0).
func masked[T Float](g, mask []T, j int) T {
	if mask != nil && !(mask[j] > 0) {
		return 0
	}
	return g[j]
}

func addGo[T Float](dst, a, b []T, k, c T, relu bool) {
	a, b = a[:len(dst)], b[:len(dst)]
	if relu {
		for j := range dst {
			dst[j] = max(a[j]*k+(b[j]+c), 0)
		}
		return
	}
	for j := range dst {
		dst[j] = a[j]*k + (b[j] + c)
	}
}

func maskGo[T Float](dst, g, y []T, add bool) {
	g, y = g[:len(dst)], y[:len(dst)]
	if add {
		for j := range dst {
			dst[j] += masked(g, y, j)
		}
		return
	}
	for j := range dst {
		dst[j] = masked(g, y, j)
	}
}

func mulGo[T Float](dst, a, b []T, overwrite bool) {
	a, b = a[:len(dst)], b[:len(dst)]
	if overwrite {
		for j := range dst {
			dst[j] = a[j] * b[j]
		}
		return
	}
	for j := range dst {
		dst[j] += a[j] * b[j]
	}
}

// scaleGradGo reads gy[j] and x[j] before it writes dx[j], so dx may be gy.
// dx is nil or as long as gy.
func scaleGradGo[T Float](dx, gy, x []T, a T, overwrite bool) (dot float64) {
	x = x[:len(gy)]
	var d0, d1, d2, d3 float64
	j := 0
	for ; j+4 <= len(gy); j += 4 {
		d0 += float64(gy[j]) * float64(x[j])
		d1 += float64(gy[j+1]) * float64(x[j+1])
		d2 += float64(gy[j+2]) * float64(x[j+2])
		d3 += float64(gy[j+3]) * float64(x[j+3])
	}
	for ; j < len(gy); j++ {
		d0 += float64(gy[j]) * float64(x[j])
	}
	switch {
	case dx == nil:
	case overwrite:
		dx = dx[:len(gy)]
		for j, g := range gy {
			dx[j] = g * a
		}
	default:
		dx = dx[:len(gy)]
		for j, g := range gy {
			dx[j] += g * a
		}
	}
	return (d0 + d1) + (d2 + d3)
}

// NegZero is −0, which added to any value leaves it as it is (+0 would
// turn a −0 into +0).
func NegZero[T Float]() T { return T(math.Copysign(0, -1)) }
