package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// impls runs f once per implementation this machine has: the portable Go
// loops, and the vector code where useAVX2 was set at start-up.
func impls(t testing.TB, f func(t testing.TB)) {
	hasVec := useAVX2
	defer func() { useAVX2 = hasVec }()
	for _, vec := range []bool{false, true} {
		if vec && !hasVec {
			continue
		}
		useAVX2 = vec
		name := "go"
		if vec {
			name = "avx2"
		}
		if tt, ok := t.(*testing.T); ok {
			tt.Run(name, func(t *testing.T) { f(t) })
		} else {
			f(t)
		}
	}
}

// byType runs a test for float32, on every implementation this machine
// has, and for float64, which always runs the generic Go loops.
func byType(t *testing.T, f32, f64 func(t testing.TB)) {
	t.Run("float32", func(t *testing.T) { impls(t, f32) })
	t.Run("float64", func(t *testing.T) { f64(t) })
}

func testLengths() []int {
	var ns []int
	for n := range 71 {
		ns = append(ns, n)
	}
	return append(ns, 1000, 1024, 4097)
}

// randSlice returns n normal values with the given mean and spread that
// start at a random offset into a larger buffer, so that the vector code
// sees unaligned starts, with a few past the end that it must not touch.
func randSlice[T Float](r *rand.Rand, n int, mean, std float64) []T {
	buf := make([]T, n+16)
	for i := range buf {
		buf[i] = T(mean + std*r.NormFloat64())
	}
	off := r.IntN(8)
	return buf[off : off+n]
}

// randMask returns a mask that is positive about half the time, and
// otherwise negative, ±0 or NaN.
func randMask[T Float](r *rand.Rand, n int) []T {
	m := randSlice[T](r, n, 0, 1)
	for i := range m {
		switch r.IntN(10) {
		case 0:
			m[i] = 0
		case 1:
			m[i] = T(math.Copysign(0, -1))
		case 2:
			m[i] = T(math.NaN())
		}
	}
	return m
}

// poison puts NaN and ±Inf into g where mask blocks it: the masked
// gradient must still be exactly 0 there.
func poison[T Float](r *rand.Rand, g, mask []T) {
	for i := range g {
		if !(mask[i] > 0) && r.IntN(3) == 0 {
			g[i] = []T{T(math.NaN()), T(math.Inf(1)), T(math.Inf(-1))}[r.IntN(3)]
		}
	}
}

func refMasked[T Float](g, mask []T, j int) float64 {
	if mask != nil && !(mask[j] > 0) {
		return 0
	}
	return float64(g[j])
}

// closeSum reports whether a float64 sum got is within the rounding of a
// float64 accumulation of want, whose terms have absolute sum abs.
func closeSum(got, want, abs float64) bool {
	return math.Abs(got-want) <= 1e-12*abs+1e-300
}

// closeT reports whether got is within a few roundings to T of want, an
// exact value whose terms have magnitude scale.
func closeT[T Float](got T, want, scale float64) bool {
	return math.Abs(float64(got)-want) <= 4*ulp[T]()*scale
}

// ulp is T's relative rounding unit, 2⁻²⁴ for float32 and 2⁻⁵³ for float64.
func ulp[T Float]() float64 {
	if unsafe.Sizeof(T(0)) == 4 {
		return 0x1p-24
	}
	return 0x1p-53
}

// bits is x's bits, widened to float64 (exactly) to compare both types.
func bits[T Float](x T) uint64 { return math.Float64bits(float64(x)) }

func TestShiftedSums(t *testing.T) { byType(t, testShiftedSums[float32], testShiftedSums[float64]) }

func testShiftedSums[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range testLengths() {
		s := randSlice[T](r, n, 100, 3)
		k := 100.5
		if n > 0 {
			k = float64(s[0])
		}
		var sum, sq, abs, absq float64
		for _, e := range s {
			d := float64(e) - k
			sum += d
			sq += d * d
			abs += math.Abs(d)
		}
		absq = sq
		gs, gq := ShiftedSums(s, k)
		if !closeSum(gs, sum, abs) || !closeSum(gq, sq, absq) {
			t.Errorf("n=%d: ShiftedSums = %v, %v, want %v, %v", n, gs, gq, sum, sq)
		}
	}
}

func TestGradSums(t *testing.T) { byType(t, testGradSums[float32], testGradSums[float64]) }

func testGradSums[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range testLengths() {
		for _, withMask := range []bool{false, true} {
			g, x := randSlice[T](r, n, 0.1, 1), randSlice[T](r, n+3, 0.5, 2)
			var mask []T
			if withMask {
				mask = randMask[T](r, n+5)
				poison(r, g, mask)
			}
			mu := 0.4
			var sum, dot, abs, absDot float64
			for j := range g {
				gj := refMasked(g, mask, j)
				sum += gj
				dot += gj * (float64(x[j]) - mu)
				abs += math.Abs(gj)
				absDot += math.Abs(gj * (float64(x[j]) - mu))
			}
			gs, gd := GradSums(g, x, mask, mu)
			if !closeSum(gs, sum, abs) || !closeSum(gd, dot, absDot) {
				t.Errorf("n=%d mask=%v: GradSums = %v, %v, want %v, %v", n, withMask, gs, gd, sum, dot)
			}
		}
	}
}

func TestAffine(t *testing.T) { byType(t, testAffine[float32], testAffine[float64]) }

func testAffine[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range testLengths() {
		for _, relu := range []bool{false, true} {
			src := randSlice[T](r, n+2, 0.3, 2)
			if n > 3 {
				src[1] = T(math.NaN())
				src[n-1] = T(math.Inf(-1))
			}
			dst := randSlice[T](r, n, 0, 1)
			after, keep := pastEnd(dst)
			a, b := T(1.7), T(-0.3)
			what := fmt.Sprintf("n=%d relu=%v: Affine", n, relu)
			Affine(dst, src, a, b, relu)
			for j, e := range dst {
				want := float64(src[j])*float64(a) + float64(b)
				if relu {
					want = max(want, 0)
				}
				check(t, what, j, e, want, math.Abs(float64(src[j])*float64(a))+math.Abs(float64(b)))
			}
			checkPastEnd(t, what, after, keep)
		}
	}
}

func TestAffineAdd(t *testing.T) { byType(t, testAffineAdd[float32], testAffineAdd[float64]) }

func testAffineAdd[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, n := range testLengths() {
		for _, b := range []T{0.25, T(math.Copysign(0, -1))} {
			src := withSpecials(randSlice[T](r, n+2, 0.3, 2))
			dst := randSlice[T](r, n, 0, 1)
			old := append([]T(nil), dst...)
			after, keep := pastEnd(dst)
			a := T(-1.7)
			what := fmt.Sprintf("n=%d b=%v: AffineAdd", n, b)
			AffineAdd(dst, src, a, b)
			for j, e := range dst {
				want := float64(old[j]) + float64(src[j])*float64(a) + float64(b)
				check(t, what, j, e, want, math.Abs(float64(old[j]))+math.Abs(float64(src[j])*float64(a))+math.Abs(float64(b)))
			}
			checkPastEnd(t, what, after, keep)
			// dst may be src itself.
			s2 := append([]T(nil), src[:n]...)
			want := append([]T(nil), src[:n]...)
			AffineAdd(want, src, a, b)
			AffineAdd(s2, s2, a, b)
			sameBits(t, what+" in place", s2, want)
			if !math.Signbit(float64(b)) {
				continue
			}
			// b = −0 adds the product alone, to the bit.
			prod := make([]T, n)
			for j := range prod {
				prod[j] = src[j] * a
			}
			got := append([]T(nil), old...)
			AffineAdd(got, src, a, b)
			for j := range prod {
				prod[j] += old[j]
			}
			sameBits(t, what+" with b = -0", got, prod)
		}
	}
}

func TestDot(t *testing.T) { byType(t, testDot[float32], testDot[float64]) }

func testDot[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, n := range testLengths() {
		a, b := randSlice[T](r, n, 0.1, 1), randSlice[T](r, n+3, 0.5, 2)
		var dot, abs float64
		for j := range a {
			dot += float64(a[j]) * float64(b[j])
			abs += math.Abs(float64(a[j]) * float64(b[j]))
		}
		if got := Dot(a, b); !closeSum(got, dot, abs) {
			t.Errorf("n=%d: Dot = %v, want %v", n, got, dot)
		}
	}
}

func TestAffineReLUZeros(t *testing.T) {
	byType(t, testAffineReLUZeros[float32], testAffineReLUZeros[float64])
}

// max(-0, 0) is +0 in Go; the vector code must agree, in the vector
// loop and the tail.
func testAffineReLUZeros[T Float](t testing.TB) {
	negZero := T(math.Copysign(0, -1))
	for _, n := range []int{1, 8, 9, 17} {
		src, dst := make([]T, n), make([]T, n)
		for i := range src {
			src[i] = negZero
		}
		Affine(dst, src, 1, negZero, true)
		for _, e := range dst {
			if bits(e) != 0 {
				t.Errorf("n=%d: ReLU(-0) = %v (bits %#x), want +0", n, e, bits(e))
			}
		}
		Affine(dst, src, 1, negZero, false)
		for _, e := range dst {
			if !math.Signbit(float64(e)) {
				t.Errorf("n=%d: -0·1 + -0 = %v, want -0", n, e)
			}
		}
	}
}

func TestGradRun(t *testing.T) { byType(t, testGradRun[float32], testGradRun[float64]) }

func testGradRun[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(7, 8))
	gm, mu, k, a := T(0.05), T(0.4), T(0.3), T(1.3)
	for _, n := range testLengths() {
		for _, withMask := range []bool{false, true} {
			for _, overwrite := range []bool{false, true} {
				g, x := randSlice[T](r, n, 0.1, 1), randSlice[T](r, n+1, 0.5, 2)
				var mask []T
				if withMask {
					mask = randMask[T](r, n+2)
					poison(r, g, mask)
				}
				dx := randSlice[T](r, n, 0, 1)
				old := append([]T(nil), dx...)
				after, keep := pastEnd(dx)
				what := fmt.Sprintf("n=%d mask=%v overwrite=%v: GradRun", n, withMask, overwrite)
				GradRun(dx, g, x, mask, gm, mu, k, a, overwrite)
				for j, e := range dx {
					gj := refMasked(g, mask, j)
					xm := float64(x[j]) - float64(mu)
					want := (gj - float64(gm) - xm*float64(k)) * float64(a)
					scale := (math.Abs(gj) + math.Abs(float64(gm)) + (math.Abs(float64(x[j]))+math.Abs(float64(mu)))*math.Abs(float64(k))) * math.Abs(float64(a))
					if !overwrite {
						want += float64(old[j])
						scale += math.Abs(float64(old[j]))
					}
					check(t, what, j, e, want, scale)
				}
				checkPastEnd(t, what, after, keep)
				if !overwrite {
					continue
				}
				// dx may be g itself: the same values as into a
				// separate dx.
				g2 := append([]T(nil), g...)
				GradRun(g2, g2, x, mask, gm, mu, k, a, true)
				sameBits(t, what+" in place", g2, dx)
			}
		}
	}
}

func TestVectorMatchesGo(t *testing.T) {
	// Both paths on the same data: sums within float64 rounding, elements
	// within a float32 rounding or two (fused against separate multiply
	// and add).
	if !useAVX2 {
		t.Skip("no vector code on this machine")
	}
	defer func() { useAVX2 = true }()
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range testLengths() {
		s, g, x, mask := randSlice[float32](r, n, 1, 2), randSlice[float32](r, n, 0, 1), randSlice[float32](r, n, 0, 1), randMask[float32](r, n)
		type result struct {
			s1, s2, g1, g2 float64
			aff, run       []float32
		}
		var res [2]result
		for i, vec := range []bool{false, true} {
			useAVX2 = vec
			var q result
			q.s1, q.s2 = ShiftedSums(s, 0.5)
			q.g1, q.g2 = GradSums(g, x, mask, 0.1)
			q.aff = make([]float32, n)
			Affine(q.aff, s, 0.7, 0.2, true)
			q.run = make([]float32, n)
			GradRun(q.run, g, x, mask, 0.1, 0.2, 0.3, 0.9, true)
			res[i] = q
		}
		p, v := res[0], res[1]
		rel := func(a, b float64) float64 { return math.Abs(a-b) / max(math.Abs(a), math.Abs(b), 1e-300) }
		if rel(p.s1, v.s1) > 1e-9 || rel(p.s2, v.s2) > 1e-12 || math.Abs(p.g1-v.g1) > 1e-12*float64(n+1) || math.Abs(p.g2-v.g2) > 1e-12*float64(n+1) {
			t.Errorf("n=%d: sums %v %v %v %v (go) against %v %v %v %v (avx2)", n, p.s1, p.s2, p.g1, p.g2, v.s1, v.s2, v.g1, v.g2)
		}
		for j := range n {
			// Within float32 roundings of the terms' magnitude: where
			// they cancel, one rounding is many units of the result.
			affScale := math.Abs(float64(s[j])*0.7) + 0.2
			runScale := (math.Abs(float64(g[j])) + 0.1 + (math.Abs(float64(x[j]))+0.2)*0.3) * 0.9
			if math.Abs(float64(p.aff[j]-v.aff[j])) > 2*0x1p-24*affScale || math.Abs(float64(p.run[j]-v.run[j])) > 4*0x1p-24*runScale {
				t.Errorf("n=%d j=%d: affine %v/%v, run %v/%v (go/avx2)", n, j, p.aff[j], v.aff[j], p.run[j], v.run[j])
			}
		}
	}
}

// check reports an element that is not within a few roundings to T of
// want (terms of magnitude scale), or not NaN or the same infinity where
// want is.
func check[T Float](t testing.TB, what string, j int, got T, want, scale float64) {
	t.Helper()
	switch {
	case math.IsNaN(want):
		if !math.IsNaN(float64(got)) {
			t.Errorf("%s: [%d] = %v, want NaN", what, j, got)
		}
	case math.IsInf(want, 0):
		if float64(got) != want {
			t.Errorf("%s: [%d] = %v, want %v", what, j, got, want)
		}
	case !closeT(got, want, scale):
		t.Errorf("%s: [%d] = %v, want %v", what, j, got, want)
	}
}

// pastEnd returns the 8 elements after s, which a function writing s must
// leave alone, and a copy of them to compare with afterwards.
func pastEnd[T Float](s []T) (after, keep []T) {
	after = s[:len(s)+8][len(s):]
	return after, append([]T(nil), after...)
}

func checkPastEnd[T Float](t testing.TB, what string, after, keep []T) {
	t.Helper()
	for j := range after {
		if bits(after[j]) != bits(keep[j]) {
			t.Errorf("%s: wrote past the end", what)
			return
		}
	}
}

// sameBits reports the first element where got and want differ in bits.
func sameBits[T Float](t testing.TB, what string, got, want []T) {
	t.Helper()
	for j := range want {
		if bits(got[j]) != bits(want[j]) {
			t.Errorf("%s: [%d] = %v, want %v", what, j, got[j], want[j])
			return
		}
	}
}

// withSpecials puts NaN and ±Inf at a few places of s.
func withSpecials[T Float](s []T) []T {
	if n := len(s); n > 5 {
		s[1] = T(math.NaN())
		s[n-1] = T(math.Inf(-1))
		s[n/2] = T(math.Inf(1))
	}
	return s
}

func TestAdd(t *testing.T) { byType(t, testAdd[float32], testAdd[float64]) }

func testAdd[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range testLengths() {
		for _, relu := range []bool{false, true} {
			for _, kc := range [][2]T{{1, NegZero[T]()}, {0.37, NegZero[T]()}, {-2.5, NegZero[T]()}, {0.37, 1.75}} {
				k, c := kc[0], kc[1]
				a, b := withSpecials(randSlice[T](r, n+1, 0.1, 1)), randSlice[T](r, n+2, -0.1, 1)
				if n > 7 {
					b[n/2] = T(math.Inf(-1)) // +Inf + -Inf is NaN
				}
				dst := randSlice[T](r, n, 0, 1)
				after, keep := pastEnd(dst)
				what := fmt.Sprintf("n=%d relu=%v k=%v c=%v: AffineAddTo", n, relu, k, c)
				AffineAddTo(dst, a, b, k, c, relu)
				for j, e := range dst {
					want := float64(a[j])*float64(k) + float64(c) + float64(b[j])
					if relu {
						want = max(want, 0)
					}
					check(t, what, j, e, want, math.Abs(float64(a[j])*float64(k))+math.Abs(float64(b[j]))+math.Abs(float64(c)))
				}
				checkPastEnd(t, what, after, keep)
				// dst may be a or b: the same values as into a separate dst.
				a2, b2 := append([]T(nil), a[:n]...), append([]T(nil), b[:n]...)
				AffineAddTo(a2, a2, b, k, c, relu)
				sameBits(t, what+" into a", a2, dst)
				AffineAddTo(b2, a, b2, k, c, relu)
				sameBits(t, what+" into b", b2, dst)
				if !math.Signbit(float64(c)) {
					continue
				}
				scaled := make([]T, n)
				ScaleAdd(scaled, a, b, k, relu)
				sameBits(t, what+": ScaleAdd", scaled, dst)
				if k == 1 {
					sum := make([]T, n)
					Add(sum, a, b, relu)
					sameBits(t, what+": Add", sum, dst)
				}
			}
		}
	}
}

func TestAddReLUZeros(t *testing.T) { byType(t, testAddReLUZeros[float32], testAddReLUZeros[float64]) }

// -0 + -0 is -0, and its ReLU +0 as Go's max gives, in the vector loop
// and the tail.
func testAddReLUZeros[T Float](t testing.TB) {
	negZero := T(math.Copysign(0, -1))
	for _, n := range []int{1, 8, 9, 17} {
		a, dst := make([]T, n), make([]T, n)
		for i := range a {
			a[i] = negZero
		}
		Add(dst, a, a, true)
		for _, e := range dst {
			if bits(e) != 0 {
				t.Errorf("n=%d: ReLU(-0 + -0) = %v (bits %#x), want +0", n, e, bits(e))
			}
		}
		Add(dst, a, a, false)
		for _, e := range dst {
			if !math.Signbit(float64(e)) {
				t.Errorf("n=%d: -0 + -0 = %v, want -0", n, e)
			}
		}
	}
}

func TestAddTo(t *testing.T) { byType(t, testAddTo[float32], testAddTo[float64]) }

func testAddTo[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range testLengths() {
		src, dst := withSpecials(randSlice[T](r, n+3, 0.2, 1)), randSlice[T](r, n, 0, 2)
		old := append([]T(nil), dst...)
		after, keep := pastEnd(dst)
		what := fmt.Sprintf("n=%d: AddTo", n)
		AddTo(dst, src)
		for j, e := range dst {
			check(t, what, j, e, float64(old[j])+float64(src[j]), math.Abs(float64(old[j]))+math.Abs(float64(src[j])))
		}
		checkPastEnd(t, what, after, keep)
	}
}

func TestMask(t *testing.T) { byType(t, testMask[float32], testMask[float64]) }

func testMask[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range testLengths() {
		for _, add := range []bool{false, true} {
			g, y := randSlice[T](r, n+1, 0.1, 1), randMask[T](r, n+4)
			poison(r, g, y)
			for j := range g {
				if y[j] > 0 && r.IntN(20) == 0 { // NaN passes where y does
					g[j] = T(math.NaN())
				}
			}
			dst := randSlice[T](r, n, 0, 1)
			old := append([]T(nil), dst...)
			after, keep := pastEnd(dst)
			what := fmt.Sprintf("n=%d add=%v: Mask", n, add)
			if add {
				MaskAdd(dst, g, y)
			} else {
				Mask(dst, g, y)
			}
			for j, e := range dst {
				gj := refMasked(g, y, j)
				if !add {
					// A select, not a product: exactly g, or +0.
					if bits(e) != bits(T(gj)) && !(math.IsNaN(gj) && math.IsNaN(float64(e))) {
						t.Errorf("%s: [%d] = %v, want %v", what, j, e, gj)
					}
					continue
				}
				check(t, what, j, e, float64(old[j])+gj, math.Abs(float64(old[j]))+math.Abs(gj))
			}
			checkPastEnd(t, what, after, keep)
			if !add {
				// dst may be g itself.
				g2 := append([]T(nil), g[:n]...)
				Mask(g2, g2, y)
				sameBits(t, what+" in place", g2, dst)
			}
		}
	}
}

func TestMul(t *testing.T) { byType(t, testMul[float32], testMul[float64]) }

func testMul[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, n := range testLengths() {
		for _, overwrite := range []bool{false, true} {
			a, b := withSpecials(randSlice[T](r, n+1, 0.1, 1)), randSlice[T](r, n+2, 0.3, 2)
			if n > 7 {
				b[n/2] = 0 // Inf·0 is NaN
			}
			dst := randSlice[T](r, n, 0, 1)
			old := append([]T(nil), dst...)
			after, keep := pastEnd(dst)
			what := fmt.Sprintf("n=%d overwrite=%v: Mul", n, overwrite)
			Mul(dst, a, b, overwrite)
			for j, e := range dst {
				want := float64(a[j]) * float64(b[j])
				scale := math.Abs(want)
				if !overwrite {
					want += float64(old[j])
					scale += math.Abs(float64(old[j]))
				}
				check(t, what, j, e, want, scale)
			}
			checkPastEnd(t, what, after, keep)
			if overwrite {
				a2, b2 := append([]T(nil), a[:n]...), append([]T(nil), b[:n]...)
				Mul(a2, a2, b, true)
				sameBits(t, what+" into a", a2, dst)
				Mul(b2, a, b2, true)
				sameBits(t, what+" into b", b2, dst)
			}
		}
	}
}

func TestScaleGrad(t *testing.T) { byType(t, testScaleGrad[float32], testScaleGrad[float64]) }

func testScaleGrad[T Float](t testing.TB) {
	r := rand.New(rand.NewPCG(19, 20))
	a := T(-1.3)
	for _, n := range testLengths() {
		for _, mode := range []string{"add", "overwrite", "nil"} {
			gy, x := randSlice[T](r, n, 0.1, 1), randSlice[T](r, n+5, 0.5, 2)
			var dot, abs float64
			for j := range gy {
				p := float64(gy[j]) * float64(x[j])
				dot += p
				abs += math.Abs(p)
			}
			var dx []T
			if mode != "nil" {
				dx = randSlice[T](r, n, 0, 1)
			}
			old := append([]T(nil), dx...)
			what := fmt.Sprintf("n=%d %s: ScaleGrad", n, mode)
			var after, keep []T
			if dx != nil {
				after, keep = pastEnd(dx)
			}
			got := ScaleGrad(dx, gy, x, a, mode == "overwrite")
			if !closeSum(got, dot, abs) {
				t.Errorf("%s: dot = %v, want %v", what, got, dot)
			}
			for j, e := range dx {
				want := float64(gy[j]) * float64(a)
				scale := math.Abs(want)
				if mode == "add" {
					want += float64(old[j])
					scale += math.Abs(float64(old[j]))
				}
				check(t, what, j, e, want, scale)
			}
			checkPastEnd(t, what, after, keep)
			if mode != "overwrite" {
				continue
			}
			// dx may be gy itself: the same sum and values.
			g2 := append([]T(nil), gy...)
			if d := ScaleGrad(g2, g2, x, a, true); d != got {
				t.Errorf("%s: in place dot = %v, want %v", what, d, got)
			}
			sameBits(t, what+" in place", g2, dx)
		}
	}
}

func TestScaleGradSpecials(t *testing.T) {
	byType(t, testScaleGradSpecials[float32], testScaleGradSpecials[float64])
}

// A NaN or infinite gradient makes the sum NaN or infinite, on every
// path through the vector loop and the tail.
func testScaleGradSpecials[T Float](t testing.TB) {
	for _, n := range []int{5, 16, 21} {
		for _, at := range []int{0, n - 1} {
			gy, x, dx := make([]T, n), make([]T, n), make([]T, n)
			for j := range gy {
				gy[j], x[j] = 1, 2
			}
			gy[at] = T(math.Inf(1))
			if d := ScaleGrad(dx, gy, x, 3, true); !math.IsInf(d, 1) || !math.IsInf(float64(dx[at]), 1) {
				t.Errorf("n=%d: Inf at %d gives dot %v, dx %v", n, at, d, dx[at])
			}
			gy[at] = T(math.NaN())
			if d := ScaleGrad(nil, gy, x, 3, true); !math.IsNaN(d) {
				t.Errorf("n=%d: NaN at %d gives dot %v", n, at, d)
			}
		}
	}
}

func TestElementwiseVectorMatchesGo(t *testing.T) {
	// Both paths on the same data: additions and selects to the bit,
	// products within a rounding (fused against separate multiply and add),
	// sums within float64 rounding.
	if !useAVX2 {
		t.Skip("no vector code on this machine")
	}
	defer func() { useAVX2 = true }()
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range testLengths() {
		a, b, y := withSpecials(randSlice[float32](r, n, 0, 1)), randSlice[float32](r, n, 0, 1), randMask[float32](r, n)
		acc := randSlice[float32](r, n, 0, 1)
		type result struct {
			add, relu, mask, maskAdd, mul, mulAdd, sg, affAdd []float32
			dot                                               float64
		}
		var res [2]result
		for i, vec := range []bool{false, true} {
			useAVX2 = vec
			var q result
			q.add, q.relu, q.mask = make([]float32, n), make([]float32, n), make([]float32, n)
			Add(q.add, a, b, false)
			Add(q.relu, a, b, true)
			Mask(q.mask, a, y)
			q.maskAdd = append([]float32(nil), acc...)
			MaskAdd(q.maskAdd, a, y)
			q.mul = make([]float32, n)
			Mul(q.mul, a, b, true)
			q.mulAdd = append([]float32(nil), acc...)
			Mul(q.mulAdd, a, b, false)
			q.sg = append([]float32(nil), acc...)
			q.dot = ScaleGrad(q.sg, b, y, 0.7, false)
			q.affAdd = append([]float32(nil), acc...)
			AffineAdd(q.affAdd, a, 0.7, -0.2)
			res[i] = q
		}
		p, v := res[0], res[1]
		what := fmt.Sprintf("n=%d (avx2 against go)", n)
		sameBits(t, what+" Add", v.add, p.add)
		sameBits(t, what+" Add ReLU", v.relu, p.relu)
		sameBits(t, what+" Mask", v.mask, p.mask)
		sameBits(t, what+" MaskAdd", v.maskAdd, p.maskAdd)
		sameBits(t, what+" Mul", v.mul, p.mul)
		for j := range n {
			check(t, what+" Mul add", j, v.mulAdd[j], float64(p.mulAdd[j]), math.Abs(float64(a[j])*float64(b[j]))+math.Abs(float64(acc[j])))
			check(t, what+" ScaleGrad", j, v.sg[j], float64(p.sg[j]), math.Abs(float64(b[j])*0.7)+math.Abs(float64(acc[j])))
			check(t, what+" AffineAdd", j, v.affAdd[j], float64(p.affAdd[j]), math.Abs(float64(a[j])*0.7)+0.2+math.Abs(float64(acc[j])))
		}
		if math.Abs(p.dot-v.dot) > 1e-12*float64(n+1) && !(math.IsNaN(p.dot) && math.IsNaN(v.dot)) {
			t.Errorf("%s: ScaleGrad dot %v against %v", what, v.dot, p.dot)
		}
	}
}

func benchSizes(b *testing.B, bytesPer int, f func(b *testing.B, n int)) {
	for _, n := range []int{64, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			impls(b, func(tb testing.TB) {
				b.Run(map[bool]string{false: "go", true: "avx2"}[useAVX2], func(b *testing.B) {
					b.SetBytes(int64(bytesPer * n))
					f(b, n)
				})
			})
		})
	}
}

var sink float64

func BenchmarkShiftedSums(b *testing.B) {
	benchSizes(b, 4, func(b *testing.B, n int) {
		s := randSlice[float32](rand.New(rand.NewPCG(1, 1)), n, 0, 1)
		for b.Loop() {
			x, y := ShiftedSums(s, 0.1)
			sink += x + y
		}
	})
}

func BenchmarkAffineReLU(b *testing.B) {
	benchSizes(b, 8, func(b *testing.B, n int) {
		s := randSlice[float32](rand.New(rand.NewPCG(1, 1)), n, 0, 1)
		d := make([]float32, n)
		for b.Loop() {
			Affine(d, s, 1.1, 0.1, true)
		}
	})
}

func BenchmarkAffineAdd(b *testing.B) {
	benchSizes(b, 12, func(b *testing.B, n int) {
		r := rand.New(rand.NewPCG(1, 1))
		s, d := randSlice[float32](r, n, 0, 1), randSlice[float32](r, n, 0, 1)
		for b.Loop() {
			AffineAdd(d, s, 1.1, 0.1)
		}
	})
}

func BenchmarkGradSumsMasked(b *testing.B) {
	benchSizes(b, 12, func(b *testing.B, n int) {
		r := rand.New(rand.NewPCG(1, 1))
		g, x, m := randSlice[float32](r, n, 0, 1), randSlice[float32](r, n, 0, 1), randMask[float32](r, n)
		for b.Loop() {
			s, d := GradSums(g, x, m, 0.1)
			sink += s + d
		}
	})
}

func BenchmarkGradRunMasked(b *testing.B) {
	benchSizes(b, 16, func(b *testing.B, n int) {
		r := rand.New(rand.NewPCG(1, 1))
		g, x, m := randSlice[float32](r, n, 0, 1), randSlice[float32](r, n, 0, 1), randMask[float32](r, n)
		dx := make([]float32, n)
		for b.Loop() {
			GradRun(dx, g, x, m, 0.1, 0.2, 0.3, 0.9, false)
		}
	})
}

func BenchmarkAddTo(b *testing.B) {
	benchSizes(b, 12, func(b *testing.B, n int) {
		r := rand.New(rand.NewPCG(1, 1))
		s, d := randSlice[float32](r, n, 0, 1), randSlice[float32](r, n, 0, 1)
		for b.Loop() {
			AddTo(d, s)
		}
	})
}

func BenchmarkAddReLU(b *testing.B) {
	benchSizes(b, 12, func(b *testing.B, n int) {
		r := rand.New(rand.NewPCG(1, 1))
		x, y := randSlice[float32](r, n, 0, 1), randSlice[float32](r, n, 0, 1)
		d := make([]float32, n)
		for b.Loop() {
			Add(d, x, y, true)
		}
	})
}

func BenchmarkMask(b *testing.B) {
	benchSizes(b, 12, func(b *testing.B, n int) {
		r := rand.New(rand.NewPCG(1, 1))
		g, y := randSlice[float32](r, n, 0, 1), randMask[float32](r, n)
		d := make([]float32, n)
		for b.Loop() {
			Mask(d, g, y)
		}
	})
}

func BenchmarkMaskAdd(b *testing.B) {
	benchSizes(b, 16, func(b *testing.B, n int) {
		r := rand.New(rand.NewPCG(1, 1))
		g, y, d := randSlice[float32](r, n, 0, 1), randMask[float32](r, n), randSlice[float32](r, n, 0, 1)
		for b.Loop() {
			MaskAdd(d, g, y)
		}
	})
}

func BenchmarkMul(b *testing.B) {
	benchSizes(b, 12, func(b *testing.B, n int) {
		r := rand.New(rand.NewPCG(1, 1))
		x, y := randSlice[float32](r, n, 0, 1), randSlice[float32](r, n, 0, 1)
		d := make([]float32, n)
		for b.Loop() {
			Mul(d, x, y, true)
		}
	})
}

func BenchmarkScaleGrad(b *testing.B) {
	benchSizes(b, 12, func(b *testing.B, n int) {
		r := rand.New(rand.NewPCG(1, 1))
		gy, x := randSlice[float32](r, n, 0, 1), randSlice[float32](r, n, 0, 1)
		dx := make([]float32, n)
		for b.Loop() {
			sink += ScaleGrad(dx, gy, x, 0.7, true)
		}
	})
}
