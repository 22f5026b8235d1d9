package blas

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/srmlab/srmlab/internal/cenv"
	"golang.org/x/sys/cpu"
)

// Places Debian and other distributions install OpenBLAS; the bare sonames
// let the dynamic loader search its own path first.
var openblasCandidates = []string{
	"libopenblas.so.0",
	"libopenblas.so",
	"/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
	"/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
	"/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
	"/usr/lib64/libopenblas.so.0",
	"/usr/local/lib/libopenblas.so.0",
	"/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
}

const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

type openBLAS struct {
	name  string
	sgemm func(order, ta, tb, m, n, k int32, alpha float32, a unsafe.Pointer, lda int32, b unsafe.Pointer, ldb int32, beta float32, c unsafe.Pointer, ldc int32)
	dgemm func(order, ta, tb, m, n, k int32, alpha float64, a unsafe.Pointer, lda int32, b unsafe.Pointer, ldb int32, beta float64, c unsafe.Pointer, ldc int32)
}

func openOpenBLAS() (Impl, error) {
	cands := openblasCandidates
	if env := os.Getenv("SRMLAB_BLAS"); env != "" {
		if env == "gonum" {
			return nil, errors.New("SRMLAB_BLAS=gonum")
		}
		cands = []string{env}
	}
	chooseCoreType()
	var errs []string
	for _, path := range cands {
		lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		o := &openBLAS{}
		if err := bind(lib, o); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		singleThreaded(lib)
		o.name = describe(lib, path)
		return o, nil
	}
	return nil, fmt.Errorf("no OpenBLAS library could be opened (install libopenblas0): %s", strings.Join(errs, "; "))
}

// chooseCoreType tells OpenBLAS which kernels to use when the user has not.
// Its own detection relies on the OSXSAVE cpuid bit, which some virtual
// machines hide, and then falls back to Prescott kernels four times slower
// than the AVX-512 ones the CPU runs. The variable must reach the C
// environment before the library loads, so it is set through libc, which
// works with and without cgo.
func chooseCoreType() {
	if os.Getenv("OPENBLAS_CORETYPE") != "" || runtime.GOARCH != "amd64" {
		return
	}
	core := ""
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ:
		core = "SkylakeX"
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		core = "Haswell"
	default:
		return
	}
	cenv.Default("OPENBLAS_CORETYPE", core)
}

// singleThreaded runs each OpenBLAS call on its caller's thread unless
// OPENBLAS_NUM_THREADS says otherwise. srmlab already spreads batch items
// over the cores (internal/parallel); OpenBLAS's own threads would then spin
// against those goroutines, which made a convolution's forward and backward
// passes five times slower on two cores.
func singleThreaded(lib uintptr) {
	if os.Getenv("OPENBLAS_NUM_THREADS") != "" || !sym(lib, "openblas_set_num_threads") {
		return
	}
	var set func(n int32)
	purego.RegisterLibFunc(&set, lib, "openblas_set_num_threads")
	set(1)
}

func bind(lib uintptr, o *openBLAS) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	purego.RegisterLibFunc(&o.sgemm, lib, "cblas_sgemm")
	purego.RegisterLibFunc(&o.dgemm, lib, "cblas_dgemm")
	return nil
}

// describe reports the library's own account of itself, which tells whether
// it picked AVX-512 kernels (OPENBLAS_CORETYPE) and how many threads it runs.
func describe(lib uintptr, path string) string {
	var config, core func() string
	var threads func() int32
	parts := []string{"OpenBLAS, " + path}
	if sym(lib, "openblas_get_config") {
		purego.RegisterLibFunc(&config, lib, "openblas_get_config")
		parts[0] = config() + ", " + path
	}
	if sym(lib, "openblas_get_corename") {
		purego.RegisterLibFunc(&core, lib, "openblas_get_corename")
		parts = append(parts, "core "+core())
	}
	if sym(lib, "openblas_get_num_threads") {
		purego.RegisterLibFunc(&threads, lib, "openblas_get_num_threads")
		parts = append(parts, fmt.Sprintf("%d threads", threads()))
	}
	return strings.Join(parts, ", ")
}

func sym(lib uintptr, name string) bool {
	_, err := purego.Dlsym(lib, name)
	return err == nil
}

func (o *openBLAS) Name() string { return o.name }

func transFlag(t bool) int32 {
	if t {
		return cblasTrans
	}
	return cblasNoTrans
}

func (o *openBLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	o.sgemm(cblasRowMajor, transFlag(transA), transFlag(transB), int32(m), int32(n), int32(k),
		alpha, unsafe.Pointer(unsafe.SliceData(a)), int32(lda), unsafe.Pointer(unsafe.SliceData(b)), int32(ldb),
		beta, unsafe.Pointer(unsafe.SliceData(c)), int32(ldc))
}

func (o *openBLAS) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	o.dgemm(cblasRowMajor, transFlag(transA), transFlag(transB), int32(m), int32(n), int32(k),
		alpha, unsafe.Pointer(unsafe.SliceData(a)), int32(lda), unsafe.Pointer(unsafe.SliceData(b)), int32(ldb),
		beta, unsafe.Pointer(unsafe.SliceData(c)), int32(ldc))
}
