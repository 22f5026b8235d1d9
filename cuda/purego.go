package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// cudaLib is driverAPI over libcuda, bound with purego so that the binary
// needs no cgo. Functions are bound by the names the driver exports for the
// current ABI: the _v2 names where cuda.h #defines the plain name to one
// (cuMemAlloc -> cuMemAlloc_v2 ...); the plain ones are the pre-3.2 ABI
// with 32-bit sizes and must not be called.
type cudaLib struct {
	path string

	cuInit                    func(flags uint32) cuResult
	cuDriverGetVersion        func(v *int32) cuResult
	cuDeviceGetCount          func(n *int32) cuResult
	cuDeviceGet               func(dev *int32, ordinal int32) cuResult
	cuDeviceGetName           func(name *byte, n int32, dev int32) cuResult
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) cuResult
	cuDeviceTotalMem          func(bytes *uint64, dev int32) cuResult
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) cuResult
	cuDevicePrimaryCtxRelease func(dev int32) cuResult
	cuCtxSetCurrent           func(ctx uintptr) cuResult
	cuCtxSynchronize          func() cuResult
	cuMemAlloc                func(ptr *uint64, bytes uint64) cuResult
	cuMemFree                 func(ptr uint64) cuResult
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, bytes uint64) cuResult
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, bytes uint64) cuResult
	cuMemcpyDtoD              func(dst, src uint64, bytes uint64) cuResult
	cuMemsetD32               func(dst uint64, value uint32, count uint64) cuResult
	cuMemAllocHost            func(p *unsafe.Pointer, bytes uint64) cuResult
	cuMemFreeHost             func(p unsafe.Pointer) cuResult
	cuMemcpyHtoDAsync         func(dst uint64, src unsafe.Pointer, bytes uint64, stream uintptr) cuResult
	cuModuleLoadData          func(mod *uintptr, image unsafe.Pointer) cuResult
	cuModuleUnload            func(mod uintptr) cuResult
	cuModuleGetFunction       func(fn *uintptr, mod uintptr, name string) cuResult
	cuLaunchKernel            func(fn uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params, extra unsafe.Pointer) cuResult
	cuLaunchKernelEx          func(config *launchConfig, fn uintptr, params, extra unsafe.Pointer) cuResult // optional
	cuFuncGetAttribute        func(v *int32, attr int32, fn uintptr) cuResult
	cuOccupancyBlocks         func(n *int32, fn uintptr, block int32, shared uint64) cuResult
	cuEventCreate             func(ev *uintptr, flags uint32) cuResult
	cuEventRecord             func(ev, stream uintptr) cuResult
	cuEventSynchronize        func(ev uintptr) cuResult
	cuEventElapsedTime        func(ms *float32, start, end uintptr) cuResult
	cuEventDestroy            func(ev uintptr) cuResult
	cuGetErrorName            func(r cuResult, s **byte) cuResult
	cuGetErrorString          func(r cuResult, s **byte) cuResult
}

// binder registers C functions from one library and collects the names it
// could not find, so that a driver too old for srmlab is reported with the
// whole list at once.
type binder struct {
	lib     uintptr
	missing []string
}

// bind registers the first of names the library exports.
func (b *binder) bind(fptr any, names ...string) {
	for _, name := range names {
		if b.optional(fptr, name) {
			return
		}
	}
	b.missing = append(b.missing, names[0])
}

// optional registers name if the library exports it, and reports whether
// it did; fptr stays nil otherwise.
func (b *binder) optional(fptr any, name string) bool {
	sym, err := purego.Dlsym(b.lib, name)
	if err != nil || sym == 0 {
		return false
	}
	purego.RegisterFunc(fptr, sym)
	return true
}

func (b *binder) err() error {
	if len(b.missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing symbols %s", strings.Join(b.missing, ", "))
}

// openFirst returns the first of the candidate libraries that opens and
// exports every symbol bind asks its binder for: each is given to
// preload (nil: nothing to do), which opens what it needs first and may
// refuse it, then opened, then bound. It also returns why each before it
// failed.
func openFirst[L any](candidates []string, preload func(path string) error, bind func(path string, b *binder) L) (L, []string) {
	var errs []string
	for _, path := range candidates {
		if preload != nil {
			if err := preload(path); err != nil {
				errs = append(errs, err.Error())
				continue
			}
		}
		lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		b := &binder{lib: lib}
		l := bind(path, b)
		if err := b.err(); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		return l, nil
	}
	var none L
	return none, errs
}

// openGlobal dlopens a library that another needs by soname.
func openGlobal(path string) error {
	_, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	return err
}

// loadDriver opens the first libcuda of the search that loads and exports
// everything srmlab needs.
func loadDriver(env searchEnv) (*cudaLib, error) {
	l, errs := openFirst(libcudaCandidates(env), nil, func(path string, b *binder) *cudaLib {
		l := &cudaLib{path: path}
		b.bind(&l.cuInit, "cuInit")
		b.bind(&l.cuDriverGetVersion, "cuDriverGetVersion")
		b.bind(&l.cuDeviceGetCount, "cuDeviceGetCount")
		b.bind(&l.cuDeviceGet, "cuDeviceGet")
		b.bind(&l.cuDeviceGetName, "cuDeviceGetName")
		b.bind(&l.cuDeviceGetAttribute, "cuDeviceGetAttribute")
		b.bind(&l.cuDeviceTotalMem, "cuDeviceTotalMem_v2")
		b.bind(&l.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
		b.bind(&l.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")
		b.bind(&l.cuCtxSetCurrent, "cuCtxSetCurrent")
		// The plain name: newer drivers also export cuCtxSynchronize_v2,
		// which takes a context argument.
		b.bind(&l.cuCtxSynchronize, "cuCtxSynchronize")
		b.bind(&l.cuMemAlloc, "cuMemAlloc_v2")
		b.bind(&l.cuMemFree, "cuMemFree_v2")
		b.bind(&l.cuMemcpyHtoD, "cuMemcpyHtoD_v2")
		b.bind(&l.cuMemcpyDtoH, "cuMemcpyDtoH_v2")
		b.bind(&l.cuMemcpyDtoD, "cuMemcpyDtoD_v2")
		b.bind(&l.cuMemsetD32, "cuMemsetD32_v2")
		b.bind(&l.cuMemAllocHost, "cuMemAllocHost_v2")
		b.bind(&l.cuMemFreeHost, "cuMemFreeHost")
		b.bind(&l.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2")
		b.bind(&l.cuModuleLoadData, "cuModuleLoadData")
		b.bind(&l.cuModuleUnload, "cuModuleUnload")
		b.bind(&l.cuModuleGetFunction, "cuModuleGetFunction")
		b.bind(&l.cuLaunchKernel, "cuLaunchKernel")
		b.optional(&l.cuLaunchKernelEx, "cuLaunchKernelEx")
		b.bind(&l.cuFuncGetAttribute, "cuFuncGetAttribute")
		b.bind(&l.cuOccupancyBlocks, "cuOccupancyMaxActiveBlocksPerMultiprocessor")
		b.bind(&l.cuEventCreate, "cuEventCreate")
		b.bind(&l.cuEventRecord, "cuEventRecord")
		b.bind(&l.cuEventSynchronize, "cuEventSynchronize")
		// CUDA 12.8 added the _v2 (same signature) and CUDA 13 headers name
		// only it; older drivers have only the plain one.
		b.bind(&l.cuEventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime")
		b.bind(&l.cuEventDestroy, "cuEventDestroy_v2")
		b.bind(&l.cuGetErrorName, "cuGetErrorName")
		b.bind(&l.cuGetErrorString, "cuGetErrorString")
		return l
	})
	if l == nil {
		return nil, fmt.Errorf("%w: no CUDA driver library could be opened (set %s to its path): %s",
			ErrUnavailable, envLibCUDA, strings.Join(errs, "; "))
	}
	return l, nil
}

// The methods below implement driverAPI, each through the C function of
// the same name bound above; they only move values between Go and C.

func (l *cudaLib) Init(flags uint32) cuResult { return l.cuInit(flags) }

func (l *cudaLib) DriverGetVersion() (int32, cuResult) {
	var v int32
	r := l.cuDriverGetVersion(&v)
	return v, r
}

func (l *cudaLib) DeviceGetCount() (int32, cuResult) {
	var n int32
	r := l.cuDeviceGetCount(&n)
	return n, r
}

func (l *cudaLib) DeviceGet(ordinal int32) (int32, cuResult) {
	var d int32
	r := l.cuDeviceGet(&d, ordinal)
	return d, r
}

func (l *cudaLib) DeviceGetName(dev int32) (string, cuResult) {
	var buf [256]byte
	r := l.cuDeviceGetName(&buf[0], int32(len(buf)), dev)
	name, _, _ := strings.Cut(string(buf[:]), "\x00")
	return name, r
}

func (l *cudaLib) DeviceGetAttribute(attr, dev int32) (int32, cuResult) {
	var v int32
	r := l.cuDeviceGetAttribute(&v, attr, dev)
	return v, r
}

func (l *cudaLib) DeviceTotalMem(dev int32) (uint64, cuResult) {
	var n uint64
	r := l.cuDeviceTotalMem(&n, dev)
	return n, r
}

func (l *cudaLib) DevicePrimaryCtxRetain(dev int32) (uintptr, cuResult) {
	var ctx uintptr
	r := l.cuDevicePrimaryCtxRetain(&ctx, dev)
	return ctx, r
}

func (l *cudaLib) DevicePrimaryCtxRelease(dev int32) cuResult {
	return l.cuDevicePrimaryCtxRelease(dev)
}

func (l *cudaLib) CtxSetCurrent(ctx uintptr) cuResult { return l.cuCtxSetCurrent(ctx) }
func (l *cudaLib) CtxSynchronize() cuResult           { return l.cuCtxSynchronize() }

func (l *cudaLib) MemAlloc(bytes uint64) (uint64, cuResult) {
	var p uint64
	r := l.cuMemAlloc(&p, bytes)
	return p, r
}

func (l *cudaLib) MemFree(ptr uint64) cuResult { return l.cuMemFree(ptr) }

func (l *cudaLib) MemcpyHtoD(dst uint64, src unsafe.Pointer, bytes uint64) cuResult {
	return l.cuMemcpyHtoD(dst, src, bytes)
}

func (l *cudaLib) MemcpyDtoH(dst unsafe.Pointer, src uint64, bytes uint64) cuResult {
	return l.cuMemcpyDtoH(dst, src, bytes)
}

func (l *cudaLib) MemcpyDtoD(dst, src uint64, bytes uint64) cuResult {
	return l.cuMemcpyDtoD(dst, src, bytes)
}

func (l *cudaLib) MemsetD32(dst uint64, value uint32, count uint64) cuResult {
	return l.cuMemsetD32(dst, value, count)
}

func (l *cudaLib) MemAllocHost(bytes uint64) (unsafe.Pointer, cuResult) {
	var p unsafe.Pointer
	r := l.cuMemAllocHost(&p, bytes)
	return p, r
}

func (l *cudaLib) MemFreeHost(p unsafe.Pointer) cuResult { return l.cuMemFreeHost(p) }

func (l *cudaLib) MemcpyHtoDAsync(dst uint64, src unsafe.Pointer, bytes uint64, stream uintptr) cuResult {
	return l.cuMemcpyHtoDAsync(dst, src, bytes, stream)
}

func (l *cudaLib) ModuleLoadData(image []byte) (uintptr, cuResult) {
	var m uintptr
	r := l.cuModuleLoadData(&m, unsafe.Pointer(&image[0]))
	runtime.KeepAlive(image)
	return m, r
}

func (l *cudaLib) ModuleUnload(mod uintptr) cuResult { return l.cuModuleUnload(mod) }

func (l *cudaLib) ModuleGetFunction(mod uintptr, name string) (uintptr, cuResult) {
	var f uintptr
	r := l.cuModuleGetFunction(&f, mod, name)
	return f, r
}

// launchConfig is CUlaunchConfig (cuda.h, CUDA 12 and later): 7 unsigned
// ints, the stream at offset 32, the attributes at 40 and their count at
// 48, 56 bytes in all.
type launchConfig struct {
	grid, block [3]uint32
	sharedBytes uint32
	stream      uintptr
	attrs       *launchAttr
	numAttrs    uint32
}

// launchAttr is CUlaunchAttribute: an id padded to 8 bytes, then a 64-byte
// union whose first int is, for programmatic stream serialization, the
// switch.
type launchAttr struct {
	id    uint32
	_     uint32
	value [8]uint64
}

// cuLaunchAttributeProgrammaticStreamSerialization is
// CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION.
const cuLaunchAttributeProgrammaticStreamSerialization = 6

// LaunchKernelPDL expects params to point at pinned memory, as LaunchKernel.
func (l *cudaLib) LaunchKernelPDL(fn uintptr, grid, block [3]uint32, shared uint32, stream uintptr, params []unsafe.Pointer) cuResult {
	if l.cuLaunchKernelEx == nil {
		return cuNotSupported
	}
	// The config points at the attribute: both stay pinned for the call.
	var pin runtime.Pinner
	defer pin.Unpin()
	attr := &launchAttr{id: cuLaunchAttributeProgrammaticStreamSerialization, value: [8]uint64{1}}
	cfg := &launchConfig{grid: grid, block: block, sharedBytes: shared, stream: stream, attrs: attr, numAttrs: 1}
	pin.Pin(attr)
	pin.Pin(cfg)
	return l.cuLaunchKernelEx(cfg, fn, kernelParams(params), nil)
}

func (l *cudaLib) FuncGetAttribute(attr int32, fn uintptr) (int32, cuResult) {
	var v int32
	r := l.cuFuncGetAttribute(&v, attr, fn)
	return v, r
}

func (l *cudaLib) OccupancyBlocksPerSM(fn uintptr, block int32, shared uint64) (int32, cuResult) {
	var n int32
	r := l.cuOccupancyBlocks(&n, fn, block, shared)
	return n, r
}

// LaunchKernel expects params to point at pinned memory (see Plan.run).
func (l *cudaLib) LaunchKernel(fn uintptr, grid, block [3]uint32, shared uint32, stream uintptr, params []unsafe.Pointer) cuResult {
	return l.cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], shared, stream, kernelParams(params), nil)
}

// kernelParams is the void** a launch takes: the first of params, or null.
func kernelParams(params []unsafe.Pointer) unsafe.Pointer {
	if len(params) == 0 {
		return nil
	}
	return unsafe.Pointer(&params[0])
}

func (l *cudaLib) EventCreate(flags uint32) (uintptr, cuResult) {
	var e uintptr
	r := l.cuEventCreate(&e, flags)
	return e, r
}

func (l *cudaLib) EventRecord(ev, stream uintptr) cuResult { return l.cuEventRecord(ev, stream) }
func (l *cudaLib) EventSynchronize(ev uintptr) cuResult    { return l.cuEventSynchronize(ev) }

func (l *cudaLib) EventElapsedTime(start, end uintptr) (float32, cuResult) {
	var ms float32
	r := l.cuEventElapsedTime(&ms, start, end)
	return ms, r
}

func (l *cudaLib) EventDestroy(ev uintptr) cuResult { return l.cuEventDestroy(ev) }

func (l *cudaLib) ErrorName(r cuResult) string {
	var s *byte
	if l.cuGetErrorName(r, &s) != cuSuccess {
		return ""
	}
	return cString(s)
}

func (l *cudaLib) ErrorString(r cuResult) string {
	var s *byte
	if l.cuGetErrorString(r, &s) != cuSuccess {
		return ""
	}
	return cString(s)
}

// cString copies a NUL-terminated string owned by C.
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

// nvrtcLib is nvrtcAPI over libnvrtc.
type nvrtcLib struct {
	path     string
	builtins string

	nvrtcVersion           func(major, minor *int32) nvrtcResult
	nvrtcCreateProgram     func(prog *uintptr, src, name string, numHeaders int32, headers, includeNames unsafe.Pointer) nvrtcResult
	nvrtcCompileProgram    func(prog uintptr, numOptions int32, options unsafe.Pointer) nvrtcResult
	nvrtcGetCUBINSize      func(prog uintptr, size *uint64) nvrtcResult
	nvrtcGetCUBIN          func(prog uintptr, buf unsafe.Pointer) nvrtcResult
	nvrtcGetProgramLogSize func(prog uintptr, size *uint64) nvrtcResult
	nvrtcGetProgramLog     func(prog uintptr, buf unsafe.Pointer) nvrtcResult
	nvrtcDestroyProgram    func(prog *uintptr) nvrtcResult
	nvrtcGetErrorString    func(r nvrtcResult) string

	// sources keeps each program's NUL-terminated source alive until the
	// program is destroyed: purego passes such a string without copying.
	mu      sync.Mutex
	sources map[uintptr]string
}

// loadNVRTC opens the first NVRTC of the search that loads, after
// preloading its builtins library.
func loadNVRTC(env searchEnv) (*nvrtcLib, error) {
	var builtins string // the candidate's, found by preload
	preload := func(path string) error {
		if builtins = nvrtcBuiltins(env, path); builtins != "" {
			return openGlobal(builtins)
		}
		return nil
	}
	l, errs := openFirst(nvrtcCandidates(env), preload, func(path string, b *binder) *nvrtcLib {
		l := &nvrtcLib{path: path, builtins: builtins, sources: map[uintptr]string{}}
		b.bind(&l.nvrtcVersion, "nvrtcVersion")
		b.bind(&l.nvrtcCreateProgram, "nvrtcCreateProgram")
		b.bind(&l.nvrtcCompileProgram, "nvrtcCompileProgram")
		b.bind(&l.nvrtcGetCUBINSize, "nvrtcGetCUBINSize")
		b.bind(&l.nvrtcGetCUBIN, "nvrtcGetCUBIN")
		b.bind(&l.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize")
		b.bind(&l.nvrtcGetProgramLog, "nvrtcGetProgramLog")
		b.bind(&l.nvrtcDestroyProgram, "nvrtcDestroyProgram")
		b.bind(&l.nvrtcGetErrorString, "nvrtcGetErrorString")
		return l
	})
	if l == nil {
		return nil, errors.New("no NVRTC library could be opened (install the CUDA toolkit or the nvidia-cuda-nvrtc wheel, or set " +
			envLibNVRTC + "): " + strings.Join(errs, "; "))
	}
	return l, nil
}

// The methods below implement nvrtcAPI in the same way.

func (l *nvrtcLib) Version() (int32, int32, nvrtcResult) {
	var major, minor int32
	r := l.nvrtcVersion(&major, &minor)
	return major, minor, r
}

func (l *nvrtcLib) CreateProgram(src, name string) (uintptr, nvrtcResult) {
	src += "\x00"
	var prog uintptr
	r := l.nvrtcCreateProgram(&prog, src, name, 0, nil, nil)
	if r == 0 {
		l.mu.Lock()
		l.sources[prog] = src
		l.mu.Unlock()
	}
	return prog, r
}

func (l *nvrtcLib) CompileProgram(prog uintptr, options []string) nvrtcResult {
	var pin runtime.Pinner
	defer pin.Unpin()
	return l.nvrtcCompileProgram(prog, int32(len(options)), cStrings(&pin, options))
}

// cStrings makes a const char* const* of ss in Go memory, nil for none:
// the array holds Go pointers, so both it and the strings are pinned until
// pin is released after the call.
func cStrings(pin *runtime.Pinner, ss []string) unsafe.Pointer {
	if len(ss) == 0 {
		return nil
	}
	ptrs := make([]*byte, len(ss))
	for i, s := range ss {
		b := append([]byte(s), 0)
		ptrs[i] = &b[0]
		pin.Pin(ptrs[i])
	}
	pin.Pin(&ptrs[0])
	return unsafe.Pointer(&ptrs[0])
}

func (l *nvrtcLib) GetCUBINSize(prog uintptr) (uint64, nvrtcResult) {
	var n uint64
	r := l.nvrtcGetCUBINSize(prog, &n)
	return n, r
}

func (l *nvrtcLib) GetCUBIN(prog uintptr, buf []byte) nvrtcResult {
	return l.nvrtcGetCUBIN(prog, unsafe.Pointer(&buf[0]))
}

func (l *nvrtcLib) GetProgramLogSize(prog uintptr) (uint64, nvrtcResult) {
	var n uint64
	r := l.nvrtcGetProgramLogSize(prog, &n)
	return n, r
}

func (l *nvrtcLib) GetProgramLog(prog uintptr, buf []byte) nvrtcResult {
	return l.nvrtcGetProgramLog(prog, unsafe.Pointer(&buf[0]))
}

func (l *nvrtcLib) DestroyProgram(prog uintptr) nvrtcResult {
	p := prog
	r := l.nvrtcDestroyProgram(&p)
	l.mu.Lock()
	delete(l.sources, prog)
	l.mu.Unlock()
	return r
}

func (l *nvrtcLib) ErrorString(r nvrtcResult) string { return l.nvrtcGetErrorString(r) }
