package cuda

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// cublasStatus is a cublasStatus_t; 0 is success.
type cublasStatus int32

// cublasStatusNames are the cublasStatus_t codes of cublas_api.h, which
// has no function to name them in every version srmlab accepts.
var cublasStatusNames = map[cublasStatus]string{
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

// checkBLAS turns a cuBLAS status into nil or an *Error naming the function.
func checkBLAS(fn string, s cublasStatus) error {
	if s == 0 {
		return nil
	}
	name := cublasStatusNames[s]
	if name == "" {
		name = "unknown cuBLAS status"
	}
	return &Error{Func: fn, Code: int(s), Message: name}
}

// cuBLAS enum values (cublas_api.h, library_types.h).
const (
	cublasOpN         = 0
	cublasOpT         = 1
	cublasDefaultMath = 0 // strict FP32: no TF32 tensor cores
	propMajor         = 0 // libraryPropertyType
	propMinor         = 1
	propPatch         = 2
)

// blasAPI is the slice of cuBLAS srmlab uses, in Go types, shaped like
// driverAPI: the purego binding implements it over libcublas, tests with a
// stand-in that computes on the fake driver's memory. Matrices are device
// addresses in cuBLAS's own column-major convention; alpha and beta are
// passed by value and the binding hands cuBLAS their host addresses
// (CUBLAS_POINTER_MODE_HOST, the default).
type blasAPI interface {
	// Version is cublasGetProperty for the major, minor and patch numbers.
	Version() (major, minor, patch int32, s cublasStatus)
	Create() (uintptr, cublasStatus)
	SetStream(h, stream uintptr) cublasStatus
	SetMathMode(h uintptr, mode int32) cublasStatus
	Sgemm(h uintptr, transa, transb, m, n, k int32, alpha float32, a uint64, lda int32, b uint64, ldb int32,
		beta float32, c uint64, ldc int32) cublasStatus
	SgemmStridedBatched(h uintptr, transa, transb, m, n, k int32, alpha float32, a uint64, lda int32, strideA int64,
		b uint64, ldb int32, strideB int64, beta float32, c uint64, ldc int32, strideC int64, batch int32) cublasStatus
}

// cublasLib is blasAPI over libcublas.
type cublasLib struct {
	path string

	cublasGetProperty         func(prop int32, v *int32) cublasStatus
	cublasCreate              func(h *uintptr) cublasStatus
	cublasSetStream           func(h, stream uintptr) cublasStatus
	cublasSetMathMode         func(h uintptr, mode int32) cublasStatus
	cublasSgemm               func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uint64, lda int32, b uint64, ldb int32, beta *float32, c uint64, ldc int32) cublasStatus
	cublasSgemmStridedBatched func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uint64, lda int32, sa int64, b uint64, ldb int32, sb int64, beta *float32, c uint64, ldc int32, sc int64, batch int32) cublasStatus
}

// loadCUBLAS opens the first cuBLAS of the search that loads, after
// preloading the cuBLASLt beside it, which libcublas needs by soname.
func loadCUBLAS(env searchEnv) (*cublasLib, error) {
	preload := func(path string) error {
		if lt := besideLib(env, path, "libcublasLt.so*"); lt != "" {
			return openGlobal(lt)
		}
		return nil
	}
	l, errs := openFirst(cublasCandidates(env), preload, func(path string, b *binder) *cublasLib {
		l := &cublasLib{path: path}
		b.bind(&l.cublasGetProperty, "cublasGetProperty")
		// The _v2 names are the current ABI; cublas_v2.h #defines the
		// plain names to them.
		b.bind(&l.cublasCreate, "cublasCreate_v2")
		b.bind(&l.cublasSetStream, "cublasSetStream_v2")
		b.bind(&l.cublasSetMathMode, "cublasSetMathMode")
		b.bind(&l.cublasSgemm, "cublasSgemm_v2")
		b.bind(&l.cublasSgemmStridedBatched, "cublasSgemmStridedBatched")
		return l
	})
	if l == nil {
		return nil, errors.New("no cuBLAS library could be opened (install the CUDA toolkit or the nvidia-cublas wheel, or set " +
			envLibCUBLAS + "): " + strings.Join(errs, "; "))
	}
	return l, nil
}

// The methods below implement blasAPI through the C functions bound above.

func (l *cublasLib) Version() (major, minor, patch int32, s cublasStatus) {
	for _, p := range []struct {
		prop int32
		dst  *int32
	}{{propMajor, &major}, {propMinor, &minor}, {propPatch, &patch}} {
		if s = l.cublasGetProperty(p.prop, p.dst); s != 0 {
			return
		}
	}
	return
}

func (l *cublasLib) Create() (uintptr, cublasStatus) {
	var h uintptr
	s := l.cublasCreate(&h)
	return h, s
}

func (l *cublasLib) SetStream(h, stream uintptr) cublasStatus { return l.cublasSetStream(h, stream) }
func (l *cublasLib) SetMathMode(h uintptr, mode int32) cublasStatus {
	return l.cublasSetMathMode(h, mode)
}

func (l *cublasLib) Sgemm(h uintptr, ta, tb, m, n, k int32, alpha float32, a uint64, lda int32, b uint64, ldb int32,
	beta float32, c uint64, ldc int32) cublasStatus {
	return l.cublasSgemm(h, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc)
}

func (l *cublasLib) SgemmStridedBatched(h uintptr, ta, tb, m, n, k int32, alpha float32, a uint64, lda int32, sa int64,
	b uint64, ldb int32, sb int64, beta float32, c uint64, ldc int32, sc int64, batch int32) cublasStatus {
	return l.cublasSgemmStridedBatched(h, ta, tb, m, n, k, &alpha, a, lda, sa, b, ldb, sb, &beta, c, ldc, sc, batch)
}

// blasState is a device's cuBLAS handle, bound to stream 0 so that GEMMs
// queue in order with the kernels.
type blasState struct {
	api    blasAPI
	handle uintptr
	desc   string // "cuBLAS 13.1.0 (path)"
}

func newBLASState(api blasAPI, where string) (*blasState, error) {
	major, minor, patch, s := api.Version()
	if err := checkBLAS("cublasGetProperty", s); err != nil {
		return nil, err
	}
	h, s := api.Create()
	if err := checkBLAS("cublasCreate_v2", s); err != nil {
		return nil, err
	}
	if err := checkBLAS("cublasSetStream_v2", api.SetStream(h, 0)); err != nil {
		return nil, err
	}
	// PyTorch's default for float32 matmuls (allow_tf32 = False).
	if err := checkBLAS("cublasSetMathMode", api.SetMathMode(h, cublasDefaultMath)); err != nil {
		return nil, err
	}
	return &blasState{api: api, handle: h, desc: fmt.Sprintf("cuBLAS %d.%d.%d (%s)", major, minor, patch, where)}, nil
}

// gemm queues batch GEMMs C_i = alpha·op(A_i)·op(B_i) + beta·C_i on
// row-major matrices (m×k, k×n and m×n after op), A_i at a + i·strideA
// floats and so on. cuBLAS is column-major, and a row-major matrix with
// row stride ld is, read column-major, its transpose with leading
// dimension ld. So C is handed over as Cᵀ (n×m), and Cᵀ = op(B)ᵀ·op(A)ᵀ:
// the operands swap places and m with n, and each keeps its own transpose
// flag, since op(B)ᵀ is B as stored when B is not transposed.
func (s *blasState) gemm(transA, transB bool, m, n, k int, alpha float32, a uint64, lda, strideA int,
	b uint64, ldb, strideB int, beta float32, c uint64, ldc, strideC, batch int) error {
	op := func(t bool) int32 {
		if t {
			return cublasOpT
		}
		return cublasOpN
	}
	if batch == 1 {
		return checkBLAS("cublasSgemm_v2", s.api.Sgemm(s.handle, op(transB), op(transA), int32(n), int32(m), int32(k),
			alpha, b, int32(ldb), a, int32(lda), beta, c, int32(ldc)))
	}
	return checkBLAS("cublasSgemmStridedBatched", s.api.SgemmStridedBatched(s.handle, op(transB), op(transA),
		int32(n), int32(m), int32(k), alpha, b, int32(ldb), int64(strideB), a, int32(lda), int64(strideA),
		beta, c, int32(ldc), int64(strideC), int32(batch)))
}

// Gemm queues C = alpha·op(A)·op(B) + beta·C with cuBLAS in strict FP32,
// for row-major matrices: op(A) is m×k, op(B) k×n and C m×n, where op
// transposes when the flag is set (A is then stored k×m, B n×k), and lda,
// ldb, ldc are the stored matrices' row strides in floats. C must not
// overlap A or B. When beta is 0, C's previous contents are not read.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a *Buffer, lda int, b *Buffer, ldb int,
	beta float32, c *Buffer, ldc int) error {
	if m <= 0 || n <= 0 || k <= 0 || m > math.MaxInt32 || n > math.MaxInt32 || k > math.MaxInt32 {
		return fmt.Errorf("cuda: Gemm of %d×%d by %d×%d: sizes must be positive 32-bit ints", m, k, k, n)
	}
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	return d.exec.do(func() error {
		for _, x := range []struct {
			name           string
			buf            *Buffer
			rows, cols, ld int
		}{{"A", a, rowsA, colsA, lda}, {"B", b, rowsB, colsB, ldb}, {"C", c, m, n, ldc}} {
			if x.ld < x.cols || x.ld > math.MaxInt32 {
				return fmt.Errorf("cuda: Gemm: %s is stored %d×%d, its row stride %d is out of range", x.name, x.rows, x.cols, x.ld)
			}
			if p := d.bufferProblem(x.buf, (x.rows-1)*x.ld+x.cols); p != "" {
				return fmt.Errorf("cuda: Gemm: %s %s", x.name, p)
			}
		}
		if overlaps(c, a) || overlaps(c, b) {
			return errors.New("cuda: Gemm: C overlaps an input")
		}
		bs, err := d.math().cublas()
		if err != nil {
			return err
		}
		return bs.gemm(transA, transB, m, n, k, alpha, a.ptr, lda, 0, b.ptr, ldb, 0, beta, c.ptr, ldc, 0, 1)
	})
}

// bufferProblem says, on the CUDA thread, what keeps buf from serving as
// an argument of n floats on this device: "" when nothing does.
func (d *Device) bufferProblem(buf *Buffer, n int) string {
	switch {
	case buf == nil:
		return "is nil"
	case buf.dev != d:
		return "belongs to another device"
	case buf.freed:
		return "was freed"
	case buf.Len() < n:
		return fmt.Sprintf("holds %d floats, needs %d", buf.Len(), n)
	}
	return ""
}

// overlaps reports whether two buffers share memory.
func overlaps(a, b *Buffer) bool {
	return a.ptr < b.ptr+uint64(b.size) && b.ptr < a.ptr+uint64(a.size)
}
