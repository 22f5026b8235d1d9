package cuda

import (
	"errors"
	"fmt"
	"math"
)

// The building blocks of SRM's general form (any set of style statistics,
// biased or unbiased variance) and of its CIFAR networks, for the model
// code's device path; srm.go fuses the official configuration instead.

// styleMask is the set of statistics as pool.cu reads it (1 avg, 2 std,
// 4 max, srm.Pooling's bits) and its size.
func styleMask(avg, std, max bool) (mask int32, k int) {
	for i, on := range []bool{avg, std, max} {
		if on {
			mask |= 1 << i
			k++
		}
	}
	return mask, k
}

// styleCall validates a StylePool or StylePoolBackward call and returns the
// kernel variant, its grid, the mask, the number of statistics and the
// variance divisor.
func styleCall(op string, planes, plane int, avg, std, max, biased bool) (variant string, grid int, mask int32, k, den int, err error) {
	if err = poolCheckDims(op, poolDim{"planes", planes}, poolDim{"plane", plane}); err != nil {
		return
	}
	mask, k = styleMask(avg, std, max)
	den = plane - 1
	if biased {
		den = plane
	}
	switch {
	case k == 0:
		err = fmt.Errorf("cuda: %s: no statistic selected", op)
	case std && den < 1:
		err = fmt.Errorf("cuda: %s: the unbiased standard deviation of a plane of %d values is undefined", op, plane)
	case plane <= poolWarpWindow:
		variant, grid = "warp", warpGrid(planes)
	default:
		variant, grid = "block", planes
	}
	return
}

// StylePool computes SRM's style statistics of each of the planes (of plane
// values) of x into t (planes×k), for the selected statistics in the order
// avg, std, max (k of them), as srm.StylePool: the mean, sqrt(variance +
// 1e-5) with the variance over plane values (biased) or plane−1, both in
// double, and the first of equal maxima (a NaN counts only as a plane's
// first value). One warp per plane up to 1024 values, one block beyond.
func (d *Device) StylePool(x, t *Buffer, planes, plane int, avg, std, max, biased bool) error {
	return d.runPlan(d.stylePoolPlan(x, t, planes, plane, avg, std, max, biased))
}

func (d *Device) stylePoolPlan(x, t *Buffer, planes, plane int, avg, std, max, biased bool) (*Plan, error) {
	const op = "StylePool"
	variant, grid, mask, k, den, err := styleCall(op, planes, plane, avg, std, max, biased)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(poolNeed(op, "x", x, planes*plane), poolNeed(op, "t", t, planes*k)); err != nil {
		return nil, err
	}
	p := &Plan{dev: d}
	if err := p.add(kernelRef{poolSource, "pool_style_" + variant}, grid, maxBlock, x, t,
		int32(planes), int32(plane), mask, int32(den)); err != nil {
		return nil, err
	}
	return p, nil
}

// StylePoolBackward computes the gradient of StylePool with respect to x
// from dt, into dx (or added to it when accumulate), recomputing the
// statistics from x: dx = dt_avg/L + dt_std·(x − mean)/(den·std), plus
// dt_max at the maximum.
func (d *Device) StylePoolBackward(x, dt, dx *Buffer, planes, plane int, avg, std, max, biased, accumulate bool) error {
	return d.runPlan(d.stylePoolBackwardPlan(x, dt, dx, planes, plane, avg, std, max, biased, accumulate))
}

func (d *Device) stylePoolBackwardPlan(x, dt, dx *Buffer, planes, plane int, avg, std, max, biased, accumulate bool) (*Plan, error) {
	const op = "StylePoolBackward"
	variant, grid, mask, k, den, err := styleCall(op, planes, plane, avg, std, max, biased)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(poolNeed(op, "x", x, planes*plane), poolNeed(op, "dt", dt, planes*k),
		poolNeed(op, "dx", dx, planes*plane)); err != nil {
		return nil, err
	}
	p := &Plan{dev: d}
	if err := p.add(kernelRef{poolSource, "pool_style_bwd_" + variant}, grid, maxBlock, x, dt, dx,
		int32(planes), int32(plane), mask, int32(den), poolFlag(accumulate)); err != nil {
		return nil, err
	}
	return p, nil
}

// cfcSizes validates the sizes of a CFC call; (n, c) indices are 32-bit in
// the kernels.
func cfcSizes(op string, n, c, k int) error {
	if err := poolCheckDims(op, poolDim{"n", n}, poolDim{"c", c}, poolDim{"k", k}); err != nil {
		return err
	}
	if n*c > math.MaxInt32 {
		return fmt.Errorf("cuda: %s: %d×%d×%d is too large", op, n, c, k)
	}
	return nil
}

// poolOptional is a buffer argument that may be nil, as the kernels take
// it: a null device pointer.
func poolOptional(b *Buffer) any {
	if b == nil {
		return uint64(0)
	}
	return b
}

// CFC is SRM's channel-wise fully connected layer, srm.CFC: z[n, c] =
// Σ_j w[c, j]·t[n, c, j] (+ b[c]) summed in double, for t n×c×k, w c×k, b c
// values or nil, z n×c. A thread per (n, c) for small k, a warp for large
// (GE-θ's gather, k = H·W).
func (d *Device) CFC(t, w, b, z *Buffer, n, c, k int) error {
	return d.runPlan(d.cfcPlan(t, w, b, z, n, c, k))
}

func (d *Device) cfcPlan(t, w, b, z *Buffer, n, c, k int) (*Plan, error) {
	const op = "CFC"
	if err := cfcSizes(op, n, c, k); err != nil {
		return nil, err
	}
	err := errors.Join(poolNeed(op, "t", t, n*c*k), poolNeed(op, "w", w, c*k), poolNeed(op, "z", z, n*c))
	if b != nil {
		err = errors.Join(err, poolNeed(op, "b", b, c))
	}
	if err != nil {
		return nil, err
	}
	kernel, grid := "pool_cfc_thread", poolBlocks(n*c)
	if k >= poolThreadWindow {
		kernel, grid = "pool_cfc_warp", warpGrid(n*c)
	}
	p := &Plan{dev: d}
	if err := p.add(kernelRef{poolSource, kernel}, grid, maxBlock, t, w, poolOptional(b), z,
		int32(c), int32(k), int64(n*c)); err != nil {
		return nil, err
	}
	return p, nil
}

// CFCBackward computes CFC's gradients from dz: dt[n, c, j] = dz[n, c]·w[c, j]
// (added to dt when accT), dw[c, j] = Σ_n dz[n, c]·t[n, c, j] and db[c] =
// Σ_n dz[n, c] (sums in double, added to dw and db when accParams). A nil
// dt, dw or db is not computed.
func (d *Device) CFCBackward(t, w, dz, dt, dw, db *Buffer, n, c, k int, accT, accParams bool) error {
	return d.runPlan(d.cfcBackwardPlan(t, w, dz, dt, dw, db, n, c, k, accT, accParams))
}

func (d *Device) cfcBackwardPlan(t, w, dz, dt, dw, db *Buffer, n, c, k int, accT, accParams bool) (*Plan, error) {
	const op = "CFCBackward"
	if err := cfcSizes(op, n, c, k); err != nil {
		return nil, err
	}
	err := errors.Join(poolNeed(op, "t", t, n*c*k), poolNeed(op, "w", w, c*k), poolNeed(op, "dz", dz, n*c))
	if dt != nil {
		err = errors.Join(err, poolNeed(op, "dt", dt, n*c*k))
	}
	if dw != nil {
		err = errors.Join(err, poolNeed(op, "dw", dw, c*k))
	}
	if db != nil {
		err = errors.Join(err, poolNeed(op, "db", db, c))
	}
	if err != nil {
		return nil, err
	}
	p := &Plan{dev: d}
	if dt != nil {
		err = p.add(kernelRef{poolSource, "pool_cfc_bwd_t"}, poolBlocks(n*c*k), maxBlock, w, dz, dt,
			int32(c), int32(k), int64(n*c*k), poolFlag(accT))
	}
	if dw != nil || db != nil {
		err = errors.Join(err, p.add(kernelRef{poolSource, "pool_cfc_bwd_params"}, poolBlocks(c*k+c), maxBlock,
			t, dz, poolOptional(dw), poolOptional(db), int32(n), int32(c), int32(k), poolFlag(accParams)))
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// shortcutSizes validates an option-A shortcut call and returns the input
// and output sizes.
func shortcutSizes(op string, n, c, h, w, stride, cout int) (in, out, oh, ow int, err error) {
	if err = poolCheckDims(op, poolDim{"n", n}, poolDim{"c", c}, poolDim{"h", h}, poolDim{"w", w},
		poolDim{"stride", stride}, poolDim{"cout", cout}); err != nil {
		return
	}
	if cout < c {
		err = fmt.Errorf("cuda: %s: %d output channels for %d input channels", op, cout, c)
		return
	}
	oh, ow = (h-1)/stride+1, (w-1)/stride+1
	area, err := poolArea(op, "input", h, w)
	if err != nil {
		return
	}
	if n*cout > math.MaxInt32 { // plane indices are 32-bit in the kernels
		err = fmt.Errorf("cuda: %s: %dx%dx%dx%d is too large", op, n, cout, h, w)
		return
	}
	return n * c * area, n * cout * oh * ow, oh, ow, nil
}

// SubsamplePad is the option-A shortcut of CIFAR ResNets (srm's shortcutA):
// x (n×c×h×w) subsampled with the stride, y[b, ch, i, j] = x[b, ch, i·stride,
// j·stride], then zero channels up to cout: y is n×cout×oh×ow with
// oh = (h−1)/stride+1 and ow likewise.
func (d *Device) SubsamplePad(x, y *Buffer, n, c, h, w, stride, cout int) error {
	return d.runPlan(d.subsamplePadPlan(x, y, n, c, h, w, stride, cout))
}

func (d *Device) subsamplePadPlan(x, y *Buffer, n, c, h, w, stride, cout int) (*Plan, error) {
	const op = "SubsamplePad"
	in, out, oh, ow, err := shortcutSizes(op, n, c, h, w, stride, cout)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(poolNeed(op, "x", x, in), poolNeed(op, "y", y, out)); err != nil {
		return nil, err
	}
	p := &Plan{dev: d}
	if err := p.add(kernelRef{poolSource, "pool_subsample_pad"}, poolBlocks(out), maxBlock, x, y,
		int32(c), int32(cout), int32(h), int32(w), int32(oh), int32(ow), int32(stride), int64(out)); err != nil {
		return nil, err
	}
	return p, nil
}

// SubsamplePadBackward computes the gradient of SubsamplePad with respect
// to x from dy, into dx (or added to it when accumulate): the sampled
// positions take their dy, the others zero; the padding channels' dy is
// dropped.
func (d *Device) SubsamplePadBackward(dy, dx *Buffer, n, c, h, w, stride, cout int, accumulate bool) error {
	return d.runPlan(d.subsamplePadBackwardPlan(dy, dx, n, c, h, w, stride, cout, accumulate))
}

func (d *Device) subsamplePadBackwardPlan(dy, dx *Buffer, n, c, h, w, stride, cout int, accumulate bool) (*Plan, error) {
	const op = "SubsamplePadBackward"
	in, out, oh, ow, err := shortcutSizes(op, n, c, h, w, stride, cout)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(poolNeed(op, "dy", dy, out), poolNeed(op, "dx", dx, in)); err != nil {
		return nil, err
	}
	p := &Plan{dev: d}
	if err := p.add(kernelRef{poolSource, "pool_subsample_pad_bwd"}, poolBlocks(in), maxBlock, dy, dx,
		int32(c), int32(cout), int32(h), int32(w), int32(oh), int32(ow), int32(stride), int64(in), poolFlag(accumulate)); err != nil {
		return nil, err
	}
	return p, nil
}
