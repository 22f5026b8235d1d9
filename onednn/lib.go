package onednn

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/srmlab/srmlab/internal/cenv"
)

// Places Debian and other distributions install oneDNN 2.x; the bare soname
// lets the dynamic loader search its own path first. oneDNN 3 changed the
// C API (descriptors became opaque handles), so only major version 2 is
// accepted.
var candidates = []string{
	"libdnnl.so.2",
	"/usr/lib/x86_64-linux-gnu/libdnnl.so.2",
	"/usr/lib/aarch64-linux-gnu/libdnnl.so.2",
	"/usr/lib64/libdnnl.so.2",
	"/usr/local/lib/libdnnl.so.2",
}

// Constants of oneDNN 2.x's C API (dnnl_types.h), checked against the
// library's header.
const (
	statusSuccess = 0

	dtF32 = 3

	tagAny   = 1
	tagA     = 2 // x: a bias
	tagABCD  = 5 // nchw, oihw
	tagABCDE = 7 // goihw
	// tagABCD16b is nChw16c, the layout of Blocked16 (dnnl_aBcd16b in
	// oneDNN 2.6's dnnl_types.h; TestConvBlocked16 checks it
	// against the layout the convolutions choose).
	tagABCD16b = 69

	propForwardTraining = 64
	propBackward        = 128
	algConvDirect       = 1
	algEltwiseReLU      = 0x1f

	engineCPU          = 1
	streamDefaultFlags = 1

	queryExecArgMD = 255

	argSrc        = 1
	argDst        = 17
	argWeights    = 33
	argBias       = 41
	argDiffSrc    = 129
	argDiffDst    = 145
	argDiffWeight = 161
	argDiffBias   = 169

	mdBytes = 696 // sizeof(dnnl_memory_desc_t)
	// opDescBytes holds a dnnl_convolution_desc_t (5976 bytes).
	opDescBytes = 8192
)

// md is a dnnl_memory_desc_t, kept in Go memory.
type md [mdBytes / 8]uint64

type dims [12]int64 // dnnl_dims_t

// api is the part of oneDNN's C API this package calls.
type api struct {
	mdInitByTag       func(m *md, ndims int32, d *dims, dt, tag int32) int32
	mdEqual           func(a, b *md) int32
	mdSize            func(m *md) uintptr
	convForwardInit   func(desc unsafe.Pointer, prop, alg int32, src, wei, bias, dst *md, strides, padL, padR *dims) int32
	convBackDataInit  func(desc unsafe.Pointer, alg int32, diffSrc, wei, diffDst *md, strides, padL, padR *dims) int32
	convBackWeighInit func(desc unsafe.Pointer, alg int32, src, diffWei, diffBias, diffDst *md, strides, padL, padR *dims) int32
	pdCreate          func(pd *uintptr, desc unsafe.Pointer, attr, engine, hint uintptr) int32
	pdQueryMD         func(pd uintptr, what, index int32) *md
	pdDestroy         func(pd uintptr) int32
	primCreate        func(p *uintptr, pd uintptr) int32
	primDestroy       func(p uintptr) int32
	primExecute       func(p, stream uintptr, nargs int32, args *execArg) int32
	reorderPDCreate   func(pd *uintptr, src *md, srcEngine uintptr, dst *md, dstEngine uintptr, attr uintptr) int32
	attrCreate        func(attr *uintptr) int32
	attrDestroy       func(attr uintptr) int32
	postOpsDestroy    func(ops uintptr) int32
	attrSetPostOps    func(attr, ops uintptr) int32
	postOpsCreate     func(ops *uintptr) int32
	postOpsAppendSum  func(ops uintptr, scale float32) int32
	postOpsAppendElt  func(ops uintptr, scale float32, alg int32, alpha, beta float32) int32
	memCreate         func(m *uintptr, d *md, engine uintptr, handle unsafe.Pointer) int32
	memDestroy        func(m uintptr) int32
	memSetHandle      func(m uintptr, handle unsafe.Pointer) int32
	engineCreate      func(e *uintptr, kind int32, index uintptr) int32
	streamCreate      func(s *uintptr, engine uintptr, flags uint32) int32
	streamWait        func(s uintptr) int32
	version           func() *struct{ major, minor, patch int32 }
	// ompThreads is libgomp's omp_set_num_threads, nil when oneDNN was
	// built with another threading runtime.
	ompThreads func(n int32)
}

// execArg is a dnnl_exec_arg_t.
type execArg struct {
	arg int32
	_   int32
	mem uintptr
}

// library is the opened oneDNN with its engine and stream, created once.
type library struct {
	api
	name           string
	engine, stream uintptr
	threads        int
	calls          chan func()
	reorders       *cache[reorderKey, *primitive]
	convs          *cache[ConvGeom, *convPlan]
	arena          [][]float32 // scratch buffers, the first used of them in use
	used           int
}

var (
	loadOnce sync.Once
	lib      *library
	loadErr  error
)

func load() (*library, error) {
	loadOnce.Do(func() { lib, loadErr = open() })
	return lib, loadErr
}

// Available returns nil when oneDNN can run srmlab's convolutions, or why
// it cannot.
func Available() error {
	_, err := load()
	return err
}

// Name says which library runs the convolutions: oneDNN's version and
// path, or why srmlab's own path is in use.
func Name() string {
	l, err := load()
	if err != nil {
		return "srmlab im2col+BLAS (" + err.Error() + ")"
	}
	return l.name
}

func open() (*library, error) {
	cands := candidates
	switch env := os.Getenv("SRMLAB_ONEDNN"); env {
	case "":
	case "off":
		return nil, errors.New("SRMLAB_ONEDNN=off")
	default:
		cands = []string{env}
	}
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("oneDNN is opened on Linux only, not %s", runtime.GOOS)
	}
	// OpenMP reads its settings when it loads, which is with oneDNN.
	cenv.Default("OMP_WAIT_POLICY", "passive")
	var errs []string
	for _, path := range cands {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		l := &library{calls: make(chan func())}
		l.reorders = newCache[reorderKey](maxReorders, l.free)
		l.convs = newCache[ConvGeom](maxConvPlans, l.dropPlan)
		if err := l.bind(h); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		v := l.version()
		if v.major != 2 {
			errs = append(errs, fmt.Sprintf("%s: oneDNN %d.%d, want 2.x", path, v.major, v.minor))
			continue
		}
		if err := l.start(); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		l.name = fmt.Sprintf("oneDNN %d.%d.%d, %s", v.major, v.minor, v.patch, path)
		return l, nil
	}
	return nil, fmt.Errorf("no oneDNN 2 library could be opened (install libdnnl2): %s", strings.Join(errs, "; "))
}

func (l *library) bind(h uintptr) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	for _, f := range []struct {
		fn   any
		name string
	}{
		{&l.mdInitByTag, "dnnl_memory_desc_init_by_tag"},
		{&l.mdEqual, "dnnl_memory_desc_equal"},
		{&l.mdSize, "dnnl_memory_desc_get_size"},
		{&l.convForwardInit, "dnnl_convolution_forward_desc_init"},
		{&l.convBackDataInit, "dnnl_convolution_backward_data_desc_init"},
		{&l.convBackWeighInit, "dnnl_convolution_backward_weights_desc_init"},
		{&l.pdCreate, "dnnl_primitive_desc_create"},
		{&l.pdQueryMD, "dnnl_primitive_desc_query_md"},
		{&l.pdDestroy, "dnnl_primitive_desc_destroy"},
		{&l.primCreate, "dnnl_primitive_create"},
		{&l.primDestroy, "dnnl_primitive_destroy"},
		{&l.primExecute, "dnnl_primitive_execute"},
		{&l.reorderPDCreate, "dnnl_reorder_primitive_desc_create"},
		{&l.attrCreate, "dnnl_primitive_attr_create"},
		{&l.attrDestroy, "dnnl_primitive_attr_destroy"},
		{&l.postOpsDestroy, "dnnl_post_ops_destroy"},
		{&l.attrSetPostOps, "dnnl_primitive_attr_set_post_ops"},
		{&l.postOpsCreate, "dnnl_post_ops_create"},
		{&l.postOpsAppendSum, "dnnl_post_ops_append_sum"},
		{&l.postOpsAppendElt, "dnnl_post_ops_append_eltwise"},
		{&l.memCreate, "dnnl_memory_create"},
		{&l.memDestroy, "dnnl_memory_destroy"},
		{&l.memSetHandle, "dnnl_memory_set_data_handle"},
		{&l.engineCreate, "dnnl_engine_create"},
		{&l.streamCreate, "dnnl_stream_create"},
		{&l.streamWait, "dnnl_stream_wait"},
		{&l.version, "dnnl_version"},
	} {
		purego.RegisterLibFunc(f.fn, h, f.name)
	}
	if _, err := purego.Dlsym(h, "omp_set_num_threads"); err == nil {
		purego.RegisterLibFunc(&l.ompThreads, h, "omp_set_num_threads")
	}
	return nil
}

// start creates the engine and stream and the thread every call runs on.
func (l *library) start() error {
	ready := make(chan error)
	go func() {
		// OpenMP keeps one team of threads per calling thread, and the
		// thread count it uses is that thread's setting.
		runtime.LockOSThread()
		err := errors.Join(
			l.check("engine", l.engineCreate(&l.engine, engineCPU, 0)),
			l.check("stream", l.streamCreate(&l.stream, l.engine, streamDefaultFlags)))
		ready <- err
		if err != nil {
			return
		}
		for f := range l.calls {
			f()
		}
	}()
	return <-ready
}

// do runs f on the library's thread with as many OpenMP threads as Go has
// processors, and returns f's error.
func (l *library) do(f func() error) error {
	done := make(chan error, 1)
	l.calls <- func() {
		if n := runtime.GOMAXPROCS(0); n != l.threads && l.ompThreads != nil {
			l.ompThreads(int32(n))
			l.threads = n
		}
		err := f()
		l.used = 0
		done <- err
	}
	return <-done
}

// check turns a dnnl_status_t into an error naming the call.
func (l *library) check(what string, status int32) error {
	if status == statusSuccess {
		return nil
	}
	return fmt.Errorf("onednn: %s: status %d (%s)", what, status, statusNames[status])
}

var statusNames = map[int32]string{
	1: "out of memory", 2: "invalid arguments", 3: "unimplemented",
	4: "iterator ends", 5: "runtime error", 6: "not required",
}
