package ggraph

import (
	"math/rand/v2"

	G "gorgonia.org/gorgonia"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/srm"
)

// Recalibrator builds the module spec names (srm.ParseSpec's syntax, e.g.
// "srm", "srm:avg+max:biased", "se:r8", "ge:e2", "ge+") for x, with
// parameters drawn by srmlab's initialisation from r, and adds it to the
// graph under prefix. It returns the srmlab module, whose tensors the
// graph's learnables mirror (see Builder.WriteBack), and the output node.
// A global GE-θ kernel is sized for x's map, which must then be square.
func (b *Builder) Recalibrator(x *G.Node, prefix string, spec srm.Spec, r *rand.Rand) (m srm.Recalibrator, out *G.Node, err error) {
	defer catch(&err)
	_, c, h, w := dims4(x, prefix)
	size := 0
	if h == w {
		size = h
	}
	if m, err = srm.NewRecalibrator(spec.String(), c, size, r); err != nil {
		return nil, nil, err
	}
	// Cast, so that the srmlab module and the graph compute in one type.
	nn.Cast(m, b.dt)
	out, err = b.Forward(x, prefix, m)
	return m, out, err
}

// srm is SRM: style pooling, CFC (or the MLP ablation), BN, sigmoid gate.
func (b *Builder) srm(x *G.Node, name string, m *srm.SRM) *G.Node {
	n, c, h, w := dims4(x, name)
	if m.Pooling&srm.PoolStd != 0 && !m.Biased && h*w < 2 {
		fail("%s: SRM's unbiased style pooling needs a feature map of at least 2 pixels, got %dx%d (use a larger input, or the biased option)", name, h, w)
	}
	t := b.stylePool(x, m.Pooling, m.Biased, name) // (N, C, k)
	k := m.Pooling.Len()
	var z *G.Node
	if m.MLP != nil {
		// srmlab flattens (N, C, k) channel-major: feature c·k+j.
		z = b.forward(reshape(t, n, c*k), join(name, "fc"), m.MLP)
	} else {
		cfc := b.param(join(name, "cfc"), m.CFC)
		z = sumLast(must(G.HadamardProd(t, b.tile(cfc, n, 1, n, c, k))))
	}
	return b.excite(x, b.batchNorm(z, join(name, "bn"), m.BN))
}

// stylePool is srm.StylePool: (N, C, k) holding each plane's statistics in
// the order avg, std, max, std = sqrt(var + srm.StyleEps) with var dividing
// by H·W−1, or by H·W when biased.
func (b *Builder) stylePool(x *G.Node, p srm.Pooling, biased bool, name string) *G.Node {
	n, c, h, w := dims4(x, name)
	xs := planes(x, name)
	mean := meanLast(xs)
	var stats G.Nodes
	if p&srm.PoolAvg != 0 {
		stats = append(stats, mean)
	}
	if p&srm.PoolStd != 0 {
		den := h*w - 1
		if biased {
			den = h * w
		}
		sq := sumLast(must(G.Square(must(G.Sub(xs, b.tile(mean, 1, h*w, n, c, h*w))))))
		v := must(G.Add(must(G.HadamardDiv(sq, b.scalar(float64(den)))), b.scalar(srm.StyleEps)))
		stats = append(stats, must(G.Sqrt(v)))
	}
	if p&srm.PoolMax != 0 {
		stats = append(stats, must(G.Max(xs, 2)))
	}
	if len(stats) == 0 {
		fail("%s: empty pooling set", name)
	}
	for i, s := range stats {
		stats[i] = reshape(s, n, c, 1)
	}
	if len(stats) == 1 {
		return stats[0]
	}
	return must(G.Concat(2, stats...))
}

// se is SE: the planes' means through the bottleneck, sigmoid gate.
func (b *Builder) se(x *G.Node, name string, m *srm.SE) *G.Node {
	return b.excite(x, b.forward(meanLast(planes(x, name)), join(name, "fc"), m.FC))
}

// ge is GE in its three variants: the gather (average windows for θ⁻, the
// depthwise convolution and BN for θ and θ⁺), θ⁺'s ReLU and bottleneck,
// then gates upsampled to the map.
func (b *Builder) ge(x *G.Node, name string, m *srm.GE) *G.Node {
	_, _, h, w := dims4(x, name)
	if m.Size > 0 && (h != m.Size || w != m.Size) {
		fail("%s: %s with the global extent was built for %dx%d feature maps and got %dx%d", name, m.Kind, m.Size, m.Size, h, w)
	}
	if h < m.Extent || w < m.Extent {
		fail("%s: %s extent %d exceeds the %dx%d feature map", name, m.Kind, m.Extent, h, w)
	}
	var z *G.Node
	switch {
	case m.Conv != nil:
		z = b.conv(x, join(name, "conv.0"), m.Conv)
		z = b.batchNorm(z, join(name, "conv.1"), m.BN)
	case m.Extent > 0:
		z = windowMean(x, m.Extent, m.Extent, name)
	default:
		z = windowMean(x, h, w, name)
	}
	if m.MLP != nil {
		z = b.forward(must(G.Rectify(z)), join(name, "fc"), m.MLP)
	}
	return b.excite(x, z)
}

// excite gates x by sigmoid(logits): logits (N, C) or (N, C, 1, 1) scale
// whole channels; a coarser (N, C, h, w) map is upsampled first.
func (b *Builder) excite(x, logits *G.Node) *G.Node {
	n, c, h, w := dims4(x, "gate")
	s := must(G.Sigmoid(logits))
	switch gs := s.Shape(); {
	case gs.TotalSize() == n*c:
		s = b.tile(s, 1, h*w, n, c, h, w)
	case gs[2] != h || gs[3] != w:
		s = b.upsample(s, h, w)
	}
	// s first: the in-place product overwrites its first operand, and x
	// belongs to the caller.
	return must(G.HadamardProd(s, x))
}
