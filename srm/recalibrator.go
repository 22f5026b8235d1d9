package srm

import (
	"fmt"
	"math/rand/v2"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// Recalibrator is a channel recalibration module: it computes one gate in
// (0, 1) per channel (or per channel and region, for a local GE extent)
// from the feature map and returns the map scaled by its gates. SRM, SE and
// the GE variants all have this shape, so a ResNet block takes "which
// module" as a plain spec, as timm's create_attn does.
type Recalibrator interface {
	nn.Module
	// Gates returns the gates of the last Forward, outside any graph:
	// (N, C, 1, 1), or (N, C, h, w) before upsampling for a local GE
	// extent; nil before the first Forward. Analyses read them per block.
	Gates() *tensor.Tensor
}

// NewRecalibrator builds the module a spec names (see ParseSpec) for
// feature maps of the given number of channels. featureSize is the side of
// the square map the module will see; only GE-θ and GE-θ⁺ with the global
// extent need it, as their kernel covers the whole map and must exist
// before weights are loaded, and a GE extent larger than it is an error.
// Pass 0 when it is unknown. Parameters are initialised as in the official
// code: convolution weights normal(0, √(2/(k·k·out))), biases and Linear
// layers as PyTorch's default, BatchNorm 1 and 0, SRM's cfc zero.
func NewRecalibrator(spec string, channels, featureSize int, r *rand.Rand) (Recalibrator, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	return s.build(channels, featureSize, r)
}

func (s Spec) build(c, size int, r *rand.Rand) (Recalibrator, error) {
	if c < 1 {
		return nil, fmt.Errorf("srm: %s module for %d channels", s, c)
	}
	switch s.Kind {
	case "srm":
		return newSRM(s, c, r), nil
	case "se":
		return newSE(s, c, r), nil
	}
	return newGE(s, c, size, r)
}

// mustFit panics with a *tensor.ShapeError when m cannot take x, for the
// modules' Forward, whose contract is to panic on misuse.
func mustFit(m tracer, x *tensor.Tensor) {
	if x.Rank() != 4 {
		tensor.Panicf("recalibration of %v: want an (N, C, H, W) feature map", x.Shape())
	}
	if _, _, err := m.trace(dims{x.Dim(1), x.Dim(2), x.Dim(3)}); err != nil {
		tensor.Panicf("%v", err)
	}
}

// gate holds what every module shares: the last gates and the step that
// applies them to the map.
type gate struct{ last *tensor.Tensor }

// Gates returns the gates of the last Forward (see Recalibrator).
func (g *gate) Gates() *tensor.Tensor { return g.last }

// keep keeps gates s for Gates and returns them.
func (g *gate) keep(s *tensor.Tensor) *tensor.Tensor {
	g.last = s.Detach()
	return s
}

// scale keeps the gates s for Gates, spreads a coarser gate map back over
// x by nearest-neighbour upsampling, and scales x by it.
func (g *gate) scale(x, s *tensor.Tensor) *tensor.Tensor {
	g.keep(s)
	if h, w := x.Dim(2), x.Dim(3); s.Dim(2)*s.Dim(3) != 1 && (s.Dim(2) != h || s.Dim(3) != w) {
		s = op.UpsampleNearest(s, h, w)
	}
	return op.Mul(x, s)
}

// channelGater is a Recalibrator that can hand its gates over instead of
// applying them, so that a residual block folds the scaling into its
// addition (op.ScaleAddReLU) and the scaled map is never written.
type channelGater interface {
	// channelGates returns the gates (N, C, 1, 1) the module would scale x
	// by, kept for Gates, and true; or false, having done nothing, where
	// the module computes otherwise: spatial gates (a local GE extent), or
	// its fused GPU kernels.
	channelGates(x *tensor.Tensor) (*tensor.Tensor, bool)
}

// bottleneck is SE's excitation MLP, reduce → ReLU → expand, as the
// PyTorch nn.Sequential it mirrors, so that under the key "fc" its layers
// are "fc.0" and "fc.2". SE and SRM's MLP ablation use Linear layers,
// GE-θ⁺ 1x1 convolutions.
func bottleneck(reduce, expand nn.Module) nn.Sequential {
	return nn.Sequential{reduce, nn.ReLU{}, expand}
}

// linearBottleneck is the bottleneck of Linear layers from in features
// through hidden back to out.
func linearBottleneck(r *rand.Rand, in, hidden, out int) nn.Sequential {
	return bottleneck(nn.NewLinear(r, in, hidden, true), nn.NewLinear(r, hidden, out, true))
}
