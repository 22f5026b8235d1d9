package srm

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// GE is Gather-Excite (Hu, Shen, Albanie, Sun and Vedaldi, NeurIPS 2018)
// in its three variants, Kind:
//
//   - "ge-", GE-θ⁻: parameter-free; average pooling over the extent.
//   - "ge", GE-θ as in the SRM paper's comparison: a depthwise convolution
//     with bias over the extent, then BatchNorm. Keys "conv.0.*" (the
//     convolution) and "conv.1.*" (the BN), as in the official SRM code.
//   - "ge+", GE-θ⁺: the same gather without bias, BN, ReLU, then a 1x1
//     convolution bottleneck C → C/r → C with biases ("fc.0.*", "fc.2.*").
//
// All end in sigmoid gates. The extent is the gather's window, taken with
// the same stride, so a local extent e yields an (H/e, W/e) gate map that is
// upsampled (nearest) back to H x W; one strided window stands in for the
// GE paper's stack of stride-2 depthwise convolutions. With the global
// extent the θ and θ⁺ kernel covers the whole map, so its shape fixes the
// feature size: the module is built for Size x Size maps and refuses others
// with an error (GE-θ⁻ takes any size). The global gather runs as CFC, a
// per-channel dot product, rather than as a convolution with one output.
type GE struct {
	gate
	Kind string
	// Extent is the gather window's side; 0 is the global extent.
	Extent int
	// Size is the feature-map side a global θ or θ⁺ kernel covers, else 0.
	Size int
	// Conv is the depthwise gather of θ and θ⁺, nil for θ⁻.
	Conv *nn.Conv2d
	// BN normalises the gathered map of θ and θ⁺, nil for θ⁻.
	BN *nn.BatchNorm2d
	// MLP is θ⁺'s bottleneck, under the key "fc"; nil otherwise.
	MLP nn.Module
}

func newGE(s Spec, c, size int, r *rand.Rand) (*GE, error) {
	m := &GE{Kind: s.Kind, Extent: s.Extent}
	if size > 0 && s.Extent > size {
		return nil, fmt.Errorf("srm: %s extent %d exceeds the %dx%d feature map", s, s.Extent, size, size)
	}
	if s.Kind == "ge-" {
		return m, nil
	}
	k := s.Extent
	if k == 0 {
		if size < 1 {
			return nil, fmt.Errorf("srm: %s with the global extent needs the feature-map size its kernel covers", s)
		}
		k, m.Size = size, size
	}
	m.Conv = geConv(r, c, c, k, c, s.Kind == "ge")
	m.BN = nn.NewBatchNorm2d(c)
	if s.Kind == "ge+" {
		h := s.hidden(c)
		m.MLP = bottleneck(geConv(r, c, h, 1, 1, true), geConv(r, h, c, 1, 1, true))
	}
	return m, nil
}

// geConv makes a convolution of kernel and stride k as the official code
// leaves one: the weight from He's normal, as its ResNet redraws every
// Conv2d (nn.NewConv2d does the same), and the bias at PyTorch's default
// U(±1/√fan_in), which that loop does not touch.
func geConv(r *rand.Rand, in, out, k, groups int, bias bool) *nn.Conv2d {
	c := nn.NewConv2d(r, in, out, k, k, 0, groups, bias)
	if bias {
		b := 1 / math.Sqrt(float64(in/groups*k*k))
		c.Bias.FillUniform(r, -b, b)
	}
	return c
}

// Forward gates x, (N, C, H, W); it panics with a *tensor.ShapeError on a
// size the module cannot take (see GE).
func (m *GE) Forward(x *tensor.Tensor) *tensor.Tensor {
	mustFit(m, x)
	return m.scale(x, m.gatesOf(x))
}

func (m *GE) channelGates(x *tensor.Tensor) (*tensor.Tensor, bool) {
	if m.Extent != 0 || op.DeviceOf("GE", x) != nil {
		return nil, false
	}
	mustFit(m, x)
	return m.keep(m.gatesOf(x)), true
}

// gatesOf computes the gates, (N, C, 1, 1) for the global extent and one
// per window otherwise: gather, then BatchNorm (GE-θ, GE-θ⁺), the MLP
// (GE-θ⁺), sigmoid.
func (m *GE) gatesOf(x *tensor.Tensor) *tensor.Tensor {
	var z *tensor.Tensor
	switch e := m.Extent; {
	case m.Conv == nil && e == 0:
		z = op.GlobalAvgPool(x)
	case m.Conv == nil:
		z = op.AvgPool2d(x, e, e, 0)
	case e == 0:
		z = CFC(x, m.Conv.Weight, m.Conv.Bias)
	default:
		z = m.Conv.Forward(x)
	}
	if m.BN != nil {
		if d := op.DeviceOf("GE", z); d != nil && m.MLP == nil {
			return geGateDevice(d, z, m.BN)
		}
		z = m.BN.Forward(z)
	}
	if m.MLP != nil {
		z = m.MLP.Forward(op.ReLU(z))
	}
	return op.Sigmoid(z)
}

func (m *GE) trace(in dims) (dims, float64, error) {
	if m.Size > 0 && (in.h != m.Size || in.w != m.Size) {
		return in, 0, fmt.Errorf("srm: %s with the global extent was built for %dx%d feature maps and got %dx%d (build the model for this input size)", m.Kind, m.Size, m.Size, in.h, in.w)
	}
	if in.h < m.Extent || in.w < m.Extent {
		return in, 0, fmt.Errorf("srm: %s extent %d exceeds the %dx%d feature map", m.Kind, m.Extent, in.h, in.w)
	}
	// The gather, pooling or depthwise kernel, reads each element of its
	// windows once.
	g, gather := dims{in.c, 1, 1}, in.plane()
	if e := m.Extent; e > 0 {
		g.h, g.w = in.h/e, in.w/e
		gather = float64(g.c * g.h * g.w * e * e)
	}
	macs := gather + in.plane() // and the gating multiply
	if m.MLP != nil {
		_, f, err := trace(m.MLP, g)
		return in, macs + f, err
	}
	return in, macs, nil
}

// Vars lists "conv.0.*" and "conv.1.*" (and "fc.*" for θ⁺); none for
// θ⁻.
func (m *GE) Vars() []nn.Var {
	if m.Conv == nil {
		return nil
	}
	vs := nn.Prefixed("conv", nn.Sequential{m.Conv, m.BN}.Vars())
	if m.MLP != nil {
		vs = append(vs, nn.Prefixed("fc", m.MLP.Vars())...)
	}
	return vs
}

// SetTraining switches the BatchNorm between batch and running statistics.
func (m *GE) SetTraining(on bool) {
	if m.BN != nil {
		m.BN.SetTraining(on)
	}
}
