package cuda

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The kernel sources travel inside the binary, so a binary built elsewhere
// (the GPU machines have no Go toolchain) carries everything it needs.
//
//go:embed kernels/*.cu
var kernelFS embed.FS

// kernelRef names one __global__ function: its source file under kernels/
// and its extern "C" name.
type kernelRef struct{ file, name string }

// kernelCache compiles each source file with NVRTC on first use, keeps the
// CUBIN on disk so later processes skip the compile, and keeps modules and
// function handles for the life of the device. Used on the CUDA thread only.
type kernelCache struct {
	drv     driverAPI
	loadRTC func() (nvrtcAPI, string, error)
	arch    string
	dir     string // disk cache folder; "" when there is none

	rtc     nvrtcAPI
	rtcDesc string
	rtcVer  string
	rtcErr  error

	modules map[string]uintptr
	funcs   map[kernelRef]uintptr

	compiles  int           // NVRTC compiles this process
	compiling time.Duration // their time
	diskHits  int           // CUBINs read from the disk cache
	diskError error         // the last failure to write the disk cache, if any
}

func newKernelCache(drv driverAPI, loadRTC func() (nvrtcAPI, string, error), arch string) *kernelCache {
	k := &kernelCache{drv: drv, loadRTC: loadRTC, arch: arch, modules: map[string]uintptr{}, funcs: map[kernelRef]uintptr{}}
	if dir, err := os.UserCacheDir(); err == nil {
		k.dir = filepath.Join(dir, "srmlab", "cuda")
	}
	return k
}

// compileOptions are the NVRTC flags; they are part of the cache key. Code
// is built for the device's own architecture (a CUBIN, no PTX for the
// driver to JIT), with IEEE division and square root (no fast math): the
// kernels are memory-bound and the checks compare against float64 at 1e-5.
func (k *kernelCache) compileOptions() []string {
	return []string{"--gpu-architecture=" + k.arch, "--std=c++17"}
}

// nvrtc loads NVRTC once; a failure is remembered so that every kernel
// reports the same cause.
func (k *kernelCache) nvrtc() (nvrtcAPI, error) {
	if k.rtc == nil && k.rtcErr == nil {
		rtc, where, err := k.loadRTC()
		if err != nil {
			k.rtcErr = err
			return nil, err
		}
		major, minor, r := rtc.Version()
		if err := checkRTC(rtc, "nvrtcVersion", r); err != nil {
			k.rtcErr = err
			return nil, err
		}
		k.rtc = rtc
		k.rtcVer = fmt.Sprintf("%d.%d", major, minor)
		k.rtcDesc = fmt.Sprintf("NVRTC %s (%s)", k.rtcVer, where)
	}
	return k.rtc, k.rtcErr
}

// function returns the handle of a kernel, compiling and loading its
// module first if needed.
func (k *kernelCache) function(ref kernelRef) (uintptr, error) {
	if f, ok := k.funcs[ref]; ok {
		return f, nil
	}
	mod, err := k.module(ref.file)
	if err != nil {
		return 0, err
	}
	f, r := k.drv.ModuleGetFunction(mod, ref.name)
	if err := check(k.drv, "cuModuleGetFunction("+ref.name+")", r); err != nil {
		return 0, err
	}
	k.funcs[ref] = f
	return f, nil
}

func (k *kernelCache) module(file string) (uintptr, error) {
	if m, ok := k.modules[file]; ok {
		return m, nil
	}
	src, err := kernelFS.ReadFile("kernels/" + file)
	if err != nil {
		return 0, fmt.Errorf("cuda: no kernel source %s", file)
	}
	image, path, err := k.cubin(file, string(src))
	if err != nil {
		return 0, err
	}
	m, r := k.drv.ModuleLoadData(image)
	if r != cuSuccess && path != "" {
		// A damaged or foreign cache entry: drop it and compile afresh.
		os.Remove(path)
		if image, err = k.compileAndStore(file, string(src), path); err != nil {
			return 0, err
		}
		m, r = k.drv.ModuleLoadData(image)
	}
	if err := check(k.drv, "cuModuleLoadData("+file+")", r); err != nil {
		return 0, err
	}
	k.modules[file] = m
	return m, nil
}

// cubin returns the compiled module and, when it came from the disk cache,
// the cache file's path.
func (k *kernelCache) cubin(file, src string) ([]byte, string, error) {
	if _, err := k.nvrtc(); err != nil {
		return nil, "", err
	}
	path := ""
	if k.dir != "" {
		h := sha256.New()
		for _, part := range append([]string{src, k.arch, k.rtcVer}, k.compileOptions()...) {
			h.Write([]byte(part))
			h.Write([]byte{0})
		}
		path = filepath.Join(k.dir, hex.EncodeToString(h.Sum(nil))+".cubin")
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
			k.diskHits++
			return data, path, nil
		}
	}
	image, err := k.compileAndStore(file, src, path)
	return image, "", err
}

// compileAndStore compiles src and, when path is set, writes the CUBIN
// there atomically (a temporary file renamed into place), so that a
// concurrent process never reads half a file. A failed write costs only a
// later recompile, so it is recorded, not returned.
func (k *kernelCache) compileAndStore(file, src, path string) ([]byte, error) {
	rtc, err := k.nvrtc()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	image, _, err := compileCUBIN(rtc, src, file, k.compileOptions())
	if err != nil {
		return nil, err
	}
	k.compiles++
	k.compiling += time.Since(start)
	if path != "" {
		k.diskError = writeAtomic(path, image)
	}
	return image, nil
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.cubin")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// compileCUBIN runs one NVRTC compile and returns the CUBIN and NVRTC's log
// (ptxas's report when the options ask for one); a failed compile's error
// carries the log, which holds the compiler's messages.
func compileCUBIN(rtc nvrtcAPI, src, name string, options []string) (_ []byte, log string, err error) {
	prog, r := rtc.CreateProgram(src, name)
	if err := checkRTC(rtc, "nvrtcCreateProgram", r); err != nil {
		return nil, "", err
	}
	defer func() { err = errors.Join(err, checkRTC(rtc, "nvrtcDestroyProgram", rtc.DestroyProgram(prog))) }()
	r = rtc.CompileProgram(prog, options)
	log = programLog(rtc, prog)
	if r != 0 {
		err := checkRTC(rtc, "nvrtcCompileProgram("+name+")", r)
		if log != "" {
			err = fmt.Errorf("%w:\n%s", err, log)
		}
		return nil, log, err
	}
	n, r := rtc.GetCUBINSize(prog)
	if err := checkRTC(rtc, "nvrtcGetCUBINSize", r); err != nil {
		return nil, log, err
	}
	if n == 0 {
		return nil, log, fmt.Errorf("cuda: NVRTC produced an empty CUBIN for %s", name)
	}
	image := make([]byte, n)
	if err := checkRTC(rtc, "nvrtcGetCUBIN", rtc.GetCUBIN(prog, image)); err != nil {
		return nil, log, err
	}
	return image, log, nil
}

func programLog(rtc nvrtcAPI, prog uintptr) string {
	n, r := rtc.GetProgramLogSize(prog)
	if r != 0 || n <= 1 {
		return ""
	}
	buf := make([]byte, n)
	if rtc.GetProgramLog(prog, buf) != 0 {
		return ""
	}
	return strings.TrimRight(string(buf), "\x00\n ")
}

func (k *kernelCache) unloadAll() error {
	var errs []error
	for file, m := range k.modules {
		errs = append(errs, check(k.drv, "cuModuleUnload("+file+")", k.drv.ModuleUnload(m)))
	}
	clear(k.modules)
	clear(k.funcs)
	return errors.Join(errs...)
}

// CompilerInfo describes the kernel compiler and cache after the kernels
// used so far were loaded: NVRTC's version and path, compiles this process
// and their time, CUBINs read from the disk cache, and a failure to write
// that cache.
func (d *Device) CompilerInfo() string {
	var s string
	d.exec.do(func() error {
		k := d.kern
		desc := k.rtcDesc
		if k.rtcErr != nil {
			desc = "NVRTC unavailable: " + k.rtcErr.Error()
		} else if desc == "" {
			desc = "NVRTC not loaded yet"
		}
		s = fmt.Sprintf("%s, target %s; %d compiled (%.1f s), %d from cache %s", desc, k.arch, k.compiles, k.compiling.Seconds(), k.diskHits, k.dir)
		if k.diskError != nil {
			s += fmt.Sprintf(" (cache write failed: %v)", k.diskError)
		}
		return nil
	})
	return s
}
