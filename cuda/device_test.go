package cuda

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func TestOpenWithoutDriver(t *testing.T) {
	t.Setenv(envLibCUDA, filepath.Join(t.TempDir(), "libcuda.so.1"))
	_, err := Open(0)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open without a driver: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), envLibCUDA) {
		t.Errorf("error does not say how to point at the driver: %v", err)
	}
}

func TestOpenNoDevice(t *testing.T) {
	drv := newFakeDriver()
	drv.fail["cuInit"] = 100
	_, err := openWith(drv, "fake", nil, 0)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "cuInit: no CUDA-capable device is detected (CUDA_ERROR_NO_DEVICE, code 100)") {
		t.Fatalf("got %v", err)
	}
	if _, err := openWith(newFakeDriver(), "fake", nil, 3); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GPU 3 of 1: %v", err)
	}
}

func TestDeviceInfo(t *testing.T) {
	d, _, _ := openFake(t)
	info := d.Info()
	if info.Name != "Fake GPU" || info.Arch() != "sm_90" || info.SMs != 4 || info.Driver != 13000 {
		t.Errorf("info %+v", info)
	}
	if got := info.PeakBandwidth(); got != 2*1e9*1024/8 {
		t.Errorf("peak bandwidth %v", got)
	}
}

func TestErrorMapping(t *testing.T) {
	d, drv, _ := openFake(t)
	drv.fail["cuMemAlloc"] = 1
	_, err := d.Alloc(100)
	var e *Error
	if !errors.As(err, &e) || e.Func != "cuMemAlloc_v2" || e.Code != 1 || e.Name != "CUDA_ERROR_INVALID_VALUE" {
		t.Fatalf("got %#v", err)
	}
	if want := "cuMemAlloc_v2: invalid argument (CUDA_ERROR_INVALID_VALUE, code 1)"; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
	delete(drv.fail, "cuMemAlloc")

	b, err := d.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	drv.fail["cuMemcpyDtoH"] = 719
	if err := b.CopyTo(make([]float32, 4)); err == nil || !strings.Contains(err.Error(), "cuMemcpyDtoH_v2: unspecified launch failure") {
		t.Errorf("copy after a failed kernel: %v", err)
	}
	drv.fail["cuCtxSynchronize"] = 999
	if err := d.Synchronize(); err == nil || !strings.Contains(err.Error(), "cuCtxSynchronize: unknown error (code 999)") {
		t.Errorf("unknown code: %v", err)
	}
}

// TestContextCurrent checks that every driver call, whichever goroutine
// asked and whichever OS thread it ran on, found the device's context
// current there.
func TestContextCurrent(t *testing.T) {
	d, drv, _ := openFake(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				b, err := d.Alloc(4096)
				if err != nil {
					t.Error(err)
					return
				}
				if err := b.CopyFrom(make([]float32, 1024)); err != nil {
					t.Error(err)
				}
				if err := b.Free(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := d.Synchronize(); err != nil {
		t.Fatal(err)
	}
	if len(drv.noCtx) > 0 {
		t.Errorf("%d driver calls without a current context, e.g. %s", len(drv.noCtx), drv.noCtx[0])
	}
	if err := d.exec.do(func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic became %v", err)
	}
	if err := d.Synchronize(); err != nil {
		t.Errorf("executor dead after a panic: %v", err)
	}
}

func TestBuckets(t *testing.T) {
	for _, c := range []struct{ n, want uint64 }{
		{1, 512}, {512, 512}, {513, 1024}, {1000, 1024}, {1 << 20, 1 << 20},
		{1<<20 + 1, 2 << 20}, {3 << 20, 4 << 20}, {205520896, 205520896}, {205520897, 205520896 + 2<<20},
	} {
		if got := bucketFor(c.n); got != c.want {
			t.Errorf("bucketFor(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

func TestAllocatorReuse(t *testing.T) {
	d, drv, _ := openFake(t)
	a, err := d.Alloc(1000)
	if err != nil {
		t.Fatal(err)
	}
	ptr := a.ptr
	if err := a.Free(); err != nil {
		t.Fatal(err)
	}
	if err := a.Free(); err == nil {
		t.Error("double free accepted")
	}
	b, err := d.Alloc(900) // same 1024-byte bucket
	if err != nil {
		t.Fatal(err)
	}
	if b.ptr != ptr {
		t.Errorf("cached block not reused")
	}
	c, err := d.Alloc(3 << 20)
	if err != nil {
		t.Fatal(err)
	}
	s := d.MemStats()
	if s.Allocs != 2 || s.Reuses != 1 || s.InUse != 1024+4<<20 || s.Cached != 0 {
		t.Errorf("stats %+v", s)
	}
	c.Free()
	if s := d.MemStats(); s.Cached != 4<<20 {
		t.Errorf("after free: %+v", s)
	}
	if err := d.ReleaseCached(); err != nil {
		t.Fatal(err)
	}
	if s := d.MemStats(); s.Cached != 0 || drv.count("cuMemFree") != 1 {
		t.Errorf("after release: %+v, %d frees", s, drv.count("cuMemFree"))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if len(drv.mem) != 0 {
		t.Errorf("Close left %d allocations", len(drv.mem))
	}
}

// TestAllocatorOutOfMemory checks that an allocation the driver refuses is
// retried after the cache is handed back.
func TestAllocatorOutOfMemory(t *testing.T) {
	d, drv, _ := openFake(t)
	drv.memLimit = 6 << 20
	a, err := d.Alloc(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	a.Free()
	if _, err := d.Alloc(5 << 20); err != nil {
		t.Fatalf("allocation with the memory in the cache: %v", err)
	}
	if _, err := d.Alloc(5 << 20); !isOutOfMemory(err) {
		t.Fatalf("allocation beyond the device: %v", err)
	}
}

func TestCopyRoundTrip(t *testing.T) {
	d, _, _ := openFake(t)
	b, err := d.AllocFloat32(5)
	if err != nil {
		t.Fatal(err)
	}
	in := []float32{1, -2, 3.5, float32(math.Inf(1)), 5}
	if err := b.CopyFrom(in); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 5)
	if err := b.CopyTo(out); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if in[i] != out[i] {
			t.Fatalf("round trip %v -> %v", in, out)
		}
	}
	if err := b.CopyFrom(make([]float32, 6)); err == nil {
		t.Error("overlong copy accepted")
	}
}

func TestPackArg(t *testing.T) {
	b := &Buffer{ptr: 0xdead0000}
	for _, c := range []struct {
		in   any
		want uint64
	}{
		{b, 0xdead0000}, {int32(-1), 0xffffffff}, {uint32(7), 7}, {int64(-2), math.MaxUint64 - 1},
		{uint64(9), 9}, {float32(1.5), uint64(math.Float32bits(1.5))}, {2.5, math.Float64bits(2.5)},
	} {
		got, err := packArg(c.in)
		if err != nil || got != c.want {
			t.Errorf("packArg(%T %v) = %#x, %v; want %#x", c.in, c.in, got, err, c.want)
		}
	}
	for _, bad := range []any{7, (*Buffer)(nil), "x"} {
		if _, err := packArg(bad); err == nil {
			t.Errorf("packArg(%T) accepted", bad)
		}
	}
}

func TestKernelCache(t *testing.T) {
	home := t.TempDir()
	d, drv, rtc := openFakeIn(t, home)
	x, _ := d.AllocFloat32(64)
	y, _ := d.AllocFloat32(64)
	p, err := d.CopyPlan(y, x, 64)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := d.Run(p); err != nil {
			t.Fatal(err)
		}
	}
	if rtc.compiles != 1 || drv.count("cuModuleLoadData") != 1 || drv.count("cuModuleGetFunction") != 1 || len(drv.launches) != 3 {
		t.Errorf("%d compiles, %d loads, %d lookups, %d launches", rtc.compiles, drv.count("cuModuleLoadData"),
			drv.count("cuModuleGetFunction"), len(drv.launches))
	}
	if strings.Join(rtc.options, " ") != "--gpu-architecture=sm_90 --std=c++17" {
		t.Errorf("options %q", rtc.options)
	}
	files, _ := filepath.Glob(filepath.Join(home, "srmlab", "cuda", "*.cubin"))
	if len(files) != 1 || len(filepath.Base(files[0])) != 64+len(".cubin") {
		t.Fatalf("disk cache holds %v", files)
	}
	if info := d.CompilerInfo(); !regexp.MustCompile(`^NVRTC 13\.0 \(fake-nvrtc\), target sm_90; 1 compiled \([0-9.]+ s\), 0 from cache`).MatchString(info) {
		t.Errorf("compiler info %q", info)
	}

	// A second process finds the CUBIN on disk and does not compile.
	d2, drv2, rtc2 := openFakeIn(t, home)
	x2, _ := d2.AllocFloat32(64)
	p2, _ := d2.CopyPlan(x2, x2, 64)
	if err := d2.Run(p2); err != nil {
		t.Fatal(err)
	}
	if rtc2.compiles != 0 || drv2.count("cuModuleLoadData") != 1 {
		t.Errorf("second device: %d compiles, %d loads", rtc2.compiles, drv2.count("cuModuleLoadData"))
	}

	// A damaged cache entry is replaced.
	os.WriteFile(files[0], []byte("garbage"), 0o644)
	d3, _, rtc3 := openFakeIn(t, home)
	x3, _ := d3.AllocFloat32(64)
	p3, _ := d3.CopyPlan(x3, x3, 64)
	if err := d3.Run(p3); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(files[0]); rtc3.compiles != 1 || !strings.HasPrefix(string(data), fakeCUBINMagic) {
		t.Errorf("damaged entry: %d compiles, entry %q", rtc3.compiles, data)
	}
	if left, _ := filepath.Glob(filepath.Join(home, "srmlab", "cuda", ".tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestCompileErrors(t *testing.T) {
	d, _, rtc := openFake(t)
	rtc.broken = true
	x, _ := d.AllocFloat32(64)
	p, _ := d.CopyPlan(x, x, 64)
	err := d.Run(p)
	if err == nil || !strings.Contains(err.Error(), "nvrtcCompileProgram(copy.cu): NVRTC_ERROR_COMPILATION") ||
		!strings.Contains(err.Error(), `copy.cu(3): error: identifier "oops" is undefined`) {
		t.Fatalf("got %v", err)
	}

	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	noRTC := errors.New("no NVRTC library could be opened")
	d2, err := openWith(newFakeDriver(), "fake", func() (nvrtcAPI, string, error) { return nil, "", noRTC }, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	x2, _ := d2.AllocFloat32(64)
	p2, _ := d2.CopyPlan(x2, x2, 64)
	if err := d2.Run(p2); !errors.Is(err, noRTC) {
		t.Errorf("without NVRTC: %v", err)
	}
	if !strings.Contains(d2.CompilerInfo(), "NVRTC unavailable") {
		t.Errorf("compiler info %q", d2.CompilerInfo())
	}
}

func TestTime(t *testing.T) {
	d, drv, _ := openFake(t)
	l, err := d.NewSRM(4)
	if err != nil {
		t.Fatal(err)
	}
	s := Shape{2, 4, 7, 7}
	x, _ := d.AllocFloat32(s.Len())
	ws, _ := l.NewWorkspace(s)
	p, err := l.ForwardTrain(x, x, ws)
	if err != nil {
		t.Fatal(err)
	}
	times, err := d.Time(p, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	// The fake's events count launches as milliseconds: 3 per run.
	if len(times) != 5 || times[0] != 3*time.Millisecond || times[4] != 3*time.Millisecond {
		t.Errorf("times %v", times)
	}
	if len(drv.launches) != 7*3 || len(drv.events) != 0 {
		t.Errorf("%d launches, %d events left", len(drv.launches), len(drv.events))
	}
}

// TestSetPDL checks that programmatic dependent launch is off from Open,
// that SRMLAB_PDL's values switch it, that it covers the SRM modules'
// kernels and only those, that turning it off goes back to plain launches,
// and that an older device or driver refuses it.
func TestSetPDL(t *testing.T) {
	f := newTailFixture(t, Shape{4, 8, 7, 7}, true)
	if f.d.PDL() {
		t.Error("PDL on after Open")
	}
	for _, c := range []struct {
		env  string
		want bool
	}{{"1", true}, {"", true}, {"0", false}, {"", false}} {
		if err := f.d.pdlFromEnv(c.env); err != nil || f.d.PDL() != c.want {
			t.Errorf("SRMLAB_PDL=%q: PDL %v, %v; want %v", c.env, f.d.PDL(), err, c.want)
		}
	}
	if err := f.d.pdlFromEnv("yes"); err == nil || !strings.Contains(err.Error(), `SRMLAB_PDL="yes"`) {
		t.Errorf(`SRMLAB_PDL="yes" gave %v`, err)
	}
	copyPlan, err := f.d.CopyPlan(f.dx, f.x, 4*8*7*7)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := f.tail.Forward(f.x, f.short, f.out, f.ws)
	if err != nil {
		t.Fatal(err)
	}
	p, err := copyPlan.Then(tail)
	if err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{true, false} {
		if err := f.d.SetPDL(on); err != nil {
			t.Fatal(err)
		}
		f.drv.launches = nil
		if err := f.d.Run(p); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range f.drv.launches {
			got = append(got, fmt.Sprintf("%s %v", l.name, l.pdl))
		}
		want := fmt.Sprintf("copy_f32x4 false srm_tail_stats_g16f4 %[1]v srm_tail_fwd %[1]v srm_tail_apply_g16f4 %[1]v", on)
		if strings.Join(got, " ") != want {
			t.Errorf("PDL %v: launches %v, want %s", on, got, want)
		}
	}
	for _, old := range []struct{ major, driver int }{{8, 13000}, {9, 11080}} {
		f.d.info.Major, f.d.info.Driver = old.major, old.driver
		if err := f.d.SetPDL(true); err == nil || !strings.Contains(err.Error(), "9.0 and a CUDA 12 driver") {
			t.Errorf("%+v: SetPDL(true) gave %v", old, err)
		}
		if err := f.d.pdlFromEnv("1"); err == nil || !strings.Contains(err.Error(), "SRMLAB_PDL=1: ") {
			t.Errorf("%+v: SRMLAB_PDL=1 gave %v", old, err)
		}
		if err := f.d.SetPDL(false); err != nil {
			t.Errorf("%+v: SetPDL(false) gave %v", old, err)
		}
	}
}

// TestLaunchConfigLayout checks the Go mirrors of CUlaunchConfig and
// CUlaunchAttribute against cuda.h's layout, which cuLaunchKernelEx reads.
func TestLaunchConfigLayout(t *testing.T) {
	var c launchConfig
	var a launchAttr
	got := []uintptr{unsafe.Sizeof(c), unsafe.Offsetof(c.sharedBytes), unsafe.Offsetof(c.stream), unsafe.Offsetof(c.attrs),
		unsafe.Offsetof(c.numAttrs), unsafe.Sizeof(a), unsafe.Offsetof(a.value)}
	if want := []uintptr{56, 24, 32, 40, 48, 72, 8}; !slices.Equal(got, want) {
		t.Errorf("layout %v, want %v", got, want)
	}
}

// TestTimeKernelsUse checks that each kernel's time comes with its
// registers and occupancy, and that a driver refusing them costs the
// timing only those.
func TestTimeKernelsUse(t *testing.T) {
	f := newTailFixture(t, Shape{4, 8, 7, 7}, true)
	p, err := f.tail.Forward(f.x, f.short, f.out, f.ws)
	if err != nil {
		t.Fatal(err)
	}
	opt := CheckOptions{Warmup: 1, Reps: 3}
	tm, err := timeKernels(f.d, Shape{4, 8, 7, 7}, "srm_tail_fwd", p, opt, nil)
	if err != nil || len(tm.KernelUse) != 3 || tm.KernelUse[0] != (KernelUse{32, 0, 8}) || tm.KernelUseError != "" {
		t.Fatalf("timing %+v, %v", tm, err)
	}
	f.drv.fail["cuOccupancyMaxActiveBlocksPerMultiprocessor"] = 1
	tm, err = timeKernels(f.d, Shape{4, 8, 7, 7}, "srm_tail_fwd", p, opt, nil)
	if err != nil || tm.KernelUse != nil || !strings.Contains(tm.KernelUseError, "cuOccupancyMaxActiveBlocksPerMultiprocessor") ||
		len(tm.KernelUS) != 3 {
		t.Fatalf("with occupancy refused: timing %+v, %v", tm, err)
	}
}
