package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"
	"unsafe"
)

// Plan is a sequence of kernel launches with their arguments packed, ready
// to be queued on the device. An operation (an SRM forward, say) builds its
// plan on the caller's goroutine; Run then hands the whole sequence to the
// CUDA thread in one go, so the cost of crossing to that thread is paid
// once per operation rather than once per launch, and Time can replay it
// back to back between events.
type Plan struct {
	dev      *Device
	launches []launch
}

type launch struct {
	kernel kernelRef
	grid   [3]uint32
	block  [3]uint32
	args   []uint64 // one 8-byte slot per kernel parameter
	// keep holds the buffers behind the pointer arguments until the plan
	// is queued, so that no array is collected, and its memory handed out
	// again, between building the launch and queuing it.
	keep []*Buffer
}

// Then returns a plan that runs p and then q.
func (p *Plan) Then(q *Plan) (*Plan, error) {
	if p.dev != q.dev {
		return nil, errors.New("cuda: plans for different devices")
	}
	out := &Plan{dev: p.dev}
	out.launches = append(append(out.launches, p.launches...), q.launches...)
	return out, nil
}

// Kernels lists the kernels the plan launches, in order.
func (p *Plan) Kernels() []string {
	names := make([]string, len(p.launches))
	for i, l := range p.launches {
		names[i] = l.kernel.name
	}
	return names
}

// add appends a launch of a 1-D grid of 1-D blocks.
func (p *Plan) add(k kernelRef, grid, block int, args ...any) error {
	if grid <= 0 || grid > math.MaxInt32 || block <= 0 || block > 1024 {
		return fmt.Errorf("cuda: %s: bad launch shape %d blocks of %d threads", k.name, grid, block)
	}
	l := launch{kernel: k, grid: [3]uint32{uint32(grid), 1, 1}, block: [3]uint32{uint32(block), 1, 1}, args: make([]uint64, len(args))}
	for i, a := range args {
		if b, ok := a.(*Buffer); ok {
			l.keep = append(l.keep, b)
		}
		v, err := packArg(a)
		if err != nil {
			return fmt.Errorf("cuda: %s argument %d: %w", k.name, i, err)
		}
		l.args[i] = v
	}
	p.launches = append(p.launches, l)
	return nil
}

// packArg stores a kernel argument in an 8-byte slot the way the kernel
// reads it: cuLaunchKernel copies each parameter's size in bytes from the
// address it is given, so a 4-byte value sits in the slot's low bytes
// (little-endian hosts, which is all purego supports for CUDA). Go's int
// is refused so that every call site states the C width it means.
func packArg(a any) (uint64, error) {
	switch v := a.(type) {
	case *Buffer:
		if v == nil {
			return 0, errors.New("nil buffer")
		}
		return v.ptr, nil
	case int32:
		return uint64(uint32(v)), nil
	case uint32:
		return uint64(v), nil
	case int64:
		return uint64(v), nil
	case uint64:
		return v, nil
	case float32:
		return uint64(math.Float32bits(v)), nil
	case float64:
		return math.Float64bits(v), nil
	default:
		return 0, fmt.Errorf("unsupported kernel argument type %T", a)
	}
}

// ready is a launch resolved to a function handle with its parameter array.
type ready struct {
	fn     uintptr
	l      *launch
	params []unsafe.Pointer
}

// prepare resolves kernels (compiling on first use) and builds the void**
// parameter arrays. They live in Go memory and hold Go pointers, so they
// and the slots they point to are pinned until the caller unpins: the
// driver reads them during cuLaunchKernel.
func (d *Device) prepare(p *Plan, pin *runtime.Pinner) ([]ready, error) {
	if p.dev != d {
		return nil, errors.New("cuda: plan built for another device")
	}
	out := make([]ready, len(p.launches))
	for i := range p.launches {
		l := &p.launches[i]
		fn, err := d.kern.function(l.kernel)
		if err != nil {
			return nil, err
		}
		params := make([]unsafe.Pointer, len(l.args))
		for j := range l.args {
			params[j] = unsafe.Pointer(&l.args[j])
		}
		if len(params) > 0 {
			pin.Pin(&l.args[0])
			pin.Pin(&params[0])
		}
		out[i] = ready{fn: fn, l: l, params: params}
	}
	return out, nil
}

// KernelUse is what a launch's kernel takes of an SM, as the driver
// reports it for the code NVRTC built: registers and local (spilled)
// memory a thread, and how many blocks of the launch's size fit an SM at
// once. Beside a kernel's time it tells whether registers limit how many
// loads it keeps in flight.
type KernelUse struct {
	Registers, LocalBytes, BlocksPerSM int
}

// kernelUse gives each launch of p its KernelUse, compiling the kernels
// first where needed.
func (d *Device) kernelUse(p *Plan) ([]KernelUse, error) {
	var out []KernelUse
	err := d.exec.do(func() error {
		for _, l := range p.launches {
			fn, err := d.kern.function(l.kernel)
			if err != nil {
				return err
			}
			regs, r1 := d.drv.FuncGetAttribute(funcAttrNumRegs, fn)
			local, r2 := d.drv.FuncGetAttribute(funcAttrLocalBytes, fn)
			blocks, r3 := d.drv.OccupancyBlocksPerSM(fn, int32(l.block[0]*l.block[1]*l.block[2]), 0)
			if err := errors.Join(check(d.drv, "cuFuncGetAttribute("+l.kernel.name+")", r1),
				check(d.drv, "cuFuncGetAttribute("+l.kernel.name+")", r2),
				check(d.drv, "cuOccupancyMaxActiveBlocksPerMultiprocessor("+l.kernel.name+")", r3)); err != nil {
				return err
			}
			out = append(out, KernelUse{Registers: int(regs), LocalBytes: int(local), BlocksPerSM: int(blocks)})
		}
		return nil
	})
	return out, err
}

// launchAll queues the launches on the default stream, those of srm.cu
// under programmatic dependent launch where SetPDL asked for it: every
// kernel there opens by waiting for the kernel before it (pdl_enter;
// ptxcheck.sh checks it), which makes the early start safe.
func (d *Device) launchAll(rs []ready) error {
	pdl := d.pdl.Load()
	for _, r := range rs {
		launch, call := d.drv.LaunchKernel, "cuLaunchKernel("
		if pdl && r.l.kernel.file == srmSource {
			launch, call = d.drv.LaunchKernelPDL, "cuLaunchKernelEx("
		}
		if err := check(d.drv, call+r.l.kernel.name+")", launch(r.fn, r.l.grid, r.l.block, 0, 0, r.params)); err != nil {
			return err
		}
	}
	return nil
}

// SetPDL switches programmatic dependent launch of SRM's and the block
// tails' kernels on or off. On, each may start while the kernel before it
// drains, hiding the gap between launches that small maps pay for between
// their short kernels; each still waits for its predecessor to finish
// before touching memory, so results are the same bits. It is off unless
// asked for (here, or SRMLAB_PDL=1 when Open runs): on an H200 it made the
// stand-alone 128x64x32x32 SRM forward+backward 1.06x faster and the 7x7
// and 32x32 block tails up to 1.06x, but whole SRM-ResNet-50 and ResNet-50
// training steps 0.4-3.6 % slower by their minimums in all six paired runs
// (docs/gpu, 2026-11-27). It needs compute capability 9.0 and a CUDA 12
// driver; asking for it elsewhere is an error.
func (d *Device) SetPDL(on bool) error {
	if on && !d.pdlSupported() {
		return fmt.Errorf("cuda: programmatic dependent launch needs compute capability 9.0 and a CUDA 12 driver; %s is %d.%d with driver %d",
			d.info.Name, d.info.Major, d.info.Minor, d.info.Driver)
	}
	d.pdl.Store(on)
	return nil
}

// pdlFromEnv applies SRMLAB_PDL's value: 1 or 0, or empty for the default.
func (d *Device) pdlFromEnv(v string) error {
	switch v {
	case "":
		return nil
	case "1", "0":
		if err := d.SetPDL(v == "1"); err != nil {
			return fmt.Errorf("SRMLAB_PDL=1: %w", err)
		}
		return nil
	}
	return fmt.Errorf("cuda: SRMLAB_PDL=%q: want 1 (programmatic dependent launch) or 0", v)
}

// PDL reports whether SRM's and the block tails' kernels are launched
// under programmatic dependent launch (SetPDL).
func (d *Device) PDL() bool { return d.pdl.Load() }

// pdlSupported: cuLaunchKernelEx, which carries the launch attribute,
// came with CUDA 12.0; griddepcontrol with sm_90.
func (d *Device) pdlSupported() bool { return d.info.Major >= 9 && d.info.Driver >= 12000 }

// Run queues the plan's launches. It returns once they are queued; errors
// raised by the kernels themselves surface at the next synchronising call
// (Synchronize, CopyTo).
func (d *Device) Run(p *Plan) error {
	return d.exec.do(func() error { return d.launchPlan(p) })
}

// launchPlan queues a plan's launches; on the CUDA thread.
func (d *Device) launchPlan(p *Plan) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	rs, err := d.prepare(p, &pin)
	if err != nil {
		return err
	}
	return d.launchAll(rs)
}

// Time runs the plan warmup times, then reps times back to back with a
// CUDA event recorded between runs, and returns the device time of each
// timed run. Kernels are compiled and loaded before the warm-up starts.
func (d *Device) Time(p *Plan, warmup, reps int) ([]time.Duration, error) {
	return d.timeAfter(nil, p, warmup, reps)
}

// timeAfter is Time with before, unless nil, run ahead of every run of p
// and left out of its time: a plan that evicts the L2 cache, so that no
// run finds in it what the previous one left there.
func (d *Device) timeAfter(before, p *Plan, warmup, reps int) ([]time.Duration, error) {
	runs, err := d.timeRuns(before, p, warmup, reps, false)
	out := make([]time.Duration, len(runs))
	for i, r := range runs {
		out[i] = r[0]
	}
	return out, err
}

// timeRuns is timeAfter returning each run's time as one value, or, with
// each, as the time of each of its launches: an event after every launch,
// so that a launch's time includes the gap before it.
func (d *Device) timeRuns(before, p *Plan, warmup, reps int, each bool) ([][]time.Duration, error) {
	if reps < 1 {
		return nil, errors.New("cuda: Time needs at least one repetition")
	}
	var out [][]time.Duration
	err := d.exec.do(func() (err error) {
		var pin runtime.Pinner
		defer pin.Unpin()
		rs, err := d.prepare(p, &pin)
		if err != nil {
			return err
		}
		var pre []ready
		if before != nil {
			if pre, err = d.prepare(before, &pin); err != nil {
				return err
			}
		}
		for range warmup {
			if err := errors.Join(d.launchAll(pre), d.launchAll(rs)); err != nil {
				return err
			}
		}
		// The launches timed apart: the whole run, or each launch.
		parts := [][]ready{rs}
		if each {
			parts = make([][]ready, len(rs))
			for j := range rs {
				parts[j] = rs[j : j+1]
			}
		}
		// marks[i] are run i's events: its start, then the end of each
		// part. Back to back, a run starts at the previous one's end. The
		// events are made before any is recorded, so that making them
		// does not hold up the launches between.
		starts := 1
		if before != nil {
			starts = reps
		}
		events := make([]uintptr, 0, starts+reps*len(parts))
		defer func() {
			for _, ev := range events {
				err = errors.Join(err, check(d.drv, "cuEventDestroy_v2", d.drv.EventDestroy(ev)))
			}
		}()
		for range cap(events) {
			ev, r := d.drv.EventCreate(0)
			if err := check(d.drv, "cuEventCreate", r); err != nil {
				return err
			}
			events = append(events, ev)
		}
		next := 0
		mark := func() (uintptr, error) {
			ev := events[next]
			next++
			return ev, check(d.drv, "cuEventRecord", d.drv.EventRecord(ev, 0))
		}
		marks := make([][]uintptr, reps)
		for i := range reps {
			if err := d.launchAll(pre); err != nil {
				return err
			}
			if i == 0 || before != nil {
				ev, err := mark()
				if err != nil {
					return err
				}
				marks[i] = append(marks[i], ev)
			} else {
				marks[i] = append(marks[i], marks[i-1][len(marks[i-1])-1])
			}
			for _, part := range parts {
				if err := d.launchAll(part); err != nil {
					return err
				}
				ev, err := mark()
				if err != nil {
					return err
				}
				marks[i] = append(marks[i], ev)
			}
		}
		if err := check(d.drv, "cuEventSynchronize", d.drv.EventSynchronize(events[len(events)-1])); err != nil {
			return err
		}
		out = make([][]time.Duration, reps)
		for i, m := range marks {
			for j := 1; j < len(m); j++ {
				ms, r := d.drv.EventElapsedTime(m[j-1], m[j])
				if err := check(d.drv, "cuEventElapsedTime", r); err != nil {
					return err
				}
				out[i] = append(out[i], time.Duration(float64(ms)*float64(time.Millisecond)))
			}
		}
		return nil
	})
	return out, err
}
