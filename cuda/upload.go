package cuda

import (
	"fmt"
	"unsafe"
)

// A copy from Go's (pageable) memory to the device first waits for all
// queued work: the driver syncs the stream before staging the data. For the
// small uploads inside a training step (the batch's labels, pooling
// tables) that stall would drain the queue mid-step, so they go through a
// ring of page-locked memory instead, whose copies are queued like kernels.
// The ring is written again from its start only after the device has
// caught up with all queued work, once per megabyte of uploads.
const (
	stagingBytes = 1 << 20
	stagedMax    = 64 << 10 // larger uploads copy directly
)

type staging struct {
	mem []byte // page-locked, stagingBytes
	off int    // next free byte
}

// uploadBytes copies n bytes at src to dst on the CUDA thread: through
// the staging ring when small, else directly (waiting for queued work).
func (d *Device) uploadBytes(dst uint64, src unsafe.Pointer, n int) error {
	if n > stagedMax {
		return check(d.drv, "cuMemcpyHtoD_v2", d.drv.MemcpyHtoD(dst, src, uint64(n)))
	}
	s := &d.staging
	if s.mem == nil {
		p, r := d.drv.MemAllocHost(stagingBytes)
		if r != cuSuccess {
			// No page-locked memory: the plain copy still works.
			return check(d.drv, "cuMemcpyHtoD_v2", d.drv.MemcpyHtoD(dst, src, uint64(n)))
		}
		s.mem = unsafe.Slice((*byte)(p), stagingBytes)
	}
	n16 := (n + 15) &^ 15
	if s.off+n16 > len(s.mem) {
		if err := d.finishLap(); err != nil {
			return err
		}
	}
	slot := s.mem[s.off : s.off+n]
	copy(slot, unsafe.Slice((*byte)(src), n))
	s.off += n16
	return check(d.drv, "cuMemcpyHtoDAsync_v2", d.drv.MemcpyHtoDAsync(dst, unsafe.Pointer(&slot[0]), uint64(n), 0))
}

// finishLap waits for every copy out of the ring, then starts it over.
func (d *Device) finishLap() error {
	if err := check(d.drv, "cuCtxSynchronize", d.drv.CtxSynchronize()); err != nil {
		return err
	}
	d.staging.off = 0
	return nil
}

// freeStaging returns the ring's memory; on the CUDA thread, at Close.
func (d *Device) freeStaging() error {
	s := &d.staging
	var err error
	if s.mem != nil {
		err = check(d.drv, "cuMemFreeHost", d.drv.MemFreeHost(unsafe.Pointer(&s.mem[0])))
	}
	*s = staging{}
	return err
}

// upload is CopyFrom for any element type of 4 bytes.
func (b *Buffer) upload(src unsafe.Pointer, n int, what string) error {
	if n == 0 {
		return nil
	}
	if n > b.Len() {
		return fmt.Errorf("cuda: copy of %d %s into a buffer of %d", n, what, b.Len())
	}
	return b.dev.exec.do(func() error {
		if b.freed {
			return fmt.Errorf("cuda: copy into a freed buffer")
		}
		return b.dev.uploadBytes(b.ptr, src, 4*n)
	})
}
