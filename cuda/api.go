package cuda

import (
	"errors"
	"fmt"
	"unsafe"
)

// cuResult is a CUresult from the driver API; 0 is success.
type cuResult int32

// nvrtcResult is an nvrtcResult from NVRTC; 0 is success.
type nvrtcResult int32

// CUresult values the host logic reacts to.
const (
	cuSuccess      cuResult = 0
	cuOutOfMemory  cuResult = 2
	cuNotSupported cuResult = 801
)

// driverAPI is the slice of the CUDA driver API srmlab uses, in Go types.
// The purego binding implements it over libcuda; tests implement it with a
// stand-in so that everything above it (error mapping, allocator, module
// cache, launch packing) runs without a GPU. Methods return the raw CUresult
// and leave turning it into an error to check, so that every call is mapped
// the same way whichever implementation answers.
type driverAPI interface {
	Init(flags uint32) cuResult
	DriverGetVersion() (int32, cuResult)
	DeviceGetCount() (int32, cuResult)
	DeviceGet(ordinal int32) (int32, cuResult)
	DeviceGetName(dev int32) (string, cuResult)
	DeviceGetAttribute(attr, dev int32) (int32, cuResult)
	DeviceTotalMem(dev int32) (uint64, cuResult)
	DevicePrimaryCtxRetain(dev int32) (uintptr, cuResult)
	DevicePrimaryCtxRelease(dev int32) cuResult
	CtxSetCurrent(ctx uintptr) cuResult
	CtxSynchronize() cuResult
	MemAlloc(bytes uint64) (uint64, cuResult)
	MemFree(ptr uint64) cuResult
	MemcpyHtoD(dst uint64, src unsafe.Pointer, bytes uint64) cuResult
	MemcpyDtoH(dst unsafe.Pointer, src uint64, bytes uint64) cuResult
	// MemcpyDtoD and MemsetD32 are queued on the default stream without
	// waiting for the host.
	MemcpyDtoD(dst, src uint64, bytes uint64) cuResult
	MemsetD32(dst uint64, value uint32, count uint64) cuResult
	// Page-locked host memory, and the copy from it that does not wait
	// for the queued work (a copy from pageable memory does).
	MemAllocHost(bytes uint64) (unsafe.Pointer, cuResult)
	MemFreeHost(p unsafe.Pointer) cuResult
	MemcpyHtoDAsync(dst uint64, src unsafe.Pointer, bytes uint64, stream uintptr) cuResult
	ModuleLoadData(image []byte) (uintptr, cuResult)
	ModuleUnload(mod uintptr) cuResult
	ModuleGetFunction(mod uintptr, name string) (uintptr, cuResult)
	LaunchKernel(fn uintptr, grid, block [3]uint32, sharedBytes uint32, stream uintptr, params []unsafe.Pointer) cuResult
	// LaunchKernelPDL queues a launch that may start while the kernel
	// before it drains (cuLaunchKernelEx with programmatic stream
	// serialization; sm_90 and later): for kernels that wait for their
	// predecessor themselves (griddepcontrol.wait). A driver without
	// cuLaunchKernelEx answers CUDA_ERROR_NOT_SUPPORTED.
	LaunchKernelPDL(fn uintptr, grid, block [3]uint32, sharedBytes uint32, stream uintptr, params []unsafe.Pointer) cuResult
	// FuncGetAttribute reads a CUfunction_attribute of a kernel;
	// OccupancyBlocksPerSM is how many blocks of the given size fit an SM
	// at once (cuOccupancyMaxActiveBlocksPerMultiprocessor).
	FuncGetAttribute(attr int32, fn uintptr) (int32, cuResult)
	OccupancyBlocksPerSM(fn uintptr, block int32, sharedBytes uint64) (int32, cuResult)
	EventCreate(flags uint32) (uintptr, cuResult)
	EventRecord(ev, stream uintptr) cuResult
	EventSynchronize(ev uintptr) cuResult
	EventElapsedTime(start, end uintptr) (float32, cuResult)
	EventDestroy(ev uintptr) cuResult
	// ErrorName and ErrorString describe a CUresult ("" when the driver
	// does not know the code).
	ErrorName(r cuResult) string
	ErrorString(r cuResult) string
}

// nvrtcAPI is the slice of NVRTC srmlab uses, shaped like driverAPI.
type nvrtcAPI interface {
	Version() (major, minor int32, r nvrtcResult)
	CreateProgram(src, name string) (uintptr, nvrtcResult)
	CompileProgram(prog uintptr, options []string) nvrtcResult
	GetCUBINSize(prog uintptr) (uint64, nvrtcResult)
	GetCUBIN(prog uintptr, buf []byte) nvrtcResult
	GetProgramLogSize(prog uintptr) (uint64, nvrtcResult)
	GetProgramLog(prog uintptr, buf []byte) nvrtcResult
	DestroyProgram(prog uintptr) nvrtcResult
	ErrorString(r nvrtcResult) string
}

// Device attributes (CUdevice_attribute values, frozen in the driver ABI).
const (
	attrMultiprocessors = 16
	attrMemoryClockKHz  = 36
	attrMemoryBusWidth  = 37
	attrL2CacheBytes    = 38
	attrComputeMajor    = 75
	attrComputeMinor    = 76
)

// Kernel attributes (CUfunction_attribute values, frozen in the driver ABI).
const (
	funcAttrLocalBytes = 3
	funcAttrNumRegs    = 4
)

// ErrUnavailable is wrapped by every error that means "no usable CUDA here":
// no driver library, no device, or a driver that refuses to start. Callers
// that fall back to the CPU test for it with errors.Is.
var ErrUnavailable = errors.New("CUDA unavailable")

// Error is a failed CUDA driver or NVRTC call. Code is the CUresult or
// nvrtcResult; Name and Message are the library's own words for it.
type Error struct {
	Func    string // the C function, e.g. "cuMemAlloc_v2"
	Code    int    // CUresult or nvrtcResult
	Name    string // e.g. "CUDA_ERROR_OUT_OF_MEMORY" (driver errors only)
	Message string // cuGetErrorString or nvrtcGetErrorString
}

// Error reads "cuMemAlloc_v2: out of memory (CUDA_ERROR_OUT_OF_MEMORY, code 2)".
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "unknown error"
	}
	if e.Name != "" {
		return fmt.Sprintf("%s: %s (%s, code %d)", e.Func, msg, e.Name, e.Code)
	}
	return fmt.Sprintf("%s: %s (code %d)", e.Func, msg, e.Code)
}

// check turns a driver result into nil or an *Error naming the C function.
func check(drv driverAPI, fn string, r cuResult) error {
	if r == cuSuccess {
		return nil
	}
	return &Error{Func: fn, Code: int(r), Name: drv.ErrorName(r), Message: drv.ErrorString(r)}
}

// checkRTC is check for NVRTC results.
func checkRTC(rtc nvrtcAPI, fn string, r nvrtcResult) error {
	if r == 0 {
		return nil
	}
	return &Error{Func: fn, Code: int(r), Message: rtc.ErrorString(r)}
}

// isOutOfMemory reports whether err is the driver's out-of-memory result,
// which the allocator answers by emptying its cache and trying again.
func isOutOfMemory(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == int(cuOutOfMemory) && e.Func == "cuMemAlloc_v2"
}
