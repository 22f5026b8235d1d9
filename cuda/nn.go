package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// The general neural-network kernels of nn.cu: elementwise maps, gating,
// biases (this file), channel reductions (nn_reduce.go), BatchNorm
// (nn_bn.go), cross-entropy (nn_loss.go), SGD and the NaN/Inf scan
// (nn_optim.go). Every call checks its sizes, builds one Plan and queues it
// with Run: it returns once the work is queued, and kernel faults surface
// at the next synchronising call.

const nnSource = "nn.cu"

// maxIndex bounds the values of one tensor for the kernels that find a
// value's plane or channel by 32-bit division.
const maxIndex = math.MaxInt32

// nnArg is a buffer an operation uses and the floats it must hold.
type nnArg struct {
	name string
	buf  *Buffer
	n    int
}

// nnCheck returns an error naming the first argument that is nil, belongs
// to another device or holds too few floats.
func (d *Device) nnCheck(op string, args ...nnArg) error {
	for _, a := range args {
		switch {
		case a.buf == nil:
			return fmt.Errorf("cuda: %s: %s is nil", op, a.name)
		case a.buf.dev != d:
			return fmt.Errorf("cuda: %s: %s belongs to another device", op, a.name)
		case a.buf.Len() < a.n:
			return fmt.Errorf("cuda: %s: %s holds %d floats, needs %d", op, a.name, a.buf.Len(), a.n)
		}
	}
	return nil
}

// nnCount rejects a negative count, or one above limit, naming it.
func nnCount(op, name string, v, limit int) error {
	if v < 0 || v > limit {
		return fmt.Errorf("cuda: %s: %s = %d is outside [0, %d]", op, name, v, limit)
	}
	return nil
}

// mapGrid is the grid for a grid-stride loop over n values taken four at a
// time: enough blocks for every SM to hold several (16 per SM, as the copy
// kernel), fewer for small tensors.
func (d *Device) mapGrid(n int) int {
	units := (n + 3) / 4
	return max(1, min((units+maxBlock-1)/maxBlock, 16*max(d.info.SMs, 1)))
}

// nnFlag is a kernel's int flag argument.
func nnFlag(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// runNN builds a plan with scratch buffers of the given float counts and
// queues it, in one trip to the CUDA thread: scratch is allocated, the
// plan built and launched, and the scratch handed back to the allocator.
// Freeing right after queuing is safe because the allocator hands the
// blocks out again only to work queued later on the same stream. One trip
// rather than one per allocation, launch and free matters for the small
// tensors of a network's later layers, whose kernels take less time than
// a handoff to the CUDA thread. build runs on the CUDA thread and must not
// call back into the device (it only adds launches).
func (d *Device) runNN(counts []int, build func(p *Plan, scratch []*Buffer) error) error {
	return d.exec.do(func() (err error) {
		scratch := make([]*Buffer, 0, len(counts))
		defer func() {
			for _, b := range scratch {
				b.freed = true
				err = errors.Join(err, d.alloc.put(b.ptr))
			}
		}()
		for _, n := range counts {
			ptr, _, err := d.alloc.get(uint64(4 * n))
			if err != nil {
				return err
			}
			scratch = append(scratch, &Buffer{dev: d, ptr: ptr, size: 4 * n})
		}
		p := &Plan{dev: d}
		if err := build(p, scratch); err != nil {
			return err
		}
		return d.launchPlan(p)
	})
}

// launch1 queues one launch of an nn.cu kernel.
func (d *Device) launch1(kernel string, grid int, args ...any) error {
	return d.runNN(nil, func(p *Plan, _ []*Buffer) error {
		return p.add(kernelRef{nnSource, kernel}, grid, maxBlock, args...)
	})
}

// mapOp checks n and the buffers of an elementwise operation over n values
// and launches kernel over them; n = 0 does nothing.
func (d *Device) mapOp(op, kernel string, n int, bufs []nnArg, args ...any) error {
	if err := nnCount(op, "n", n, math.MaxInt64); err != nil {
		return err
	}
	for i := range bufs {
		bufs[i].n = n
	}
	if err := d.nnCheck(op, bufs...); err != nil || n == 0 {
		return err
	}
	return d.launch1(kernel, d.mapGrid(n), args...)
}

// Fill sets the first n values of dst to v.
func (d *Device) Fill(dst *Buffer, n int, v float32) error {
	return d.mapOp("Fill", "nn_fill", n, []nnArg{{"dst", dst, 0}}, dst, v, int64(n))
}

// Copy copies n values from src to dst, device to device through the SMs
// (any n; CopyPlan is the timing yardstick and takes multiples of 4).
func (d *Device) Copy(dst, src *Buffer, n int) error {
	return d.mapOp("Copy", "nn_copy", n, []nnArg{{"dst", dst, 0}, {"src", src, 0}}, src, dst, int64(n))
}

// AddInto adds the first n values of src into dst.
func (d *Device) AddInto(dst, src *Buffer, n int) error {
	return d.mapOp("AddInto", "nn_add_into", n, []nnArg{{"dst", dst, 0}, {"src", src, 0}}, dst, src, int64(n))
}

// ReLU sets y = max(x, 0), NaN passing through as in the CPU engine; y may
// be x.
func (d *Device) ReLU(x, y *Buffer, n int) error {
	return d.mapOp("ReLU", "nn_relu", n, []nnArg{{"x", x, 0}, {"y", y, 0}}, x, y, int64(n))
}

// ReLUBackward sets dx = dy·[y > 0] from the ReLU's output y, or adds it
// into dx when accumulate is set; dx may be dy.
func (d *Device) ReLUBackward(y, dy, dx *Buffer, n int, accumulate bool) error {
	return d.mapOp("ReLUBackward", "nn_relu_bwd", n, []nnArg{{"y", y, 0}, {"dy", dy, 0}, {"dx", dx, 0}},
		y, dy, dx, int64(n), nnFlag(accumulate))
}

// Sigmoid sets y = 1/(1+exp(−x)); y may be x.
func (d *Device) Sigmoid(x, y *Buffer, n int) error {
	return d.mapOp("Sigmoid", "nn_sigmoid", n, []nnArg{{"x", x, 0}, {"y", y, 0}}, x, y, int64(n))
}

// SigmoidBackward sets dx = dy·y·(1−y) from the sigmoid's output y, or adds
// it into dx when accumulate is set; dx may be dy.
func (d *Device) SigmoidBackward(y, dy, dx *Buffer, n int, accumulate bool) error {
	return d.mapOp("SigmoidBackward", "nn_sigmoid_bwd", n, []nnArg{{"y", y, 0}, {"dy", dy, 0}, {"dx", dx, 0}},
		y, dy, dx, int64(n), nnFlag(accumulate))
}

// Add sets y = a + b, then ReLU when relu is set (the end of a residual
// block); y may be a or b.
func (d *Device) Add(a, b, y *Buffer, n int, relu bool) error {
	return d.mapOp("Add", "nn_add", n, []nnArg{{"a", a, 0}, {"b", b, 0}, {"y", y, 0}}, a, b, y, int64(n), nnFlag(relu))
}

// planeSizes checks planes × plane (both ≥ 0, the product within maxIndex)
// and returns the product.
func planeSizes(op, planesName string, planes, plane int) (int, error) {
	if err := errors.Join(nnCount(op, planesName, planes, maxIndex), nnCount(op, "plane", plane, maxIndex)); err != nil {
		return 0, err
	}
	if plane > 0 && planes > maxIndex/plane {
		return 0, fmt.Errorf("cuda: %s: %d×%d values are too many", op, planes, plane)
	}
	return planes * plane, nil
}

// ScalePlanes sets y[p, i] = x[p, i]·g[p] for planes of plane values: the
// gating of a recalibration module, g holding N·C gates. y may be x.
func (d *Device) ScalePlanes(x, g, y *Buffer, planes, plane int) error {
	const op = "ScalePlanes"
	n, err := planeSizes(op, "planes", planes, plane)
	if err != nil {
		return err
	}
	if err := d.nnCheck(op, nnArg{"x", x, n}, nnArg{"g", g, planes}, nnArg{"y", y, n}); err != nil || n == 0 {
		return err
	}
	return d.launch1("nn_scale_planes", d.mapGrid(n), x, g, y, int32(n), int32(plane))
}

// ScalePlanesBackward is ScalePlanes' gradient: dx[p, i] = dy[p, i]·g[p]
// and dg[p] = Σ_i dy[p, i]·x[p, i], each added into its destination when
// accX or accG is set. dx or dg may be nil to skip it; dx may be dy (dg is
// computed first).
func (d *Device) ScalePlanesBackward(x, g, dy, dx, dg *Buffer, planes, plane int, accX, accG bool) error {
	const op = "ScalePlanesBackward"
	n, err := planeSizes(op, "planes", planes, plane)
	if err != nil {
		return err
	}
	args := []nnArg{{"dy", dy, n}}
	if dx != nil {
		args = append(args, nnArg{"g", g, planes}, nnArg{"dx", dx, n})
	}
	if dg != nil {
		args = append(args, nnArg{"x", x, n}, nnArg{"dg", dg, planes})
	}
	if err := d.nnCheck(op, args...); err != nil || planes == 0 {
		return err
	}
	var counts []int
	sum := BNShape{1, planes, plane}
	if dg != nil {
		counts = d.channelSumScratch(sum)
	}
	return d.runNN(counts, func(p *Plan, scratch []*Buffer) error {
		if dg != nil {
			if err := d.addChannelSum(p, "nn_chan_dot", sum, scratch, dg, accG, x, dy); err != nil {
				return err
			}
		}
		if dx == nil || n == 0 {
			return nil
		}
		return p.add(kernelRef{nnSource, "nn_scale_planes_bwd"}, d.mapGrid(n), maxBlock, dy, g, dx, int32(n), int32(plane), nnFlag(accX))
	})
}

// biasSizes checks an outer × c × inner layout and returns its size.
func biasSizes(op string, outer, c, inner int) (int, error) {
	err := errors.Join(nnCount(op, "outer", outer, maxIndex), nnCount(op, "c", c, maxIndex), nnCount(op, "inner", inner, maxIndex))
	if err != nil {
		return 0, err
	}
	if n := float64(outer) * float64(c) * float64(inner); n > maxIndex {
		return 0, fmt.Errorf("cuda: %s: %d×%d×%d values are too many", op, outer, c, inner)
	}
	return outer * c * inner, nil
}

// AddBias adds b[c] to y[o, c, i] for y laid out as outer × c × inner: a
// convolution's bias with outer = N and inner = H·W, a linear layer's with
// outer = N and inner = 1.
func (d *Device) AddBias(y, b *Buffer, outer, c, inner int) error {
	const op = "AddBias"
	n, err := biasSizes(op, outer, c, inner)
	if err != nil {
		return err
	}
	if err := d.nnCheck(op, nnArg{"y", y, n}, nnArg{"b", b, c}); err != nil || n == 0 {
		return err
	}
	return d.launch1("nn_add_bias", d.mapGrid(n), y, b, int32(n), int32(c), int32(inner))
}

// SumBias sets db[c] = Σ_{o,i} dy[o, c, i], AddBias's gradient, or adds it
// into db when accumulate is set.
func (d *Device) SumBias(dy, db *Buffer, outer, c, inner int, accumulate bool) error {
	const op = "SumBias"
	n, err := biasSizes(op, outer, c, inner)
	if err != nil {
		return err
	}
	if err := d.nnCheck(op, nnArg{"dy", dy, n}, nnArg{"db", db, c}); err != nil || c == 0 {
		return err
	}
	sum := BNShape{outer, c, inner}
	return d.runNN(d.channelSumScratch(sum), func(p *Plan, scratch []*Buffer) error {
		return d.addChannelSum(p, "nn_chan_sum", sum, scratch, db, accumulate, dy)
	})
}

// CopyFromInt32 copies src into the start of the buffer (host to device),
// for integer data such as class labels.
func (b *Buffer) CopyFromInt32(src []int32) error {
	if len(src) == 0 {
		return nil
	}
	return b.upload(unsafe.Pointer(&src[0]), len(src), "int32s")
}
