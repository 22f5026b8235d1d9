package cuda

import (
	"errors"
	"fmt"
	"math"
)

const poolSource = "pool.cu"

// PoolSpan is the window of one output index along one axis: the input
// range [Lo, Hi) and the divisor of the average, which exceeds Hi−Lo where
// the window overlaps padding that counts (op/pool.go's span). The pooling
// calls take one table of spans for the output rows and one for the output
// columns, exactly as the CPU engine computes them, so that both engines
// pool over the same windows.
type PoolSpan struct{ Lo, Hi, Div int32 }

// Where a window holds fewer values than a warp, a thread computes the
// output alone; up to poolWarpWindow values, a warp shares it; beyond, a
// block (global pooling of 56×56 planes: 12 values per thread).
const (
	poolThreadWindow = 32
	poolWarpWindow   = 1024
)

// poolDim is a size argument of a pooling call, named for error messages.
type poolDim struct {
	name string
	v    int
}

// poolCheckDims rejects sizes below one or beyond the kernels' 32-bit int
// parameters.
func poolCheckDims(op string, dims ...poolDim) error {
	for _, d := range dims {
		if d.v < 1 || d.v > math.MaxInt32 {
			return fmt.Errorf("cuda: %s: %s = %d", op, d.name, d.v)
		}
	}
	return nil
}

// poolNeed checks that buffer b, the argument called name, holds n
// float32 (or int32) values.
func poolNeed(op, name string, b *Buffer, n int) error {
	if b == nil {
		return fmt.Errorf("cuda: %s: %s is nil", op, name)
	}
	if b.Len() < n {
		return fmt.Errorf("cuda: %s: %s holds %d values, needs %d", op, name, b.Len(), n)
	}
	return nil
}

// poolArea is h·w, refused beyond what an int32 index within a plane
// reaches.
func poolArea(op, what string, h, w int) (int, error) {
	if h*w > math.MaxInt32 {
		return 0, fmt.Errorf("cuda: %s: %s planes of %dx%d are too large", op, what, h, w)
	}
	return h * w, nil
}

// poolCheckSpans validates the spans of one axis of size n: non-empty table,
// windows within the axis (non-empty ones where nonEmpty), positive
// divisors. It returns the widest window and the largest divisor.
func poolCheckSpans(op, name string, spans []PoolSpan, n int, nonEmpty bool) (width, div int, err error) {
	if len(spans) == 0 || len(spans) > math.MaxInt32 {
		return 0, 0, fmt.Errorf("cuda: %s: %d %s", op, len(spans), name)
	}
	for i, s := range spans {
		if s.Lo < 0 || s.Hi > int32(min(n, math.MaxInt32)) || s.Lo > s.Hi || (nonEmpty && s.Lo == s.Hi) || s.Div < 1 {
			return 0, 0, fmt.Errorf("cuda: %s: %s[%d] = %+v for an axis of %d", op, name, i, s, n)
		}
		width, div = max(width, int(s.Hi-s.Lo)), max(div, int(s.Div))
	}
	return width, div, nil
}

// poolSizes validates a pooling call's sizes and span tables and returns
// the input and output plane sizes and the largest window's size.
func poolSizes(op string, planes, h, w int, rows, cols []PoolSpan, nonEmpty bool) (in, out, window int, err error) {
	if err := poolCheckDims(op, poolDim{"planes", planes}, poolDim{"h", h}, poolDim{"w", w}); err != nil {
		return 0, 0, 0, err
	}
	rw, rd, err := poolCheckSpans(op, "rows", rows, h, nonEmpty)
	if err != nil {
		return 0, 0, 0, err
	}
	cw, cd, err := poolCheckSpans(op, "cols", cols, w, nonEmpty)
	if err != nil {
		return 0, 0, 0, err
	}
	if rd*cd > math.MaxInt32 {
		return 0, 0, 0, fmt.Errorf("cuda: %s: divisors %d×%d overflow", op, rd, cd)
	}
	if in, err = poolArea(op, "input", h, w); err != nil {
		return 0, 0, 0, err
	}
	if out, err = poolArea(op, "output", len(rows), len(cols)); err != nil {
		return 0, 0, 0, err
	}
	return in, out, rw * cw, nil
}

// poolBlocks is the number of 256-thread blocks for n threads.
func poolBlocks(n int) int { return (n + maxBlock - 1) / maxBlock }

// AvgPool averages x (planes×h×w) over the windows rows × cols into y
// (planes×len(rows)×len(cols)): the sum of each window, in double, divided
// by the product of the two divisors, as op/pool.go's average pools
// (AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool) compute it.
func (d *Device) AvgPool(x, y *Buffer, planes, h, w int, rows, cols []PoolSpan) error {
	return d.runPlan(d.avgPoolPlan(x, y, planes, h, w, rows, cols))
}

func (d *Device) avgPoolPlan(x, y *Buffer, planes, h, w int, rows, cols []PoolSpan) (*Plan, error) {
	const op = "AvgPool"
	in, out, window, err := poolSizes(op, planes, h, w, rows, cols, false)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(poolNeed(op, "x", x, planes*in), poolNeed(op, "y", y, planes*out)); err != nil {
		return nil, err
	}
	tables, err := d.indexTables(spansReq(rows), spansReq(cols))
	if err != nil {
		return nil, err
	}
	total := planes * out
	var kernel string
	var grid int
	switch {
	case window < poolThreadWindow:
		kernel, grid = "pool_avg_thread", poolBlocks(total)
	case window <= poolWarpWindow:
		kernel, grid = "pool_avg_warp", warpGrid(total)
	default:
		kernel, grid = "pool_avg_block", total
	}
	p := &Plan{dev: d}
	if err := p.add(kernelRef{poolSource, kernel}, grid, maxBlock, x, y, tables[0], tables[1],
		int32(h), int32(w), int32(len(rows)), int32(len(cols)), int64(total)); err != nil {
		return nil, err
	}
	return p, nil
}

// AvgPoolBackward computes the gradient of AvgPool with respect to x from
// dy, into dx (or added to it when accumulate): each input value gathers
// dy/(div_row·div_col) from the outputs whose windows hold it, without
// atomics.
func (d *Device) AvgPoolBackward(dy, dx *Buffer, planes, h, w int, rows, cols []PoolSpan, accumulate bool) error {
	return d.runPlan(d.avgPoolBackwardPlan(dy, dx, planes, h, w, rows, cols, accumulate))
}

func (d *Device) avgPoolBackwardPlan(dy, dx *Buffer, planes, h, w int, rows, cols []PoolSpan, accumulate bool) (*Plan, error) {
	return d.gatherPlan("AvgPoolBackward", dy, dx, planes, h, w, rows, cols, accumulate)
}

// gatherPlan plans average pooling's backward pass for op: the gather
// through the inverse tables, or, for global pooling, the broadcast of each
// plane's dy.
func (d *Device) gatherPlan(op string, dy, dx *Buffer, planes, h, w int, rows, cols []PoolSpan, accumulate bool) (*Plan, error) {
	in, out, _, err := poolSizes(op, planes, h, w, rows, cols, false)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(poolNeed(op, "dy", dy, planes*out), poolNeed(op, "dx", dx, planes*in)); err != nil {
		return nil, err
	}
	total := planes * in
	p := &Plan{dev: d}
	if len(rows) == 1 && len(cols) == 1 && rows[0].Lo == 0 && int(rows[0].Hi) == h && cols[0].Lo == 0 && int(cols[0].Hi) == w {
		if err := p.add(kernelRef{poolSource, "pool_avg_bwd_global"}, poolBlocks((total+3)/4), maxBlock, dy, dx,
			float32(rows[0].Div*cols[0].Div), int32(in), int64(total), poolFlag(accumulate)); err != nil {
			return nil, err
		}
		return p, nil
	}
	tables, err := d.indexTables(spansReq(rows), spansReq(cols), inverseReq(rows, h), inverseReq(cols, w))
	if err != nil {
		return nil, err
	}
	if err := p.add(kernelRef{poolSource, "pool_avg_bwd"}, poolBlocks(total), maxBlock, dy, dx,
		tables[0], tables[1], tables[2], tables[3], int32(h), int32(w), int32(len(rows)), int32(len(cols)),
		int64(total), poolFlag(accumulate)); err != nil {
		return nil, err
	}
	return p, nil
}

// MaxPool takes the maximum of x (planes×h×w) over the windows rows × cols
// into y (planes×len(rows)×len(cols)), and into argmax the int32 index
// within its plane of the value each output took, for MaxPoolBackward.
// Ties go as in op/pool.go (and PyTorch): the first maximum in row-major
// order wins, and NaN beats everything. Every window must hold a value.
func (d *Device) MaxPool(x, y, argmax *Buffer, planes, h, w int, rows, cols []PoolSpan) error {
	return d.runPlan(d.maxPoolPlan(x, y, argmax, planes, h, w, rows, cols))
}

func (d *Device) maxPoolPlan(x, y, argmax *Buffer, planes, h, w int, rows, cols []PoolSpan) (*Plan, error) {
	const op = "MaxPool"
	in, out, _, err := poolSizes(op, planes, h, w, rows, cols, true)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(poolNeed(op, "x", x, planes*in), poolNeed(op, "y", y, planes*out),
		poolNeed(op, "argmax", argmax, planes*out)); err != nil {
		return nil, err
	}
	tables, err := d.indexTables(spansReq(rows), spansReq(cols))
	if err != nil {
		return nil, err
	}
	total := planes * out
	p := &Plan{dev: d}
	if err := p.add(kernelRef{poolSource, "pool_max"}, poolBlocks(total), maxBlock, x, y, argmax, tables[0], tables[1],
		int32(h), int32(w), int32(len(rows)), int32(len(cols)), int64(total)); err != nil {
		return nil, err
	}
	return p, nil
}

// MaxPoolBackward adds each dy (planes×outH×outW) to dx (planes×h×w) at the
// index MaxPool recorded in argmax, into a zeroed dx or, when accumulate,
// onto its contents. Overlapping windows can send several outputs to one
// input, so the adds are atomic: the order of those few adds, and so the
// last bit of such sums, may vary between runs.
func (d *Device) MaxPoolBackward(dy, argmax, dx *Buffer, planes, h, w, outH, outW int, accumulate bool) error {
	return d.runPlan(d.maxPoolBackwardPlan(dy, argmax, dx, planes, h, w, outH, outW, accumulate))
}

func (d *Device) maxPoolBackwardPlan(dy, argmax, dx *Buffer, planes, h, w, outH, outW int, accumulate bool) (*Plan, error) {
	const op = "MaxPoolBackward"
	if err := poolCheckDims(op, poolDim{"planes", planes}, poolDim{"h", h}, poolDim{"w", w}, poolDim{"outH", outH}, poolDim{"outW", outW}); err != nil {
		return nil, err
	}
	in, err := poolArea(op, "input", h, w)
	if err != nil {
		return nil, err
	}
	out, err := poolArea(op, "output", outH, outW)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(poolNeed(op, "dy", dy, planes*out), poolNeed(op, "argmax", argmax, planes*out),
		poolNeed(op, "dx", dx, planes*in)); err != nil {
		return nil, err
	}
	p := &Plan{dev: d}
	if !accumulate {
		if err := p.add(kernelRef{poolSource, "pool_zero"}, poolBlocks(planes*in), maxBlock, dx, int64(planes*in)); err != nil {
			return nil, err
		}
	}
	if err := p.add(kernelRef{poolSource, "pool_max_bwd"}, poolBlocks(planes*out), maxBlock, dy, argmax, dx,
		int32(in), int32(out), int64(planes*out)); err != nil {
		return nil, err
	}
	return p, nil
}

// poolCheckSources validates an upsampling source table for an axis of size n.
func poolCheckSources(op, name string, src []int32, n int) error {
	if len(src) == 0 {
		return fmt.Errorf("cuda: %s: no %s", op, name)
	}
	for i, s := range src {
		if s < 0 || int(s) >= n {
			return fmt.Errorf("cuda: %s: %s[%d] = %d for an axis of %d", op, name, i, s, n)
		}
	}
	return nil
}

// Upsample resizes x (planes×h×w) by nearest neighbour into y
// (planes×len(rowSrc)×len(colSrc)): y[p, i, j] = x[p, rowSrc[i], colSrc[j]],
// with the source tables op/pool.go's UpsampleNearest computes.
func (d *Device) Upsample(x, y *Buffer, planes, h, w int, rowSrc, colSrc []int32) error {
	return d.runPlan(d.upsamplePlan(x, y, planes, h, w, rowSrc, colSrc))
}

func (d *Device) upsamplePlan(x, y *Buffer, planes, h, w int, rowSrc, colSrc []int32) (*Plan, error) {
	const op = "Upsample"
	if err := errors.Join(poolCheckSources(op, "rowSrc", rowSrc, h), poolCheckSources(op, "colSrc", colSrc, w)); err != nil {
		return nil, err
	}
	in, out, _, err := poolSizes(op, planes, h, w, unitSpans(rowSrc), unitSpans(colSrc), true)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(poolNeed(op, "x", x, planes*in), poolNeed(op, "y", y, planes*out)); err != nil {
		return nil, err
	}
	tables, err := d.indexTables(sourceReq(rowSrc), sourceReq(colSrc))
	if err != nil {
		return nil, err
	}
	total := planes * out
	p := &Plan{dev: d}
	if err := p.add(kernelRef{poolSource, "pool_upsample"}, poolBlocks(total), maxBlock, x, y, tables[0], tables[1],
		int32(h), int32(w), int32(len(rowSrc)), int32(len(colSrc)), int64(total)); err != nil {
		return nil, err
	}
	return p, nil
}

// UpsampleBackward computes the gradient of Upsample with respect to x from
// dy, into dx (or added to it when accumulate). Nearest upsampling is
// average pooling over one-value windows with divisor 1, so it is that
// pooling's gather.
func (d *Device) UpsampleBackward(dy, dx *Buffer, planes, h, w int, rowSrc, colSrc []int32, accumulate bool) error {
	return d.runPlan(d.upsampleBackwardPlan(dy, dx, planes, h, w, rowSrc, colSrc, accumulate))
}

func (d *Device) upsampleBackwardPlan(dy, dx *Buffer, planes, h, w int, rowSrc, colSrc []int32, accumulate bool) (*Plan, error) {
	const op = "UpsampleBackward"
	if err := errors.Join(poolCheckSources(op, "rowSrc", rowSrc, h), poolCheckSources(op, "colSrc", colSrc, w)); err != nil {
		return nil, err
	}
	return d.gatherPlan(op, dy, dx, planes, h, w, unitSpans(rowSrc), unitSpans(colSrc), accumulate)
}

// unitSpans turns upsampling sources into one-value windows.
func unitSpans(src []int32) []PoolSpan {
	s := make([]PoolSpan, len(src))
	for i, v := range src {
		s[i] = PoolSpan{Lo: v, Hi: v + 1, Div: 1}
	}
	return s
}

// runPlan runs the plan a planning method returned, or returns its error.
// Every exported call here is one such plan (the plan alone serves timing).
func (d *Device) runPlan(p *Plan, err error) error {
	if err != nil {
		return err
	}
	return d.Run(p)
}

// poolFlag is a bool as the kernels take it.
func poolFlag(b bool) int32 {
	if b {
		return 1
	}
	return 0
}
