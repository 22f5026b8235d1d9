package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/srmlab/srmlab/tensor"
)

// Array is one tensor's float32 values in device memory: the
// tensor.Storage of tensors on a GPU. Tensors come and go with every
// operation of a training step, and Go gives no hook when a value's last
// reference goes, so an Array's block returns to the device's cache when
// the garbage collector finds the Array unreachable. The collector does not
// see device memory, so NewArray starts a collection, in the background,
// once arrays worth a slice of the GPU's memory were allocated since the
// last one; only running out of memory waits for one. An array's Buffer
// keeps it reachable, and plans keep their buffers until queued, so code
// that passes buffers to kernels need not hold the tensors as well.
type Array struct {
	dev *Device
	buf *Buffer
	n   int
}

// Device returns the device the array lives on.
func (a *Array) Device() tensor.Device { return a.dev }

// Len is the number of values.
func (a *Array) Len() int { return a.n }

// Buffer is the array's device memory, for passing to kernels.
func (a *Array) Buffer() *Buffer { return a.buf }

// ArrayOf returns the device array of a tensor on d, or an error naming
// the tensor's place when it lives elsewhere.
func (d *Device) ArrayOf(t *tensor.Tensor) (*Array, error) {
	a, ok := t.Storage().(*Array)
	if !ok || a.dev != d {
		where := "the host"
		if dev := t.Device(); dev != nil {
			where = dev.String()
		}
		return nil, fmt.Errorf("cuda: tensor %v is on %s, not %v", t.Shape(), where, d)
	}
	return a, nil
}

// String names the device as tensors report it, e.g. "cuda:0 (NVIDIA H200)".
func (d *Device) String() string { return fmt.Sprintf("cuda:%d (%s)", d.info.Ordinal, d.info.Name) }

// gcShare is the fraction of device memory that may be allocated to arrays
// between forced collections.
const gcShare = 16

// NewArray returns storage for n values whose contents are undefined: for
// results a kernel writes in full.
func (d *Device) NewArray(n int) (*Array, error) {
	if n < 0 {
		return nil, fmt.Errorf("cuda: array of %d values", n)
	}
	bytes := 4 * max(n, 1)
	if d.sinceGC.Add(int64(bytes)) > max(int64(d.info.TotalMem)/gcShare, 256<<20) && d.collecting.CompareAndSwap(false, true) {
		d.sinceGC.Store(0)
		go func() {
			runtime.GC()
			d.collecting.Store(false)
		}()
	}
	b, err := d.allocCollected(bytes)
	if err != nil && isOutOfMemory(err) {
		// Unreachable arrays may still hold the memory: collect, give the
		// cleanups a moment to queue their blocks, and try once more.
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		b, err = d.allocCollected(bytes)
	}
	if err != nil {
		return nil, err
	}
	a := &Array{dev: d, buf: b, n: n}
	b.owner = a
	runtime.AddCleanup(a, d.freeLater, b.ptr)
	return a, nil
}

// allocCollected is Alloc after returning the blocks of collected arrays.
func (d *Device) allocCollected(bytes int) (*Buffer, error) {
	b := &Buffer{dev: d, size: bytes}
	err := d.exec.do(func() error {
		if err := d.returnCollected(); err != nil {
			return err
		}
		var err error
		b.ptr, _, err = d.alloc.get(uint64(bytes))
		return err
	})
	return b, err
}

// freeLater runs on the garbage collector's cleanup goroutine, which runs
// cleanups one at a time: it must not wait for the device's lock, which a
// busy training loop holds most of the time.
func (d *Device) freeLater(ptr uint64) {
	d.freeMu.Lock()
	d.pendingFree = append(d.pendingFree, ptr)
	d.freeMu.Unlock()
}

// returnCollected hands the blocks of collected arrays back to the
// allocator; called on the CUDA thread. Work queued before the collection
// that used those blocks stays ahead of any reuse on the one stream.
func (d *Device) returnCollected() error {
	d.freeMu.Lock()
	ptrs := d.pendingFree
	d.pendingFree = nil
	d.freeMu.Unlock()
	var errs []error
	for _, p := range ptrs {
		errs = append(errs, d.alloc.put(p))
	}
	return errors.Join(errs...)
}

// NewStorage returns zeroed storage for n float32 values (tensor.Device).
func (d *Device) NewStorage(dt tensor.DType, n int) (tensor.Storage, error) {
	if dt != tensor.Float32 {
		return nil, fmt.Errorf("cuda: %v tensors are not supported on the GPU (float32 only)", dt)
	}
	a, err := d.NewArray(n)
	if err != nil {
		return nil, err
	}
	return a, d.memset(a, 0)
}

// memset queues a fill of a's values with one 32-bit pattern.
func (d *Device) memset(a *Array, bits uint32) error {
	if a.n == 0 {
		return nil
	}
	return d.exec.do(func() error {
		return check(d.drv, "cuMemsetD32_v2", d.drv.MemsetD32(a.buf.ptr, bits, uint64(a.n)))
	})
}

func (d *Device) storage(s tensor.Storage) (*Array, error) {
	a, ok := s.(*Array)
	if !ok || a.dev != d {
		return nil, fmt.Errorf("cuda: storage of %v is not on %v", s.Device(), d)
	}
	return a, nil
}

// Write copies host values ([]float32) into s (tensor.Device).
func (d *Device) Write(s tensor.Storage, src any) error {
	a, err := d.storage(s)
	if err != nil {
		return err
	}
	v, ok := src.([]float32)
	if !ok || len(v) != a.n {
		return fmt.Errorf("cuda: write of %T (%d values) into an array of %d float32", src, lenOf(src), a.n)
	}
	return a.buf.CopyFrom(v)
}

// Read copies s into dst ([]float32) (tensor.Device). It waits for the
// queued work, so it reports kernel failures too.
func (d *Device) Read(s tensor.Storage, dst any) error {
	a, err := d.storage(s)
	if err != nil {
		return err
	}
	v, ok := dst.([]float32)
	if !ok || len(v) != a.n {
		return fmt.Errorf("cuda: read of an array of %d float32 into %T (%d values)", a.n, dst, lenOf(dst))
	}
	return a.buf.CopyTo(v)
}

func lenOf(v any) int {
	switch s := v.(type) {
	case []float32:
		return len(s)
	case []float64:
		return len(s)
	}
	return -1
}

// FillStorage sets every value of s to v (tensor.Device).
func (d *Device) FillStorage(s tensor.Storage, v float64) error {
	a, err := d.storage(s)
	if err != nil {
		return err
	}
	return d.memset(a, math.Float32bits(float32(v)))
}

// CopyStorage copies src into dst (tensor.Device).
func (d *Device) CopyStorage(dst, src tensor.Storage) error {
	a, err := d.storage(dst)
	if err != nil {
		return err
	}
	b, err := d.storage(src)
	if err != nil {
		return err
	}
	if a.n != b.n {
		return fmt.Errorf("cuda: copy of %d values into an array of %d", b.n, a.n)
	}
	if a.n == 0 {
		return nil
	}
	return d.exec.do(func() error {
		return check(d.drv, "cuMemcpyDtoD_v2", d.drv.MemcpyDtoD(a.buf.ptr, b.buf.ptr, uint64(4*a.n)))
	})
}

var _ tensor.Device = (*Device)(nil)
