package srm

import (
	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// shortcutA is He et al.'s parameter-free CIFAR shortcut ("option A"): the
// identity subsampled with the block's stride, its channels followed by
// zero channels up to the branch's width. The identity channels come first
// as in the authors' Torch code (fb.resnet.torch); the popular PyTorch port
// (akamaster) pads both sides instead, which trains the same.
type shortcutA struct{ stride, out int }

func (s shortcutA) Forward(x *tensor.Tensor) *tensor.Tensor {
	if x.Rank() != 4 || x.Dim(1) > s.out {
		tensor.Panicf("shortcut A: input %v for %d output channels", x.Shape(), s.out)
	}
	if d := op.DeviceOf("shortcut A", x); d != nil {
		return subsamplePadDevice(d, x, s.stride, s.out)
	}
	if x.DType() == tensor.Float64 {
		return subsamplePad[float64](x, s.stride, s.out)
	}
	return subsamplePad[float32](x, s.stride, s.out)
}

func (shortcutA) Vars() []nn.Var   { return nil }
func (shortcutA) SetTraining(bool) {}

// subsamplePad computes shortcut A. A map in the blocked layout (see
// tensor.Blocked16) stays in it: its channels, and the zero channels after
// them, fill whole blocks of 16, so each position's 16 values move as one.
func subsamplePad[T kern.Float](x *tensor.Tensor, stride, cout int) *tensor.Tensor {
	n, cin, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	blocked := tensor.IsBlocked16(x) && cout%16 == 0
	// each visits the output positions that come from input channels,
	// calling f(output index, input index) for runs of v values: one
	// channel's value (NCHW) or a block's 16.
	each := func(v int, f func(o, i int)) {
		parallel.For(n*cin/v, oh*ow*v, func(lo, hi int) {
			for pl := lo; pl < hi; pl++ {
				b, ch := pl/(cin/v), pl%(cin/v)
				src, dst := pl*h*w*v, (b*cout/v+ch)*oh*ow*v
				for i := 0; i < oh; i++ {
					for j := 0; j < ow; j++ {
						f(dst+(i*ow+j)*v, src+(i*stride*w+j*stride)*v)
					}
				}
			}
		})
	}
	if blocked {
		out := tensor.EmptyBlocked16(n, cout, oh, ow)
		xs, ys := blockedVals[T](x), blockedVals[T](out)
		each(16, func(o, i int) { copy(ys[o:o+16], xs[i:i+16]) })
		// The channels past x's are zeros, whole runs of them.
		rs := tensor.RunsOf(out)
		for r := range rs.Count() {
			if r%rs.Blocks() >= cin/16 {
				clear(rs.Run(f32s(ys), r))
			}
		}
		tensor.Record(out, func(grad *tensor.Tensor) {
			gx, first, done := tensor.GradBlocked16(x)
			gs := tensor.Blocked16(grad)
			if first {
				clear(gx)
			}
			each(16, func(o, i int) {
				for k := range 16 {
					gx[i+k] += gs[o+k]
				}
			})
			done()
		}, x)
		return out
	}
	out := tensor.New(x.DType(), n, cout, oh, ow)
	xs, ys := kern.Vals[T](x), kern.Vals[T](out)
	each(1, func(o, i int) { ys[o] = xs[i] })
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs, gx := kern.Vals[T](grad), kern.Vals[T](tensor.GradOf(x))
		each(1, func(o, i int) { gx[i] += gs[o] })
	}, x)
	return out
}
