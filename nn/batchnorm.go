package nn

import (
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// BatchNorm2d is PyTorch's nn.BatchNorm2d with affine parameters and
// running statistics. It also accepts (N, C) input, as BatchNorm1d would,
// for recalibration branches that have pooled their maps away.
type BatchNorm2d struct {
	Weight, Bias            *tensor.Tensor // (C), trained; start at 1 and 0
	RunningMean, RunningVar *tensor.Tensor // (C), updated by training forwards
	// NumBatchesTracked counts training forwards, a scalar kept for
	// state_dict compatibility; Momentum does not depend on it.
	NumBatchesTracked *tensor.Tensor
	// Momentum weighs the batch in running = (1−Momentum)·running +
	// Momentum·batch, PyTorch's convention (the opposite of Keras's); Eps
	// keeps the normalisation finite for constant channels.
	Momentum, Eps float64
	// Training selects batch statistics (and running-stat updates) over
	// the running statistics.
	Training bool
	// NoDecay exempts Weight and Bias from weight decay, as the official
	// SRM code does for the BatchNorm inside its recalibration unit.
	NoDecay bool
}

// NewBatchNorm2d returns a BatchNorm2d over c channels with PyTorch's
// defaults (momentum 0.1, eps 1e-5), in training mode and float32.
func NewBatchNorm2d(c int) *BatchNorm2d {
	b := &BatchNorm2d{
		Weight:            tensor.New(tensor.Float32, c).SetRequiresGrad(true),
		Bias:              tensor.New(tensor.Float32, c).SetRequiresGrad(true),
		RunningMean:       tensor.New(tensor.Float32, c),
		RunningVar:        tensor.New(tensor.Float32, c),
		NumBatchesTracked: tensor.Scalar(tensor.Float32, 0),
		Momentum:          0.1,
		Eps:               1e-5,
		Training:          true,
	}
	b.Weight.Fill(1)
	b.RunningVar.Fill(1)
	return b
}

// Forward normalises x, (N, C, H, W) or (N, C), updating the running
// statistics when training.
func (b *BatchNorm2d) Forward(x *tensor.Tensor) *tensor.Tensor { return b.forward(op.BatchNorm, x) }

// ForwardReLU is ReLU(Forward(x)) as one fused operation, op.BatchNormReLU.
func (b *BatchNorm2d) ForwardReLU(x *tensor.Tensor) *tensor.Tensor {
	return b.forward(op.BatchNormReLU, x)
}

func (b *BatchNorm2d) forward(norm func(x, gamma, beta, runMean, runVar *tensor.Tensor, training bool, momentum, eps float64) *tensor.Tensor, x *tensor.Tensor) *tensor.Tensor {
	y := norm(x, b.Weight, b.Bias, b.RunningMean, b.RunningVar, b.Training, b.Momentum, b.Eps)
	if b.Training {
		b.CountBatch()
	}
	return y
}

// CountBatch adds one to NumBatchesTracked, for fused operations that
// normalise with b's parameters in training mode without calling Forward.
func (b *BatchNorm2d) CountBatch() {
	b.NumBatchesTracked.Set(0, b.NumBatchesTracked.Item()+1)
}

// Vars lists weight, bias, running_mean, running_var and
// num_batches_tracked, PyTorch's state_dict order.
func (b *BatchNorm2d) Vars() []Var {
	return []Var{
		{Name: "weight", Value: b.Weight, NoDecay: b.NoDecay},
		{Name: "bias", Value: b.Bias, NoDecay: b.NoDecay},
		{Name: "running_mean", Value: b.RunningMean, Buffer: true},
		{Name: "running_var", Value: b.RunningVar, Buffer: true},
		{Name: "num_batches_tracked", Value: b.NumBatchesTracked, Buffer: true, Host: true},
	}
}

// SetTraining switches between batch and running statistics.
func (b *BatchNorm2d) SetTraining(on bool) { b.Training = on }

// ConvBN is b(c(x)), then ReLU when relu is set: a convolution and the
// BatchNorm after it, the unit ResNets repeat. In evaluation mode, for a
// bias-free convolution, it is op.ConvBNEval, the BatchNorm folded into the
// convolution; in training the two run as Forward and ForwardReLU do.
func ConvBN(c *Conv2d, b *BatchNorm2d, x *tensor.Tensor, relu bool) *tensor.Tensor {
	if !b.Training && c.Bias == nil {
		return op.ConvBNEval(x, c.Weight, b.Weight, b.Bias, b.RunningMean, b.RunningVar, b.Eps, c.Stride, c.Pad, c.Groups, relu)
	}
	if relu {
		return b.ForwardReLU(c.Forward(x))
	}
	return b.Forward(c.Forward(x))
}

// ConvBNAddReLU is ReLU(b(c(x)) + short), the end of a residual block
// without recalibration: in training one BatchNorm pass that also adds the
// shortcut (op.BatchNormAddReLU), in evaluation the folded convolution of
// ConvBN and the addition.
func ConvBNAddReLU(c *Conv2d, b *BatchNorm2d, x, short *tensor.Tensor) *tensor.Tensor {
	if !b.Training {
		return op.AddReLU(ConvBN(c, b, x, false), short)
	}
	y := op.BatchNormAddReLU(c.Forward(x), b.Weight, b.Bias, b.RunningMean, b.RunningVar, short, true, b.Momentum, b.Eps)
	b.CountBatch()
	return y
}
