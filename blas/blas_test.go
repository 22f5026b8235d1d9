package blas

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestGemmMatchesPureGo(t *testing.T) {
	t.Log("BLAS in use:", Name(), FallbackReason())
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		ta, tb  bool
		m, n, k int
	}{
		{false, false, 7, 5, 3}, {true, false, 4, 9, 6}, {false, true, 8, 3, 11}, {true, true, 5, 5, 5}, {false, false, 64, 300, 27},
	} {
		a := make([]float64, tc.m*tc.k)
		b := make([]float64, tc.k*tc.n)
		c := make([]float64, tc.m*tc.n)
		for i := range a {
			a[i] = r.NormFloat64()
		}
		for i := range b {
			b[i] = r.NormFloat64()
		}
		for i := range c {
			c[i] = r.NormFloat64()
		}
		lda, ldb := tc.k, tc.n
		if tc.ta {
			lda = tc.m
		}
		if tc.tb {
			ldb = tc.k
		}
		want := append([]float64(nil), c...)
		PureGo().Dgemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, 0.5, a, lda, b, ldb, 2, want, tc.n)
		got := append([]float64(nil), c...)
		Dgemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, 0.5, a, lda, b, ldb, 2, got, tc.n)
		a32, b32, got32 := f32(a), f32(b), f32(c)
		Sgemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, 0.5, a32, lda, b32, ldb, 2, got32, tc.n)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-10*(1+math.Abs(want[i])) {
				t.Fatalf("%+v: Dgemm[%d] = %v, want %v", tc, i, got[i], want[i])
			}
			if math.Abs(float64(got32[i])-want[i]) > 1e-4*(1+math.Abs(want[i])) {
				t.Fatalf("%+v: Sgemm[%d] = %v, want %v", tc, i, got32[i], want[i])
			}
		}
	}
}

func f32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func BenchmarkSgemm256(b *testing.B) {
	n := 256
	a, bb, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	b.ReportMetric(0, "ns/op")
	for b.Loop() {
		Sgemm(false, false, n, n, n, 1, a, n, bb, n, 0, c, n)
	}
}
