package cuda

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Info describes the device a Device runs on.
type Info struct {
	Ordinal      int    // the number passed to Open
	Name         string // e.g. "NVIDIA H200"
	Major, Minor int    // compute capability
	SMs          int    // multiprocessors
	TotalMem     uint64 // bytes
	L2Bytes      int
	MemClockKHz  int    // 0 where the driver no longer reports it
	BusWidthBits int    // memory bus
	Driver       int    // driver API version, e.g. 13000
	Library      string // the libcuda that was opened
}

// Arch is the virtual architecture name NVRTC targets, e.g. "sm_90".
func (i Info) Arch() string { return fmt.Sprintf("sm_%d%d", i.Major, i.Minor) }

// PeakBandwidth is the datasheet memory bandwidth implied by the memory clock
// and bus width (double data rate), in bytes per second; 0 when unknown.
func (i Info) PeakBandwidth() float64 {
	return 2 * float64(i.MemClockKHz) * 1e3 * float64(i.BusWidthBits) / 8
}

// Device is one GPU with its primary context, a caching allocator and the
// kernels compiled for it. All its methods are safe for concurrent use:
// they queue work under the device's lock (see executor).
type Device struct {
	info  Info
	drv   driverAPI
	exec  *executor
	dev   int32
	ctx   uintptr
	alloc *allocator
	kern  *kernelCache
	// tables holds the index tables of the pooling kernels by content
	// (pool_tables.go); CUDA thread only.
	tables map[string]*Buffer

	// Arrays found unreachable by the garbage collector leave their blocks
	// here; the CUDA thread returns them to the allocator before its next
	// allocation (see array.go).
	freeMu      sync.Mutex
	pendingFree []uint64
	sinceGC     atomic.Int64 // Array bytes allocated since the last forced collection
	collecting  atomic.Bool  // a collection NewArray started is running

	staging staging // page-locked ring for small uploads (upload.go)

	pdl atomic.Bool // SetPDL

	closeOnce sync.Once
	closeErr  error
}

// Open opens GPU number ordinal through the CUDA driver found on this
// machine. Errors that mean there is no usable GPU wrap ErrUnavailable.
func Open(ordinal int) (*Device, error) {
	drv, err := loadDriver(hostEnv)
	if err != nil {
		return nil, err
	}
	d, err := openWith(drv, drv.path, func() (nvrtcAPI, string, error) {
		l, err := loadNVRTC(hostEnv)
		if err != nil {
			return nil, "", err
		}
		desc := l.path
		if l.builtins != "" {
			desc += ", builtins " + filepath.Base(l.builtins)
		}
		return l, desc, nil
	}, ordinal)
	if err != nil {
		return nil, err
	}
	if err := d.pdlFromEnv(hostEnv.getenv("SRMLAB_PDL")); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

// openWith opens a device over any driverAPI; loadRTC is called the first
// time a kernel must be compiled and returns NVRTC with a description of
// where it came from.
func openWith(drv driverAPI, libPath string, loadRTC func() (nvrtcAPI, string, error), ordinal int) (*Device, error) {
	d := &Device{drv: drv, exec: newExecutor(), tables: map[string]*Buffer{}}
	d.info.Ordinal = ordinal
	d.info.Library = libPath
	err := d.exec.do(func() error {
		if err := check(drv, "cuInit", drv.Init(0)); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		n, r := drv.DeviceGetCount()
		if err := check(drv, "cuDeviceGetCount", r); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if ordinal < 0 || ordinal >= int(n) {
			return fmt.Errorf("%w: GPU %d requested, %d present", ErrUnavailable, ordinal, n)
		}
		if d.dev, r = drv.DeviceGet(int32(ordinal)); r != cuSuccess {
			return check(drv, "cuDeviceGet", r)
		}
		ver, r := drv.DriverGetVersion()
		if err := check(drv, "cuDriverGetVersion", r); err != nil {
			return err
		}
		d.info.Driver = int(ver)
		if d.info.Name, r = drv.DeviceGetName(d.dev); r != cuSuccess {
			return check(drv, "cuDeviceGetName", r)
		}
		if d.info.TotalMem, r = drv.DeviceTotalMem(d.dev); r != cuSuccess {
			return check(drv, "cuDeviceTotalMem_v2", r)
		}
		for _, a := range []struct {
			attr int32
			dst  *int
		}{
			{attrComputeMajor, &d.info.Major},
			{attrComputeMinor, &d.info.Minor},
			{attrMultiprocessors, &d.info.SMs},
			{attrL2CacheBytes, &d.info.L2Bytes},
			{attrMemoryClockKHz, &d.info.MemClockKHz},
			{attrMemoryBusWidth, &d.info.BusWidthBits},
		} {
			v, r := drv.DeviceGetAttribute(a.attr, d.dev)
			if err := check(drv, fmt.Sprintf("cuDeviceGetAttribute(%d)", a.attr), r); err != nil {
				return err
			}
			*a.dst = int(v)
		}
		if d.ctx, r = drv.DevicePrimaryCtxRetain(d.dev); r != cuSuccess {
			return check(drv, "cuDevicePrimaryCtxRetain", r)
		}
		if err := check(drv, "cuCtxSetCurrent", drv.CtxSetCurrent(d.ctx)); err != nil {
			return errors.Join(err, check(drv, "cuDevicePrimaryCtxRelease_v2", drv.DevicePrimaryCtxRelease(d.dev)))
		}
		return nil
	})
	if err != nil {
		d.exec.stop()
		return nil, err
	}
	d.exec.setContext(func() error { return check(drv, "cuCtxSetCurrent", drv.CtxSetCurrent(d.ctx)) })
	d.alloc = newAllocator(
		func(n uint64) (uint64, error) {
			p, r := drv.MemAlloc(n)
			return p, check(drv, "cuMemAlloc_v2", r)
		},
		func(p uint64) error { return check(drv, "cuMemFree_v2", drv.MemFree(p)) },
	)
	d.kern = newKernelCache(drv, loadRTC, d.info.Arch())
	return d, nil
}

// Info describes the device.
func (d *Device) Info() Info { return d.info }

// Synchronize waits for all queued work and reports any error a kernel
// raised since the last synchronising call.
func (d *Device) Synchronize() error {
	return d.exec.do(func() error { return check(d.drv, "cuCtxSynchronize", d.drv.CtxSynchronize()) })
}

// Close waits for queued work, returns all device memory, unloads the
// kernels, releases the primary context and refuses later calls. Buffers
// must not be used afterwards.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.closeErr = d.exec.do(func() error {
			errs := []error{check(d.drv, "cuCtxSynchronize", d.drv.CtxSynchronize())}
			d.freeMu.Lock()
			d.pendingFree = nil // their blocks go with releaseAll
			d.freeMu.Unlock()
			errs = append(errs, d.freeStaging(), d.alloc.releaseAll())
			errs = append(errs, d.kern.unloadAll())
			errs = append(errs, check(d.drv, "cuDevicePrimaryCtxRelease_v2", d.drv.DevicePrimaryCtxRelease(d.dev)))
			return errors.Join(errs...)
		})
		d.exec.stop()
	})
	return d.closeErr
}
