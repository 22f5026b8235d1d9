package nn

import (
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// stateless supplies the Module methods of layers without parameters,
// which behave the same in training and evaluation.
type stateless struct{}

// Vars is empty: the layer has no state to save or train.
func (stateless) Vars() []Var { return nil }

// SetTraining has nothing to switch.
func (stateless) SetTraining(bool) {}

// ReLU is nn.ReLU as a Module.
type ReLU struct{ stateless }

// Forward returns max(x, 0).
func (ReLU) Forward(x *tensor.Tensor) *tensor.Tensor { return op.ReLU(x) }

// Sigmoid is nn.Sigmoid as a Module, the gate of SE and SRM.
type Sigmoid struct{ stateless }

// Forward returns 1/(1+exp(−x)).
func (Sigmoid) Forward(x *tensor.Tensor) *tensor.Tensor { return op.Sigmoid(x) }

// Identity passes its input through, standing in for a layer a variant
// leaves out (a shortcut without projection, a network without
// recalibration).
type Identity struct{ stateless }

// Forward returns x itself.
func (Identity) Forward(x *tensor.Tensor) *tensor.Tensor { return x }

// Flatten is nn.Flatten as a Module: (N, ...) → (N, rest).
type Flatten struct{ stateless }

// Forward flattens all but the batch dimension.
func (Flatten) Forward(x *tensor.Tensor) *tensor.Tensor { return op.Flatten(x) }

// MaxPool2d is nn.MaxPool2d with square windows and ceil_mode=false.
type MaxPool2d struct {
	stateless
	Kernel, Stride, Pad int
}

// NewMaxPool2d returns a max pool; unlike PyTorch, stride has no default.
func NewMaxPool2d(kernel, stride, pad int) *MaxPool2d {
	return &MaxPool2d{Kernel: kernel, Stride: stride, Pad: pad}
}

// Forward pools x, (N, C, H, W).
func (p *MaxPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return op.MaxPool2d(x, p.Kernel, p.Stride, p.Pad)
}

// AvgPool2d is nn.AvgPool2d with square windows, ceil_mode=false and
// count_include_pad=true.
type AvgPool2d struct {
	stateless
	Kernel, Stride, Pad int
}

// NewAvgPool2d returns an average pool; unlike PyTorch, stride has no
// default.
func NewAvgPool2d(kernel, stride, pad int) *AvgPool2d {
	return &AvgPool2d{Kernel: kernel, Stride: stride, Pad: pad}
}

// Forward pools x, (N, C, H, W).
func (p *AvgPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return op.AvgPool2d(x, p.Kernel, p.Stride, p.Pad)
}

// AdaptiveAvgPool2d is nn.AdaptiveAvgPool2d; (1, 1) is the global pool
// before a classifier.
type AdaptiveAvgPool2d struct {
	stateless
	OutH, OutW int
}

// NewAdaptiveAvgPool2d returns a pool to outH × outW.
func NewAdaptiveAvgPool2d(outH, outW int) *AdaptiveAvgPool2d {
	return &AdaptiveAvgPool2d{OutH: outH, OutW: outW}
}

// Forward pools x, (N, C, H, W), to (N, C, OutH, OutW).
func (p *AdaptiveAvgPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return op.AdaptiveAvgPool2d(x, p.OutH, p.OutW)
}
