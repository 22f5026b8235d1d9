package nn

import (
	"math/rand/v2"

	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// Linear is PyTorch's nn.Linear: y = x·Weightᵀ + Bias with Weight of shape
// (Out, In) and an optional Bias of shape (Out).
type Linear struct {
	Weight  *tensor.Tensor
	Bias    *tensor.Tensor // nil when the layer has none
	In, Out int
}

// NewLinear returns a Linear initialised as PyTorch's constructor does,
// weight and bias ~ U(−1/√in, 1/√in): the official ResNet initialisation
// redraws only convolutions and BatchNorms and leaves linear layers at this
// default.
func NewLinear(r *rand.Rand, in, out int, bias bool) *Linear {
	l := &Linear{Weight: tensor.Zeros(out, in).SetRequiresGrad(true), In: in, Out: out}
	if bias {
		l.Bias = tensor.Zeros(out).SetRequiresGrad(true)
	}
	fillFanIn(r, l.Weight, l.Bias, in)
	return l
}

// Forward maps x, (N, In), to (N, Out).
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor { return op.Linear(x, l.Weight, l.Bias) }

// Vars lists weight and, when present, bias.
func (l *Linear) Vars() []Var { return weightBias(l.Weight, l.Bias) }

// SetTraining has nothing to switch: a linear layer behaves the same in
// training and evaluation.
func (l *Linear) SetTraining(bool) {}
