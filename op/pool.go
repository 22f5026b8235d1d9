package op

import (
	"math"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/tensor"
)

// span is the input range [lo, hi) that one output index reads along one
// axis, and the count an average over it divides by (which exceeds hi−lo
// where the window overlaps padding that counts).
type span struct{ lo, hi, div int }

// strideSpans lays kernel-wide windows every stride along an axis of size in
// with pad on both sides, clipped to the input, as PyTorch's pools with
// ceil_mode=false; it panics on the arguments PyTorch rejects.
func strideSpans(op string, in, kernel, stride, pad int) []span {
	if kernel <= 0 || stride <= 0 || pad < 0 || pad > kernel/2 {
		tensor.Panicf("%s: kernel %d, stride %d, pad %d (pad must be at most half the kernel)", op, kernel, stride, pad)
	}
	if in+2*pad < kernel {
		tensor.Panicf("%s: kernel %d exceeds padded input size %d", op, kernel, in+2*pad)
	}
	spans := make([]span, (in+2*pad-kernel)/stride+1)
	for i := range spans {
		lo := i*stride - pad
		spans[i] = span{lo: max(lo, 0), hi: min(lo+kernel, in), div: kernel}
	}
	return spans
}

// adaptiveSpans splits an axis of size in into out overlapping bins from
// floor(i·in/out) to ceil((i+1)·in/out), PyTorch's adaptive pooling bins.
func adaptiveSpans(op string, in, out int) []span {
	if out <= 0 {
		tensor.Panicf("%s: output size %d", op, out)
	}
	spans := make([]span, out)
	for i := range spans {
		lo, hi := i*in/out, ((i+1)*in+out-1)/out
		spans[i] = span{lo: lo, hi: hi, div: hi - lo}
	}
	return spans
}

// planes checks that x is (N, C, H, W) and returns N·C, H and W.
func planes(op string, x *tensor.Tensor) (n, h, w int) {
	s := x.Shape()
	if len(s) != 4 {
		tensor.Panicf("%s: input %v is not (N, C, H, W)", op, s)
	}
	return s[0] * s[1], s[2], s[3]
}

// MaxPool2d is PyTorch's max_pool2d (padding counts as −∞).
func MaxPool2d(x *tensor.Tensor, kernel, stride, pad int) *tensor.Tensor {
	const op = "MaxPool2d"
	_, h, w := planes(op, x)
	rows, cols := strideSpans(op, h, kernel, stride, pad), strideSpans(op, w, kernel, stride, pad)
	if d := DeviceOf(op, x); d != nil {
		return maxPoolDevice(d, x, rows, cols)
	}
	if x.DType() == tensor.Float64 {
		return maxPool[float64](x, rows, cols)
	}
	return maxPool[float32](x, rows, cols)
}

func maxPool[T kern.Float](x *tensor.Tensor, rows, cols []span) *tensor.Tensor {
	np, h, w := planes("MaxPool2d", x)
	oh, ow := len(rows), len(cols)
	out := tensor.New(x.DType(), x.Dim(0), x.Dim(1), oh, ow)
	xs, ys := kern.Vals[T](x), kern.Vals[T](out)
	// Each output's argmax within its plane, kept only for the backward
	// pass; padding never wins because every window holds an input.
	var arg []int32
	if x.NeedsGrad() {
		arg = make([]int32, len(ys))
	}
	parallel.For(np, oh*ow*rows[0].div*cols[0].div, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			in := xs[p*h*w : (p+1)*h*w]
			o := p * oh * ow
			for _, r := range rows {
				for _, c := range cols {
					best, at := T(math.Inf(-1)), r.lo*w+c.lo
					for y := r.lo; y < r.hi; y++ {
						for i := y*w + c.lo; i < y*w+c.hi; i++ {
							// The first maximum wins and NaN beats
							// everything, as in PyTorch.
							if v := in[i]; v > best || v != v {
								best, at = v, i
							}
						}
					}
					ys[o] = best
					if arg != nil {
						arg[o] = int32(at)
					}
					o++
				}
			}
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs, gx := kern.Vals[T](grad), kern.Vals[T](tensor.GradOf(x))
		parallel.For(np, oh*ow, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				dst := gx[p*h*w : (p+1)*h*w]
				for o := p * oh * ow; o < (p+1)*oh*ow; o++ {
					dst[arg[o]] += gs[o]
				}
			}
		})
	}, x)
	return out
}

// AvgPool2d is PyTorch's avg_pool2d with count_include_pad=true.
func AvgPool2d(x *tensor.Tensor, kernel, stride, pad int) *tensor.Tensor {
	const op = "AvgPool2d"
	_, h, w := planes(op, x)
	return avgPool(x, strideSpans(op, h, kernel, stride, pad), strideSpans(op, w, kernel, stride, pad))
}

// AdaptiveAvgPool2d is PyTorch's adaptive_avg_pool2d to (outH, outW).
func AdaptiveAvgPool2d(x *tensor.Tensor, outH, outW int) *tensor.Tensor {
	const op = "AdaptiveAvgPool2d"
	_, h, w := planes(op, x)
	return avgPool(x, adaptiveSpans(op, h, outH), adaptiveSpans(op, w, outW))
}

// GlobalAvgPool averages each (n, c) plane: (N, C, H, W) → (N, C, 1, 1).
func GlobalAvgPool(x *tensor.Tensor) *tensor.Tensor { return AdaptiveAvgPool2d(x, 1, 1) }

func avgPool(x *tensor.Tensor, rows, cols []span) *tensor.Tensor {
	if d := DeviceOf("AvgPool", x); d != nil {
		return avgPoolDevice(d, x, rows, cols)
	}
	if x.DType() == tensor.Float64 {
		return avgPoolOf[float64](x, rows, cols)
	}
	if tensor.IsBlocked16(x) && len(rows) == 1 && len(cols) == 1 && rows[0].div*cols[0].div == x.Dim(2)*x.Dim(3) {
		return globalAvgPoolBlocked(x)
	}
	return avgPoolOf[float32](x, rows, cols)
}

// avgPoolOf averages x over the windows rows × cols of every plane.
func avgPoolOf[T kern.Float](x *tensor.Tensor, rows, cols []span) *tensor.Tensor {
	np, h, w := planes("avgPool", x)
	oh, ow := len(rows), len(cols)
	out := tensor.New(x.DType(), x.Dim(0), x.Dim(1), oh, ow)
	xs, ys := kern.Vals[T](x), kern.Vals[T](out)
	// Work per plane: every output reads its window, which overlap at most
	// about twice in each direction.
	cost := max(oh*ow, h*w)
	parallel.For(np, cost, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			in := xs[p*h*w : (p+1)*h*w]
			o := p * oh * ow
			for _, r := range rows {
				for _, c := range cols {
					var sum float64 // float64 even for float32 data: global pools sum whole planes
					if c.lo == 0 && c.hi == w {
						// Whole rows are one run (the whole plane for a
						// global pool, SE's squeeze): vector sums.
						sum, _ = simd.ShiftedSums(in[r.lo*w:r.hi*w], 0)
					} else {
						for y := r.lo; y < r.hi; y++ {
							for _, v := range in[y*w+c.lo : y*w+c.hi] {
								sum += float64(v)
							}
						}
					}
					ys[o] = T(sum / float64(r.div*c.div))
					o++
				}
			}
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs, gx := kern.Vals[T](grad), kern.Vals[T](tensor.GradOf(x))
		parallel.For(np, cost, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				dst := gx[p*h*w : (p+1)*h*w]
				o := p * oh * ow
				for _, r := range rows {
					for _, c := range cols {
						g := gs[o] / T(r.div*c.div)
						for y := r.lo; y < r.hi; y++ {
							row := dst[y*w+c.lo : y*w+c.hi]
							for i := range row {
								row[i] += g
							}
						}
						o++
					}
				}
			}
		})
	}, x)
	return out
}

// UpsampleNearest resizes (N, C, H, W) to (N, C, outH, outW) as PyTorch's
// interpolate(mode="nearest"): output row i reads input row
// min(floor(i·s), H−1) with s = H/outH rounded to float32 and the product
// taken in float32, exactly as PyTorch computes it, so that for a few sizes
// (22 rows from 26, say) a row reads one before floor(i·H/outH). Columns
// likewise.
func UpsampleNearest(x *tensor.Tensor, outH, outW int) *tensor.Tensor {
	const op = "UpsampleNearest"
	_, h, w := planes(op, x)
	if outH <= 0 || outW <= 0 {
		tensor.Panicf("%s: output size %dx%d", op, outH, outW)
	}
	rows, cols := nearestSources(h, outH), nearestSources(w, outW)
	if d := DeviceOf(op, x); d != nil {
		return upsampleDevice(d, x, rows, cols)
	}
	if x.DType() == tensor.Float64 {
		return upsample[float64](x, rows, cols)
	}
	return upsample[float32](x, rows, cols)
}

// nearestSources maps each of out indices to its source among in.
func nearestSources(in, out int) []int {
	src := make([]int, out)
	scale := float32(in) / float32(out)
	for i := range src {
		src[i] = min(int(float32(i)*scale), in-1)
	}
	return src
}

func upsample[T kern.Float](x *tensor.Tensor, rows, cols []int) *tensor.Tensor {
	np, h, w := planes("UpsampleNearest", x)
	oh, ow := len(rows), len(cols)
	out := tensor.New(x.DType(), x.Dim(0), x.Dim(1), oh, ow)
	xs, ys := kern.Vals[T](x), kern.Vals[T](out)
	parallel.For(np, oh*ow, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			in, dst := xs[p*h*w:(p+1)*h*w], ys[p*oh*ow:(p+1)*oh*ow]
			for i, r := range rows {
				for j, c := range cols {
					dst[i*ow+j] = in[r*w+c]
				}
			}
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs, gx := kern.Vals[T](grad), kern.Vals[T](tensor.GradOf(x))
		parallel.For(np, oh*ow, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				dst, g := gx[p*h*w:(p+1)*h*w], gs[p*oh*ow:(p+1)*oh*ow]
				for i, r := range rows {
					for j, c := range cols {
						dst[r*w+c] += g[i*ow+j]
					}
				}
			}
		})
	}, x)
	return out
}
