package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// fakeBLAS stands in for cuBLAS: SGEMM with cuBLAS's column-major
// semantics, computed on the fake driver's memory, so that the row-major
// mapping above it is checked against real arithmetic. It rejects leading
// dimensions smaller than cuBLAS accepts and reads C only when beta is not
// zero, as cuBLAS does.
type fakeBLAS struct {
	drv      *fakeDriver
	handle   uintptr
	fail     map[string]cublasStatus
	calls    []string
	stream   uintptr
	mathMode int32
}

func newFakeBLAS(drv *fakeDriver) *fakeBLAS {
	return &fakeBLAS{drv: drv, fail: map[string]cublasStatus{}, stream: 99, mathMode: -1}
}

func (b *fakeBLAS) call(name string) cublasStatus {
	b.calls = append(b.calls, name)
	return b.fail[name]
}

func (b *fakeBLAS) count(name string) int {
	n := 0
	for _, c := range b.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (b *fakeBLAS) Version() (int32, int32, int32, cublasStatus) {
	return 13, 1, 0, b.call("cublasGetProperty")
}

func (b *fakeBLAS) Create() (uintptr, cublasStatus) {
	b.handle = 0xb1a5
	return b.handle, b.call("cublasCreate_v2")
}

func (b *fakeBLAS) SetStream(h, stream uintptr) cublasStatus {
	b.stream = stream
	return b.call("cublasSetStream_v2")
}

func (b *fakeBLAS) SetMathMode(h uintptr, mode int32) cublasStatus {
	b.mathMode = mode
	return b.call("cublasSetMathMode")
}

func (b *fakeBLAS) Sgemm(h uintptr, ta, tb, m, n, k int32, alpha float32, a uint64, lda int32, bm uint64, ldb int32,
	beta float32, c uint64, ldc int32) cublasStatus {
	if s := b.call("cublasSgemm_v2"); s != 0 {
		return s
	}
	return b.sgemm(h, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

func (b *fakeBLAS) SgemmStridedBatched(h uintptr, ta, tb, m, n, k int32, alpha float32, a uint64, lda int32, sa int64,
	bm uint64, ldb int32, sb int64, beta float32, c uint64, ldc int32, sc int64, batch int32) cublasStatus {
	if s := b.call("cublasSgemmStridedBatched"); s != 0 {
		return s
	}
	for i := range int64(batch) {
		if s := b.sgemm(h, ta, tb, m, n, k, alpha, a+uint64(4*i*sa), lda, bm+uint64(4*i*sb), ldb, beta, c+uint64(4*i*sc), ldc); s != 0 {
			return s
		}
	}
	return 0
}

// sgemm is column-major C = alpha·op(A)·op(B) + beta·C with op(A) m×k.
func (b *fakeBLAS) sgemm(h uintptr, ta, tb, m, n, k int32, alpha float32, a uint64, lda int32, bm uint64, ldb int32,
	beta float32, c uint64, ldc int32) cublasStatus {
	if h != b.handle || b.handle == 0 {
		return 1 // CUBLAS_STATUS_NOT_INITIALIZED
	}
	rowsA, colsA := m, k
	if ta == cublasOpT {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if tb == cublasOpT {
		rowsB, colsB = n, k
	}
	if m <= 0 || n <= 0 || k <= 0 || lda < rowsA || ldb < rowsB || ldc < m {
		return 7 // CUBLAS_STATUS_INVALID_VALUE
	}
	A, okA := fakeFloats(b.drv, a, int((colsA-1)*lda+rowsA))
	B, okB := fakeFloats(b.drv, bm, int((colsB-1)*ldb+rowsB))
	C, okC := fakeFloats(b.drv, c, int((n-1)*ldc+m))
	if !okA || !okB || !okC {
		return 13 // CUBLAS_STATUS_EXECUTION_FAILED: out of bounds
	}
	at := func(i, l int32) float64 {
		if ta == cublasOpT {
			return float64(A[l+i*lda])
		}
		return float64(A[i+l*lda])
	}
	bt := func(l, j int32) float64 {
		if tb == cublasOpT {
			return float64(B[j+l*ldb])
		}
		return float64(B[l+j*ldb])
	}
	for j := range n {
		for i := range m {
			var s float64
			for l := range k {
				s += at(i, l) * bt(l, j)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(C[i+j*ldc])
			}
			C[i+j*ldc] = float32(v)
		}
	}
	return 0
}

// fakeFloats views n floats of fake device memory at addr.
func fakeFloats(f *fakeDriver, addr uint64, n int) ([]float32, bool) {
	b, off, ok := f.find(addr, uint64(4*n))
	if !ok {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[off])), n), true
}

// useFakeLibs makes the device load the given stand-ins for cuBLAS and
// cuDNN; a nil one is missing, as on a machine without that library.
func useFakeLibs(d *Device, blas blasAPI, dnn dnnAPI) {
	d.exec.do(func() error {
		m := d.math()
		m.loadBLAS = func() (blasAPI, string, error) {
			if blas == nil {
				return nil, "", errors.New("no cuBLAS here")
			}
			return blas, "fake-cublas", nil
		}
		m.loadDNN = func() (dnnAPI, string, error) {
			if dnn == nil {
				return nil, "", errors.New("no cuDNN here")
			}
			return dnn, "fake-cudnn", nil
		}
		return nil
	})
}

// devFloats allocates a buffer holding v.
func devFloats(t *testing.T, d *Device, v []float32) *Buffer {
	t.Helper()
	b, err := d.AllocFloat32(len(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CopyFrom(v); err != nil {
		t.Fatal(err)
	}
	return b
}

func hostFloats(t *testing.T, b *Buffer, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := b.CopyTo(out); err != nil {
		t.Fatal(err)
	}
	return out
}

func gaussFloats(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// TestGemmRowMajor checks Gemm's mapping onto column-major SGEMM for every
// combination of transposes, with non-square shapes, row strides wider
// than the rows, and beta 0 (C's old contents NaN, which must not leak)
// and not 0, against a direct row-major product.
func TestGemmRowMajor(t *testing.T) {
	d, drv, _ := openFake(t)
	fb := newFakeBLAS(drv)
	useFakeLibs(d, fb, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][3]int{{3, 5, 4}, {5, 2, 7}, {1, 6, 1}, {4, 1, 3}} {
		m, n, k := sh[0], sh[1], sh[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, beta := range []float32{0, 0.5} {
					name := fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v/beta=%v", m, n, k, ta, tb, beta)
					rowsA, colsA := m, k
					if ta {
						rowsA, colsA = k, m
					}
					rowsB, colsB := k, n
					if tb {
						rowsB, colsB = n, k
					}
					lda, ldb, ldc := colsA+2, colsB+1, n+3
					A, B := gaussFloats(rng, rowsA*lda), gaussFloats(rng, rowsB*ldb)
					C0 := gaussFloats(rng, m*ldc)
					if beta == 0 {
						for i := range C0 {
							C0[i] = float32(math.NaN())
						}
					}
					a, b, c := devFloats(t, d, A), devFloats(t, d, B), devFloats(t, d, C0)
					alpha := float32(1.5)
					if err := d.Gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					got := hostFloats(t, c, m*ldc)
					var worst, scale float64
					for i := range m {
						for j := range n {
							var s float64
							for l := range k {
								ai, bi := i*lda+l, l*ldb+j
								if ta {
									ai = l*lda + i
								}
								if tb {
									bi = j*ldb + l
								}
								av, bv := A[ai], B[bi]
								s += float64(av) * float64(bv)
							}
							want := float64(alpha) * s
							if beta != 0 {
								want += float64(beta) * float64(C0[i*ldc+j])
							}
							worst = max(worst, math.Abs(float64(got[i*ldc+j])-want))
							scale = max(scale, math.Abs(want))
						}
						for j := n; j < ldc; j++ {
							if g, w := got[i*ldc+j], C0[i*ldc+j]; g != w && !(math.IsNaN(float64(g)) && math.IsNaN(float64(w))) {
								t.Errorf("%s: C[%d][%d] past the row written: %v, was %v", name, i, j, g, w)
							}
						}
					}
					if !(worst <= 1e-5*scale) {
						t.Errorf("%s: max error %.3g, scale %.3g", name, worst, scale)
					}
					freeAll(a, b, c)
				}
			}
		}
	}
	if fb.stream != 0 || fb.mathMode != cublasDefaultMath || fb.count("cublasCreate_v2") != 1 {
		t.Errorf("handle: stream %d, math mode %d, %d creates", fb.stream, fb.mathMode, fb.count("cublasCreate_v2"))
	}
}

func TestGemmErrors(t *testing.T) {
	d, drv, _ := openFake(t)
	fb := newFakeBLAS(drv)
	useFakeLibs(d, fb, nil)
	a, _ := d.AllocFloat32(12)
	b, _ := d.AllocFloat32(12)
	c, _ := d.AllocFloat32(12)
	freed, _ := d.AllocFloat32(12)
	freed.Free()
	d2, _, _ := openFake(t)
	other, _ := d2.AllocFloat32(12)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"zero size", d.Gemm(false, false, 0, 3, 4, 1, a, 4, b, 3, 0, c, 3), "sizes must be positive"},
		{"lda below k", d.Gemm(false, false, 3, 3, 4, 1, a, 3, b, 3, 0, c, 3), "A is stored 3×4, its row stride 3"},
		{"ldb below n for B stored n×k", d.Gemm(false, true, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3), "B is stored 3×4, its row stride 3"},
		{"short A", d.Gemm(true, false, 4, 3, 3, 1, a, 5, b, 3, 0, c, 3), "Gemm: A holds 12 floats, needs 14"},
		{"short C", d.Gemm(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 5), "C holds 12 floats, needs 13"},
		{"C is A", d.Gemm(false, false, 3, 3, 3, 1, a, 3, b, 3, 0, a, 3), "C overlaps an input"},
		{"nil B", d.Gemm(false, false, 3, 3, 3, 1, a, 3, nil, 3, 0, c, 3), "B is nil"},
		{"freed C", d.Gemm(false, false, 3, 3, 3, 1, a, 3, b, 3, 0, freed, 3), "C was freed"},
		{"other device", d.Gemm(false, false, 3, 3, 3, 1, a, 3, other, 3, 0, c, 3), "B belongs to another device"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}
	if n := fb.count("cublasSgemm_v2"); n != 0 {
		t.Errorf("%d SGEMMs for rejected calls", n)
	}

	fb.fail["cublasSgemm_v2"] = 7
	err := d.Gemm(false, false, 3, 3, 3, 1, a, 3, b, 3, 0, c, 3)
	var e *Error
	if !errors.As(err, &e) || e.Func != "cublasSgemm_v2" || err.Error() != "cublasSgemm_v2: CUBLAS_STATUS_INVALID_VALUE (code 7)" {
		t.Errorf("failed SGEMM: %v", err)
	}
}

func TestGemmWithoutCUBLAS(t *testing.T) {
	d, drv, _ := openFake(t)
	fb := newFakeBLAS(drv)
	fb.fail["cublasCreate_v2"] = 1
	useFakeLibs(d, fb, nil)
	a, _ := d.AllocFloat32(9)
	b, _ := d.AllocFloat32(9)
	c, _ := d.AllocFloat32(9)
	for range 2 {
		err := d.Gemm(false, false, 3, 3, 3, 1, a, 3, b, 3, 0, c, 3)
		if err == nil || !strings.Contains(err.Error(), "cuBLAS unavailable: cublasCreate_v2: CUBLAS_STATUS_NOT_INITIALIZED") {
			t.Errorf("Gemm without a cuBLAS handle: %v", err)
		}
	}
	if n := fb.count("cublasCreate_v2"); n != 1 {
		t.Errorf("the failure was not remembered: %d creates", n)
	}
}
