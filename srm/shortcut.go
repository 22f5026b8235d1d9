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

func subsamplePad[T kern.Float](x *tensor.Tensor, stride, cout int) *tensor.Tensor {
	n, cin, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	oh, ow := (h-1)/stride+1, (w-1)/stride+1
	out := tensor.New(x.DType(), n, cout, oh, ow)
	xs, ys := kern.Vals[T](x), kern.Vals[T](out)
	// each visits the output positions that come from input channels,
	// calling f(output index, input index).
	each := func(f func(o, i int)) {
		parallel.For(n*cin, oh*ow, func(lo, hi int) {
			for pl := lo; pl < hi; pl++ {
				b, ch := pl/cin, pl%cin
				src, dst := pl*h*w, (b*cout+ch)*oh*ow
				for i := 0; i < oh; i++ {
					for j := 0; j < ow; j++ {
						f(dst+i*ow+j, src+i*stride*w+j*stride)
					}
				}
			}
		})
	}
	each(func(o, i int) { ys[o] = xs[i] })
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs, gx := kern.Vals[T](grad), kern.Vals[T](tensor.GradOf(x))
		each(func(o, i int) { gx[i] += gs[o] })
	}, x)
	return out
}
