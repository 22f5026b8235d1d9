package srm

import (
	"fmt"
	"math/rand/v2"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// SRM is the Style-based Recalibration Module (Lee, Kim and Nam, ICCV
// 2019): style pooling summarises each channel by its mean and standard
// deviation, style integration weighs them per channel (CFC), normalises
// the result over the batch (BN) and gates the channel with its sigmoid.
//
// The default follows the official code; Spec's options give the paper's
// ablations: other pooling sets, the biased variance of the paper's
// equation, and an MLP in place of the CFC. That MLP is SE's bottleneck
// applied to the flattened (C·k) style features (Linear(k·C, C/r) → ReLU →
// Linear(C/r, C), with biases) followed by the same BN, which is how the
// paper describes replacing CFC by "a multi-layer perceptron as in SE"; the
// official code has no MLP variant.
type SRM struct {
	gate
	Pooling Pooling
	Biased  bool
	// CFC is the (C, k) channel-wise weight, k = Pooling.Len(); nil with MLP.
	CFC *tensor.Tensor
	// MLP replaces the CFC in the ablation, under the key "fc"; nil
	// otherwise.
	MLP nn.Module
	BN  *nn.BatchNorm2d
}

func newSRM(s Spec, c int, r *rand.Rand) *SRM {
	m := &SRM{Pooling: s.Pooling, Biased: s.Biased, BN: nn.NewBatchNorm2d(c)}
	m.BN.NoDecay = true
	if s.MLP {
		m.MLP = linearBottleneck(r, c*s.Pooling.Len(), s.hidden(c), c)
	} else {
		// Zero, as in the official code: every gate starts at sigmoid(BN(0)) = 0.5.
		m.CFC = tensor.New(tensor.Float32, c, s.Pooling.Len()).SetRequiresGrad(true)
	}
	return m
}

// Forward gates x, (N, C, H, W), by its channels' style; it panics with a
// *tensor.ShapeError on a 1x1 map when the variance is unbiased.
func (m *SRM) Forward(x *tensor.Tensor) *tensor.Tensor {
	mustFit(m, x)
	if d := op.DeviceOf("SRM", x, m.CFC); d != nil && m.fused() {
		return m.forwardFused(d, x)
	}
	return m.scale(x, m.gatesOf(x))
}

func (m *SRM) channelGates(x *tensor.Tensor) (*tensor.Tensor, bool) {
	if op.DeviceOf("SRM", x, m.CFC) != nil && m.fused() {
		return nil, false
	}
	mustFit(m, x)
	return m.keep(m.gatesOf(x)), true
}

// gatesOf computes the gates: style pooling, style integration (CFC or
// MLP), BatchNorm, sigmoid.
func (m *SRM) gatesOf(x *tensor.Tensor) *tensor.Tensor {
	t := StylePool(x, m.Pooling, m.Biased)
	var z *tensor.Tensor
	if m.MLP != nil {
		z = op.Reshape(m.MLP.Forward(op.Flatten(t)), x.Dim(0), x.Dim(1), 1, 1)
	} else {
		z = CFC(t, m.CFC, nil)
	}
	return op.Sigmoid(m.BN.Forward(z))
}

func (m *SRM) trace(in dims) (dims, float64, error) {
	if m.Pooling&PoolStd != 0 && !m.Biased && in.h*in.w < 2 {
		return in, 0, fmt.Errorf("srm: SRM's unbiased style pooling needs a feature map of at least 2 pixels, got %dx%d (use a larger input, or the biased option)", in.h, in.w)
	}
	passes := m.Pooling.Len() + 1 // each statistic, and the gating multiply
	if m.Pooling&PoolStd != 0 {
		passes++
	}
	macs := float64(passes) * in.plane()
	if m.MLP != nil {
		_, f, err := trace(m.MLP, dims{in.c * m.Pooling.Len(), 1, 1})
		if err != nil {
			return in, 0, err
		}
		macs += f
	} else {
		macs += float64(m.CFC.Len())
	}
	return in, macs, nil
}

// Vars lists the official keys "cfc" and "bn.*" (or "fc.0.*", "fc.2.*" and
// "bn.*" for the MLP). The cfc and the BN's affine parameters are NoDecay,
// as the official training excludes them from weight decay; the MLP's
// layers decay as SE's do.
func (m *SRM) Vars() []nn.Var {
	var vs []nn.Var
	if m.MLP != nil {
		vs = nn.Prefixed("fc", m.MLP.Vars())
	} else {
		vs = []nn.Var{{Name: "cfc", Value: m.CFC, NoDecay: true}}
	}
	return append(vs, nn.Prefixed("bn", m.BN.Vars())...)
}

// SetTraining switches the BatchNorm between batch and running statistics.
func (m *SRM) SetTraining(on bool) { m.BN.SetTraining(on) }
