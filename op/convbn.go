package op

import (
	"math"

	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/onednn"
	"github.com/srmlab/srmlab/tensor"
)

// ConvBNEval is BatchNorm(Conv2d(x, w, nil, stride, pad, groups)) with
// evaluation-mode statistics, followed by ReLU when relu is set: the
// convolution-BatchNorm(-ReLU) unit of a ResNet at inference. BatchNorm is
// then an affine map per channel, so it is folded into the convolution
// (weight w·s, bias β − μ·s with s = γ/√(σ²+eps)) and the ReLU runs on the
// convolution's output as it is written: one pass over the map where three
// operations made three. Gradients reach x, w, γ and β as through the
// separate operations.
//
// The fold needs oneDNN (float32 on the CPU); elsewhere the operations run
// one after the other, with the same result.
func ConvBNEval(x, w, gamma, beta, runMean, runVar *tensor.Tensor, eps float64, stride, pad, groups int, relu bool) *tensor.Tensor {
	g := newConvGeom(x, w, nil, stride, pad, groups)
	for _, p := range []*tensor.Tensor{gamma, beta, runMean, runVar} {
		if p.Rank() != 1 || p.Dim(0) != g.cout {
			tensor.Panicf("ConvBNEval: BatchNorm parameter %v for %d channels", p.Shape(), g.cout)
		}
	}
	if out, ok := convBNOneDNN(&g, x, w, gamma, beta, runMean, runVar, eps, pad, relu); ok {
		return out
	}
	norm := BatchNorm
	if relu {
		norm = BatchNormReLU
	}
	return norm(Conv2d(x, w, nil, stride, pad, groups), gamma, beta, runMean, runVar, false, 0, eps)
}

func convBNOneDNN(g *convGeom, x, w, gamma, beta, runMean, runVar *tensor.Tensor, eps float64, pad int, relu bool) (*tensor.Tensor, bool) {
	dg, ok := oneDNNGeom(g, x, pad, true, relu)
	if !ok || DeviceOf("ConvBNEval", x, w, gamma, beta, runMean, runVar) != nil {
		return nil, false
	}
	// The fold in float64: s and β − μ·s per output channel, then w·s.
	ws, gs, bs, ms, vs := w.F32(), gamma.F32(), beta.F32(), runMean.F32(), runVar.F32()
	istd, scale := make([]float64, g.cout), make([]float32, g.cout)
	bias := make([]float32, g.cout)
	for c := range g.cout {
		istd[c] = 1 / math.Sqrt(float64(vs[c])+eps)
		s := float64(gs[c]) * istd[c]
		scale[c], bias[c] = float32(s), float32(float64(bs[c])-float64(ms[c])*s)
	}
	per := len(ws) / g.cout
	folded := make([]float32, len(ws))
	for c := range g.cout {
		simd.Affine(folded[c*per:(c+1)*per], ws[c*per:(c+1)*per], scale[c], 0, false)
	}
	// The forward pass takes x and writes out in their layouts; the
	// backward pass, for fine-tuning, reads them in NCHW.
	out, ok := convForward(dg, g, x, folded, bias)
	if !ok {
		return nil, false
	}
	tensor.Record(out, func(grad *tensor.Tensor) {
		dy := grad.F32()
		if relu {
			// The gradient past the ReLU, in grad itself when this
			// function owns it (see gradInto).
			m := grad
			if !tensor.OwnsGrad(out) {
				m = tensor.EmptyLike(grad)
			}
			simd.Mask(m.F32(), dy, out.F32())
			dy = m.F32()
		}
		// Gradients with respect to the folded weight (G) and bias (db)
		// give all the others: dw = s·G, dβ = db, and, as Σ dy·conv(x, w)
		// = ⟨w, G⟩ per channel, dγ = (⟨w, G⟩ − μ·db)/√(σ²+eps).
		fw := tensor.FromFloat32(folded, w.Shape()...).SetRequiresGrad(true)
		fb := tensor.FromFloat32(bias, g.cout).SetRequiresGrad(true)
		d := onednn.ConvGrads{W: tensor.GradOf(fw).F32(), B: tensor.GradOf(fb).F32(), SetW: true}
		if x.NeedsGrad() {
			gx, first := tensor.GradFor(x)
			d.X, d.SetX = gx.F32(), first
		}
		if onednn.ConvBackward(dg, x.F32(), folded, dy, d, onednn.ConvLayouts{}) != nil { // dy is past the ReLU
			clearFirst(d)
			conv2dBackward(g, x, fw, fb, dy)
		}
		var gw, gg, gb []float32
		if w.NeedsGrad() {
			gw = tensor.GradOf(w).F32()
		}
		if gamma.NeedsGrad() {
			gg = tensor.GradOf(gamma).F32()
		}
		if beta.NeedsGrad() {
			gb = tensor.GradOf(beta).F32()
		}
		for c := range g.cout {
			row := d.W[c*per : (c+1)*per]
			if gw != nil {
				simd.AffineAdd(gw[c*per:(c+1)*per], row, scale[c], simd.NegZero[float32]())
			}
			if gg != nil {
				dot := simd.Dot(row, ws[c*per:(c+1)*per])
				gg[c] += float32((dot - float64(ms[c])*float64(d.B[c])) * istd[c])
			}
			if gb != nil {
				gb[c] += d.B[c]
			}
		}
	}, x, w, gamma, beta)
	return out, true
}
