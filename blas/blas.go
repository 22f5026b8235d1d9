package blas

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Impl is one BLAS implementation of the two products srmlab needs.
// Matrices are row-major; a is m×k (k×m when transA), b is k×n (n×k when
// transB), c is m×n and receives alpha·op(a)·op(b) + beta·c.
type Impl interface {
	Name() string
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

var (
	once    sync.Once
	current Impl
	loadErr error
)

func impl() Impl {
	once.Do(func() {
		current, loadErr = openOpenBLAS()
		if current == nil {
			current = pureGo{}
		}
	})
	return current
}

// Name describes the BLAS in use, e.g. "OpenBLAS 0.3.21 (/usr/lib/.../libopenblas.so.0, SkylakeX, 2 threads)".
func Name() string { return impl().Name() }

// FallbackReason says why OpenBLAS is not in use, or "" when it is.
func FallbackReason() string {
	impl()
	if loadErr == nil {
		return ""
	}
	return loadErr.Error()
}

// Sgemm computes c = alpha·op(a)·op(b) + beta·c in float32 (row-major).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	impl().Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm computes c = alpha·op(a)·op(b) + beta·c in float64 (row-major).
func Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	impl().Dgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// PureGo returns gonum's implementation, for comparisons and tests.
func PureGo() Impl { return pureGo{} }

type pureGo struct{}

func (pureGo) Name() string { return "gonum (pure Go)" }

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

func (pureGo) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gonum.Implementation{}.Sgemm(trans(transA), trans(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (pureGo) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gonum.Implementation{}.Dgemm(trans(transA), trans(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
