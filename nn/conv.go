package nn

import (
	"math"
	"math/rand/v2"

	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// Conv2d is PyTorch's nn.Conv2d: a 2-D convolution with a weight of shape
// (Out, In/Groups, KernelH, KernelW) and an optional bias of shape (Out).
type Conv2d struct {
	Weight *tensor.Tensor
	Bias   *tensor.Tensor // nil for the bias-free convolutions that precede a BatchNorm
	// The geometry is kept beside the weight so that code which does not
	// run the layer (a model-size counter, another backend) can read it.
	In, Out, KernelH, KernelW, Stride, Pad, Groups int
}

// NewConv2d returns a Conv2d with a square kernel, initialised as the
// official ResNet code does: weight normal with mean 0 and standard
// deviation √(2/(kernel²·out)) (He et al.'s fan-out rule), bias zero.
func NewConv2d(r *rand.Rand, in, out, kernel, stride, pad, groups int, bias bool) *Conv2d {
	return NewConv2dKernel(r, in, out, kernel, kernel, stride, pad, groups, bias)
}

// NewConv2dKernel is NewConv2d for a kernelH×kernelW kernel (the ResNet
// initialisation's fan is then kernelH·kernelW·out).
func NewConv2dKernel(r *rand.Rand, in, out, kernelH, kernelW, stride, pad, groups int, bias bool) *Conv2d {
	if groups < 1 || in%groups != 0 || out%groups != 0 {
		tensor.Panicf("NewConv2d: %d groups for %d input and %d output channels", groups, in, out)
	}
	c := &Conv2d{
		Weight: tensor.Zeros(out, in/groups, kernelH, kernelW).SetRequiresGrad(true),
		In:     in, Out: out, KernelH: kernelH, KernelW: kernelW, Stride: stride, Pad: pad, Groups: groups,
	}
	c.Weight.FillNormal(r, 0, math.Sqrt(2/float64(kernelH*kernelW*out)))
	if bias {
		c.Bias = tensor.Zeros(out).SetRequiresGrad(true)
	}
	return c
}

// InitPyTorchDefault redraws c's parameters as PyTorch's Conv2d
// constructor does (kaiming_uniform with a=√5, which comes to
// U(−1/√fan_in, 1/√fan_in), and the bias from the same range), for the
// layers, such as those of SE and SRM units, that the official code leaves
// at PyTorch's default. It returns c.
func InitPyTorchDefault(r *rand.Rand, c *Conv2d) *Conv2d {
	fillFanIn(r, c.Weight, c.Bias, c.In/c.Groups*c.KernelH*c.KernelW)
	return c
}

// fillFanIn draws w and b (when not nil) from U(−1/√fanIn, 1/√fanIn),
// PyTorch's default for convolution and linear layers.
func fillFanIn(r *rand.Rand, w, b *tensor.Tensor, fanIn int) {
	bound := 1 / math.Sqrt(float64(fanIn))
	w.FillUniform(r, -bound, bound)
	if b != nil {
		b.FillUniform(r, -bound, bound)
	}
}

// Forward convolves x, (N, In, H, W).
func (c *Conv2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return op.Conv2d(x, c.Weight, c.Bias, c.Stride, c.Pad, c.Groups)
}

// Vars lists weight and, when present, bias.
func (c *Conv2d) Vars() []Var { return weightBias(c.Weight, c.Bias) }

// SetTraining has nothing to switch: a convolution behaves the same in
// training and evaluation.
func (c *Conv2d) SetTraining(bool) {}

// weightBias is the state of a layer with a weight and an optional bias.
func weightBias(w, b *tensor.Tensor) []Var {
	vs := []Var{{Name: "weight", Value: w}}
	if b != nil {
		vs = append(vs, Var{Name: "bias", Value: b})
	}
	return vs
}
