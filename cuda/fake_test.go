package cuda

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

// fakeDriver stands in for libcuda: device memory is Go byte slices at
// made-up addresses, modules are whatever fakeNVRTC produced, and launches
// are recorded and, when an emulator is set, executed by the CPU emulator
// (testdata/emu) on the actual kernel sources.
type fakeDriver struct {
	mem      map[uint64][]byte
	next     uint64
	memLimit uint64 // total bytes the device may hold; 0 for no limit
	fail     map[string]cuResult
	calls    []string
	threads  map[int]bool
	launches []fakeLaunch
	modules  map[uintptr][]byte
	funcs    map[uintptr]string
	handle   uintptr
	events   map[uintptr]int
	clock    int
	emulator string
	emuErr   error
	// the emulator process: launches are written to emuIn, the memory
	// they reach read back from emuOut
	emu       *exec.Cmd
	emuIn     io.WriteCloser
	emuOut    io.ReadCloser
	emuStderr bytes.Buffer
	host      [][]byte        // page-locked host memory handed out
	current   map[int]uintptr // the context current on each OS thread
	noCtx     []string        // calls made where no context was current
}

type fakeLaunch struct {
	name  string
	grid  [3]uint32
	block [3]uint32
	args  []uint64
	pdl   bool // launched by LaunchKernelPDL
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{mem: map[uint64][]byte{}, next: 0x7f0000000000, fail: map[string]cuResult{},
		threads: map[int]bool{}, current: map[int]uintptr{}, modules: map[uintptr][]byte{}, funcs: map[uintptr]string{}, events: map[uintptr]int{}}
}

// call records a driver call and the OS thread it came from, and returns
// the result a test asked that call to fail with.
func (f *fakeDriver) call(name string) cuResult {
	f.calls = append(f.calls, name)
	tid := syscall.Gettid()
	f.threads[tid] = true
	if !contextFree[name] && f.current[tid] == 0 {
		f.noCtx = append(f.noCtx, name)
	}
	return f.fail[name]
}

// contextFree are the calls that need no current context.
var contextFree = map[string]bool{
	"cuInit": true, "cuDriverGetVersion": true, "cuDeviceGetCount": true, "cuDeviceGet": true,
	"cuDeviceGetName": true, "cuDeviceGetAttribute": true, "cuDeviceTotalMem": true,
	"cuDevicePrimaryCtxRetain": true, "cuDevicePrimaryCtxRelease": true, "cuCtxSetCurrent": true,
}

func (f *fakeDriver) count(name string) int {
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

// find returns the allocation holding addr and the offset into it.
func (f *fakeDriver) find(addr, n uint64) ([]byte, uint64, bool) {
	for base, b := range f.mem {
		if addr >= base && addr+n <= base+uint64(len(b)) {
			return b, addr - base, true
		}
	}
	return nil, 0, false
}

func (f *fakeDriver) newHandle() uintptr { f.handle++; return f.handle }

func (f *fakeDriver) Init(uint32) cuResult { return f.call("cuInit") }
func (f *fakeDriver) DriverGetVersion() (int32, cuResult) {
	return 13000, f.call("cuDriverGetVersion")
}
func (f *fakeDriver) DeviceGetCount() (int32, cuResult) { return 1, f.call("cuDeviceGetCount") }
func (f *fakeDriver) DeviceGet(o int32) (int32, cuResult) {
	return o, f.call("cuDeviceGet")
}
func (f *fakeDriver) DeviceGetName(int32) (string, cuResult) {
	return "Fake GPU", f.call("cuDeviceGetName")
}
func (f *fakeDriver) DeviceGetAttribute(attr, _ int32) (int32, cuResult) {
	v := map[int32]int32{attrComputeMajor: 9, attrComputeMinor: 0, attrMultiprocessors: 4, attrL2CacheBytes: 1 << 20,
		attrMemoryClockKHz: 1000000, attrMemoryBusWidth: 1024}[attr]
	return v, f.call("cuDeviceGetAttribute")
}
func (f *fakeDriver) DeviceTotalMem(int32) (uint64, cuResult) {
	return 1 << 30, f.call("cuDeviceTotalMem")
}
func (f *fakeDriver) DevicePrimaryCtxRetain(int32) (uintptr, cuResult) {
	return 0xc0, f.call("cuDevicePrimaryCtxRetain")
}
func (f *fakeDriver) DevicePrimaryCtxRelease(int32) cuResult {
	return f.call("cuDevicePrimaryCtxRelease")
}
func (f *fakeDriver) CtxSetCurrent(ctx uintptr) cuResult {
	r := f.call("cuCtxSetCurrent")
	if r == 0 {
		f.current[syscall.Gettid()] = ctx
	}
	return r
}
func (f *fakeDriver) CtxSynchronize() cuResult { return f.call("cuCtxSynchronize") }

func (f *fakeDriver) MemAlloc(n uint64) (uint64, cuResult) {
	if r := f.call("cuMemAlloc"); r != 0 {
		return 0, r
	}
	var used uint64
	for _, b := range f.mem {
		used += uint64(len(b))
	}
	if f.memLimit > 0 && used+n > f.memLimit {
		return 0, cuOutOfMemory
	}
	p := f.next
	f.next += (n + 4095) / 4096 * 4096
	f.mem[p] = make([]byte, n)
	return p, 0
}

func (f *fakeDriver) MemFree(p uint64) cuResult {
	if r := f.call("cuMemFree"); r != 0 {
		return r
	}
	if _, ok := f.mem[p]; !ok {
		return 1 // CUDA_ERROR_INVALID_VALUE
	}
	delete(f.mem, p)
	return 0
}

func (f *fakeDriver) MemcpyHtoD(dst uint64, src unsafe.Pointer, n uint64) cuResult {
	return f.copyIn("cuMemcpyHtoD", dst, src, n)
}

// copyIn is a host-to-device copy, the fake's queue being no queue.
func (f *fakeDriver) copyIn(call string, dst uint64, src unsafe.Pointer, n uint64) cuResult {
	if r := f.call(call); r != 0 {
		return r
	}
	b, off, ok := f.find(dst, n)
	if !ok {
		return 1
	}
	copy(b[off:off+n], unsafe.Slice((*byte)(src), n))
	return 0
}

func (f *fakeDriver) MemcpyDtoH(dst unsafe.Pointer, src uint64, n uint64) cuResult {
	if r := f.call("cuMemcpyDtoH"); r != 0 {
		return r
	}
	b, off, ok := f.find(src, n)
	if !ok {
		return 1
	}
	copy(unsafe.Slice((*byte)(dst), n), b[off:off+n])
	return 0
}

func (f *fakeDriver) MemcpyDtoD(dst, src uint64, n uint64) cuResult {
	if r := f.call("cuMemcpyDtoD"); r != 0 {
		return r
	}
	d, doff, ok1 := f.find(dst, n)
	s, soff, ok2 := f.find(src, n)
	if !ok1 || !ok2 {
		return 1
	}
	copy(d[doff:doff+n], s[soff:soff+n])
	return 0
}

func (f *fakeDriver) MemsetD32(dst uint64, v uint32, count uint64) cuResult {
	if r := f.call("cuMemsetD32"); r != 0 {
		return r
	}
	b, off, ok := f.find(dst, 4*count)
	if !ok {
		return 1
	}
	for i := range count {
		binary.LittleEndian.PutUint32(b[off+4*i:], v)
	}
	return 0
}

func (f *fakeDriver) MemAllocHost(n uint64) (unsafe.Pointer, cuResult) {
	if r := f.call("cuMemAllocHost"); r != 0 {
		return nil, r
	}
	b := make([]byte, n)
	f.host = append(f.host, b)
	return unsafe.Pointer(&b[0]), 0
}

func (f *fakeDriver) MemFreeHost(unsafe.Pointer) cuResult { return f.call("cuMemFreeHost") }

func (f *fakeDriver) MemcpyHtoDAsync(dst uint64, src unsafe.Pointer, n uint64, _ uintptr) cuResult {
	return f.copyIn("cuMemcpyHtoDAsync", dst, src, n)
}

const fakeCUBINMagic = "FAKECUBIN\n"

func (f *fakeDriver) ModuleLoadData(image []byte) (uintptr, cuResult) {
	if r := f.call("cuModuleLoadData"); r != 0 {
		return 0, r
	}
	if !bytes.HasPrefix(image, []byte(fakeCUBINMagic)) {
		return 0, 200 // CUDA_ERROR_INVALID_IMAGE
	}
	h := f.newHandle()
	f.modules[h] = image
	return h, 0
}

func (f *fakeDriver) ModuleUnload(m uintptr) cuResult {
	delete(f.modules, m)
	return f.call("cuModuleUnload")
}

func (f *fakeDriver) ModuleGetFunction(m uintptr, name string) (uintptr, cuResult) {
	if r := f.call("cuModuleGetFunction"); r != 0 {
		return 0, r
	}
	if _, ok := f.modules[m]; !ok {
		return 0, 400 // CUDA_ERROR_INVALID_HANDLE
	}
	h := f.newHandle()
	f.funcs[h] = name
	return h, 0
}

// FuncGetAttribute reports 32 registers and no local memory for every
// kernel; the occupancy follows from them as on a GPU of 64K registers and
// 2048 threads an SM.
func (f *fakeDriver) FuncGetAttribute(attr int32, fn uintptr) (int32, cuResult) {
	if r := f.call("cuFuncGetAttribute"); r != 0 {
		return 0, r
	}
	if _, ok := f.funcs[fn]; !ok {
		return 0, 400
	}
	return map[int32]int32{funcAttrNumRegs: 32}[attr], 0
}

func (f *fakeDriver) OccupancyBlocksPerSM(fn uintptr, block int32, _ uint64) (int32, cuResult) {
	if r := f.call("cuOccupancyMaxActiveBlocksPerMultiprocessor"); r != 0 {
		return 0, r
	}
	if _, ok := f.funcs[fn]; !ok || block <= 0 {
		return 0, 400
	}
	return min(65536/(32*block), 2048/block), 0
}

func (f *fakeDriver) LaunchKernel(fn uintptr, grid, block [3]uint32, shared uint32, stream uintptr, params []unsafe.Pointer) cuResult {
	return f.launch("cuLaunchKernel", fn, grid, block, params)
}

// LaunchKernelPDL runs the launch as LaunchKernel: the emulator runs one
// kernel at a time, as a GPU does where each waits for the one before.
func (f *fakeDriver) LaunchKernelPDL(fn uintptr, grid, block [3]uint32, shared uint32, stream uintptr, params []unsafe.Pointer) cuResult {
	return f.launch("cuLaunchKernelEx", fn, grid, block, params)
}

func (f *fakeDriver) launch(call string, fn uintptr, grid, block [3]uint32, params []unsafe.Pointer) cuResult {
	if r := f.call(call); r != 0 {
		return r
	}
	name, ok := f.funcs[fn]
	if !ok {
		return 400
	}
	l := fakeLaunch{name: name, grid: grid, block: block, pdl: call == "cuLaunchKernelEx"}
	for _, p := range params {
		l.args = append(l.args, *(*uint64)(p))
	}
	f.launches = append(f.launches, l)
	if f.emulator != "" {
		if err := f.emulate(l); err != nil {
			f.emuErr = err
			return 719 // CUDA_ERROR_LAUNCH_FAILED
		}
	}
	return 0
}

// emulate runs one launch in the CPU emulator over a copy of the device
// memory it can reach and copies the results back.
func (f *fakeDriver) emulate(l fakeLaunch) error {
	var in bytes.Buffer
	w := func(v any) { binary.Write(&in, binary.LittleEndian, v) }
	in.WriteString("EMU1")
	w(uint32(len(l.name)))
	in.WriteString(l.name)
	w(l.grid)
	w(l.block)
	w(uint32(len(l.args)))
	w(l.args)
	// Only the blocks the arguments point into travel: kernels reach
	// memory through their pointer arguments alone, and copying all of it
	// for every launch made a training step take minutes.
	var bases []uint64
	seen := map[uint64]bool{}
	for _, arg := range l.args {
		for base, b := range f.mem {
			if arg >= base && arg < base+uint64(len(b)) && !seen[base] {
				seen[base] = true
				bases = append(bases, base)
			}
		}
	}
	w(uint32(len(bases)))
	for _, base := range bases {
		w(base)
		w(uint64(len(f.mem[base])))
		in.Write(f.mem[base])
	}
	if f.emu == nil {
		if err := f.startEmulator(); err != nil {
			return err
		}
	}
	fail := func(err error) error {
		f.stopEmulator()
		return fmt.Errorf("emulating %s: %v: %s", l.name, err, f.emuStderr.String())
	}
	if _, err := f.emuIn.Write(in.Bytes()); err != nil {
		return fail(err)
	}
	for _, base := range bases {
		if _, err := io.ReadFull(f.emuOut, f.mem[base]); err != nil {
			return fail(err)
		}
	}
	return nil
}

// startEmulator starts the one emulator process the launches go to.
func (f *fakeDriver) startEmulator() error {
	cmd := exec.Command(f.emulator)
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	f.emuStderr.Reset()
	cmd.Stderr = &f.emuStderr
	if err := cmd.Start(); err != nil {
		return err
	}
	f.emu, f.emuIn, f.emuOut = cmd, in, out
	return nil
}

// stopEmulator ends the emulator process, if one runs.
func (f *fakeDriver) stopEmulator() {
	if f.emu == nil {
		return
	}
	f.emuIn.Close()
	f.emu.Wait()
	f.emu = nil
}

func (f *fakeDriver) EventCreate(uint32) (uintptr, cuResult) {
	if r := f.call("cuEventCreate"); r != 0 {
		return 0, r
	}
	h := f.newHandle()
	f.events[h] = -1
	return h, 0
}

// EventRecord stamps the event with the number of launches so far, so that
// elapsed "milliseconds" count the launches between two events.
func (f *fakeDriver) EventRecord(ev, _ uintptr) cuResult {
	if _, ok := f.events[ev]; !ok {
		return 400
	}
	f.events[ev] = len(f.launches)
	return f.call("cuEventRecord")
}
func (f *fakeDriver) EventSynchronize(uintptr) cuResult { return f.call("cuEventSynchronize") }
func (f *fakeDriver) EventElapsedTime(a, b uintptr) (float32, cuResult) {
	ta, oka := f.events[a]
	tb, okb := f.events[b]
	if !oka || !okb || ta < 0 || tb < 0 {
		return 0, 600 // CUDA_ERROR_NOT_READY
	}
	return float32(tb - ta), f.call("cuEventElapsedTime")
}
func (f *fakeDriver) EventDestroy(ev uintptr) cuResult {
	delete(f.events, ev)
	return f.call("cuEventDestroy")
}

var fakeErrors = map[cuResult][2]string{
	1:   {"CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	2:   {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	100: {"CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	200: {"CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	719: {"CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
}

func (f *fakeDriver) ErrorName(r cuResult) string   { return fakeErrors[r][0] }
func (f *fakeDriver) ErrorString(r cuResult) string { return fakeErrors[r][1] }

// fakeNVRTC "compiles" a source into a fake CUBIN that fakeDriver accepts.
type fakeNVRTC struct {
	progs    map[uintptr]string
	next     uintptr
	compiles int
	options  []string
	broken   bool // fail every compile with a log
}

func newFakeNVRTC() *fakeNVRTC { return &fakeNVRTC{progs: map[uintptr]string{}} }

func (r *fakeNVRTC) Version() (int32, int32, nvrtcResult) { return 13, 0, 0 }
func (r *fakeNVRTC) CreateProgram(src, name string) (uintptr, nvrtcResult) {
	r.next++
	r.progs[r.next] = name + "\n" + src
	return r.next, 0
}
func (r *fakeNVRTC) CompileProgram(p uintptr, options []string) nvrtcResult {
	r.compiles++
	r.options = options
	if r.broken {
		return 6 // NVRTC_ERROR_COMPILATION
	}
	return 0
}
func (r *fakeNVRTC) image(p uintptr) []byte {
	sum := sha256.Sum256([]byte(r.progs[p]))
	return append([]byte(fakeCUBINMagic), sum[:]...)
}
func (r *fakeNVRTC) GetCUBINSize(p uintptr) (uint64, nvrtcResult) {
	return uint64(len(r.image(p))), 0
}
func (r *fakeNVRTC) GetCUBIN(p uintptr, buf []byte) nvrtcResult { copy(buf, r.image(p)); return 0 }
func (r *fakeNVRTC) GetProgramLogSize(p uintptr) (uint64, nvrtcResult) {
	return uint64(len(r.log(p)) + 1), 0
}
func (r *fakeNVRTC) GetProgramLog(p uintptr, buf []byte) nvrtcResult {
	copy(buf, r.log(p)+"\x00")
	return 0
}
func (r *fakeNVRTC) log(p uintptr) string {
	if r.broken {
		name, _, _ := strings.Cut(r.progs[p], "\n")
		return name + "(3): error: identifier \"oops\" is undefined"
	}
	return ""
}
func (r *fakeNVRTC) DestroyProgram(p uintptr) nvrtcResult { delete(r.progs, p); return 0 }
func (r *fakeNVRTC) ErrorString(res nvrtcResult) string {
	if res == 6 {
		return "NVRTC_ERROR_COMPILATION"
	}
	return fmt.Sprintf("nvrtc error %d", res)
}

// openFake opens a Device over fresh fakes with its disk cache in a
// temporary folder.
func openFake(t *testing.T) (*Device, *fakeDriver, *fakeNVRTC) {
	t.Helper()
	return openFakeIn(t, t.TempDir())
}

// openFakeIn is openFake with the disk cache under cacheHome.
func openFakeIn(t *testing.T, cacheHome string) (*Device, *fakeDriver, *fakeNVRTC) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", cacheHome)
	drv, rtc := newFakeDriver(), newFakeNVRTC()
	d, err := openWith(drv, "fake-libcuda", func() (nvrtcAPI, string, error) { return rtc, "fake-nvrtc", nil }, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		drv.stopEmulator()
	})
	return d, drv, rtc
}

var (
	emuOnce sync.Once
	emuPath string
	emuErr  error
	emuDir  string
)

// emulator builds testdata/emu once per test binary; tests that need it
// skip where there is no C++ compiler.
func emulator(t *testing.T) string {
	t.Helper()
	emuOnce.Do(func() {
		cxx, err := exec.LookPath("g++")
		if err != nil {
			if cxx, err = exec.LookPath("clang++"); err != nil {
				emuErr = fmt.Errorf("no C++ compiler (g++ or clang++) to build the kernel emulator")
				return
			}
		}
		emuDir, err = os.MkdirTemp("", "srmlab-emu-")
		if err != nil {
			emuErr = err
			return
		}
		emuPath = filepath.Join(emuDir, "emu")
		out, err := exec.Command(cxx, "-std=c++20", "-O1", "-o", emuPath, "testdata/emu/emu.cc").CombinedOutput()
		if err != nil {
			emuErr = fmt.Errorf("building the emulator: %v\n%s", err, out)
		}
	})
	if emuErr != nil {
		if strings.HasPrefix(emuErr.Error(), "no C++ compiler") {
			t.Skip(emuErr)
		}
		t.Fatal(emuErr)
	}
	return emuPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if emuDir != "" {
		os.RemoveAll(emuDir)
	}
	os.Exit(code)
}
