package cuda

import (
	"errors"
	"fmt"
	"unsafe"
)

// allocator is a caching allocator: freed blocks go onto a free list per
// size bucket and are handed out again before the driver is asked for more.
// cuMemAlloc and cuMemFree synchronise the whole device and cost tens of
// microseconds, and a training step frees and reallocates the same shapes
// every iteration, so recycling turns nearly every allocation into a map
// lookup. It is used only on the CUDA thread and needs no lock.
type allocator struct {
	malloc func(uint64) (uint64, error)
	free   func(uint64) error
	lists  map[uint64][]uint64 // bucket size -> cached blocks
	live   map[uint64]uint64   // block -> bucket size, for blocks handed out
	stats  MemStats
}

// MemStats is the allocator's account of device memory in bytes.
type MemStats struct {
	InUse  uint64 // held by live buffers (bucket sizes)
	Cached uint64 // freed by buffers, kept for reuse
	Allocs int    // allocations the driver served
	Reuses int    // allocations served from the cache
}

func newAllocator(malloc func(uint64) (uint64, error), free func(uint64) error) *allocator {
	return &allocator{malloc: malloc, free: free, lists: map[uint64][]uint64{}, live: map[uint64]uint64{}}
}

// Bucket rounding: small requests round up to a power of two (at least
// 512 bytes, the driver's own granularity being 256-byte alignment), so a
// few lists serve many sizes; large ones round up to 2 MiB, which wastes
// little and still lets equal-shaped tensors share blocks exactly.
const (
	minBucket   = 512
	smallLimit  = 1 << 20
	largeBucket = 2 << 20
)

func bucketFor(n uint64) uint64 {
	if n <= minBucket {
		return minBucket
	}
	if n <= smallLimit {
		b := uint64(minBucket)
		for b < n {
			b <<= 1
		}
		return b
	}
	return (n + largeBucket - 1) / largeBucket * largeBucket
}

// get returns a block of at least n bytes and its bucket size. When the
// driver is out of memory the cache is emptied and the request retried
// once: the memory may be sitting in other buckets.
func (a *allocator) get(n uint64) (ptr, bucket uint64, err error) {
	bucket = bucketFor(n)
	if l := a.lists[bucket]; len(l) > 0 {
		ptr = l[len(l)-1]
		a.lists[bucket] = l[:len(l)-1]
		a.stats.Cached -= bucket
		a.stats.Reuses++
	} else {
		ptr, err = a.malloc(bucket)
		if err != nil && isOutOfMemory(err) && a.stats.Cached > 0 {
			if terr := a.trim(); terr != nil {
				return 0, 0, errors.Join(err, terr)
			}
			ptr, err = a.malloc(bucket)
		}
		if err != nil {
			return 0, 0, err
		}
		a.stats.Allocs++
	}
	a.live[ptr] = bucket
	a.stats.InUse += bucket
	return ptr, bucket, nil
}

// put returns a block to its free list.
func (a *allocator) put(ptr uint64) error {
	bucket, ok := a.live[ptr]
	if !ok {
		return fmt.Errorf("cuda: free of %#x, which is not a live block", ptr)
	}
	delete(a.live, ptr)
	a.stats.InUse -= bucket
	a.stats.Cached += bucket
	a.lists[bucket] = append(a.lists[bucket], ptr)
	return nil
}

// trim hands every cached block back to the driver.
func (a *allocator) trim() error {
	var errs []error
	for bucket, l := range a.lists {
		for _, p := range l {
			errs = append(errs, a.free(p))
			a.stats.Cached -= bucket
		}
		delete(a.lists, bucket)
	}
	return errors.Join(errs...)
}

// releaseAll frees cached and live blocks alike, for Close.
func (a *allocator) releaseAll() error {
	errs := []error{a.trim()}
	for p, bucket := range a.live {
		errs = append(errs, a.free(p))
		a.stats.InUse -= bucket
		delete(a.live, p)
	}
	return errors.Join(errs...)
}

// Buffer is device memory from a Device's caching allocator.
type Buffer struct {
	dev   *Device
	ptr   uint64
	size  int
	freed bool
	// owner is the Array whose memory this is, if any: holding the buffer
	// keeps the array, and so the memory, from being collected.
	owner *Array
}

// Alloc returns a buffer of the given number of bytes. Its contents are
// whatever the block last held.
func (d *Device) Alloc(bytes int) (*Buffer, error) {
	if bytes <= 0 {
		return nil, fmt.Errorf("cuda: allocation of %d bytes", bytes)
	}
	b := &Buffer{dev: d, size: bytes}
	err := d.exec.do(func() error {
		var err error
		b.ptr, _, err = d.alloc.get(uint64(bytes))
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AllocFloat32 returns a buffer for n float32 values.
func (d *Device) AllocFloat32(n int) (*Buffer, error) { return d.Alloc(4 * n) }

// MemStats reports the allocator's bookkeeping.
func (d *Device) MemStats() MemStats {
	var s MemStats
	d.exec.do(func() error { s = d.alloc.stats; return nil })
	return s
}

// ReleaseCached returns the allocator's cached blocks to the driver, for
// handing memory to another library in the same process.
func (d *Device) ReleaseCached() error {
	return d.exec.do(d.alloc.trim)
}

// Bytes is the buffer's size as requested.
func (b *Buffer) Bytes() int { return b.size }

// Len is the number of float32 values the buffer holds.
func (b *Buffer) Len() int { return b.size / 4 }

// Free returns the buffer's memory to the device's cache. Kernels queued
// before Free that use the buffer still see valid memory: the cache hands
// the block out again only to work queued after it on the same stream.
func (b *Buffer) Free() error {
	return b.dev.exec.do(func() error {
		if b.freed {
			return errors.New("cuda: buffer freed twice")
		}
		b.freed = true
		return b.dev.alloc.put(b.ptr)
	})
}

// CopyFrom copies src into the start of the buffer (host to device).
func (b *Buffer) CopyFrom(src []float32) error {
	if len(src) == 0 {
		return nil
	}
	return b.upload(unsafe.Pointer(&src[0]), len(src), "floats")
}

// CopyTo copies the start of the buffer into dst (device to host). It waits
// for the kernels queued before it, so it also reports their errors.
func (b *Buffer) CopyTo(dst []float32) error {
	if len(dst) == 0 {
		return nil
	}
	if len(dst) > b.Len() {
		return fmt.Errorf("cuda: copy of %d floats out of a buffer of %d", len(dst), b.Len())
	}
	return b.dev.exec.do(func() error {
		if b.freed {
			return errors.New("cuda: copy out of a freed buffer")
		}
		return check(b.dev.drv, "cuMemcpyDtoH_v2", b.dev.drv.MemcpyDtoH(unsafe.Pointer(&dst[0]), b.ptr, uint64(4*len(dst))))
	})
}
