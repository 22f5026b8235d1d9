package srm

import (
	"math/rand/v2"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// SE is the Squeeze-and-Excitation module as the SRM paper compares it:
// global average pooling, Linear(C, C/r) → ReLU → Linear(C/r, C) with
// biases, sigmoid gates. C/r is kept at least 1 (the paper's form; timm
// keeps at least 8), so CIFAR's 16-channel stages get a one-unit bottleneck.
type SE struct {
	gate
	// FC is the bottleneck, under the key "fc".
	FC nn.Module
}

func newSE(s Spec, c int, r *rand.Rand) *SE {
	return &SE{FC: linearBottleneck(r, c, s.hidden(c), c)}
}

// Forward gates x, (N, C, H, W), by its pooled channel means.
func (m *SE) Forward(x *tensor.Tensor) *tensor.Tensor {
	mustFit(m, x)
	if d := op.DeviceOf("SE", x); d != nil {
		if out, ok := m.forwardFused(d, x); ok {
			return out
		}
	}
	return m.scale(x, m.gatesOf(x))
}

func (m *SE) channelGates(x *tensor.Tensor) (*tensor.Tensor, bool) {
	if op.DeviceOf("SE", x) != nil {
		return nil, false
	}
	mustFit(m, x)
	return m.keep(m.gatesOf(x)), true
}

// gatesOf computes the gates: average pooling, bottleneck, sigmoid.
func (m *SE) gatesOf(x *tensor.Tensor) *tensor.Tensor {
	z := m.FC.Forward(op.Flatten(op.GlobalAvgPool(x)))
	return op.Sigmoid(op.Reshape(z, x.Dim(0), x.Dim(1), 1, 1))
}

func (m *SE) trace(in dims) (dims, float64, error) {
	_, f, err := trace(m.FC, dims{in.c, 1, 1})
	return in, 2*in.plane() + f, err // pooling, gating, bottleneck
}

// Vars lists "fc.0.weight", "fc.0.bias", "fc.2.weight" and "fc.2.bias".
func (m *SE) Vars() []nn.Var { return nn.Prefixed("fc", m.FC.Vars()) }

// SetTraining does nothing: SE has no BatchNorm.
func (m *SE) SetTraining(bool) {}
