package op

import (
	"github.com/srmlab/srmlab/onednn"
	"github.com/srmlab/srmlab/tensor"
)

// useOneDNN lets tests run float32 convolutions on srmlab's own path too.
var useOneDNN = true

// conv2dOneDNN runs a float32 convolution through oneDNN when the library
// is there, and reports false when it is not or cannot take the geometry,
// for Conv2d to use its own path. A backward pass oneDNN refuses falls back
// the same way, so the choice never changes a result beyond rounding.
func conv2dOneDNN(g *convGeom, x, w, b *tensor.Tensor, pad int) (*tensor.Tensor, bool) {
	if !useOneDNN || x.DType() != tensor.Float32 || onednn.Available() != nil {
		return nil, false
	}
	dg := onednn.ConvGeom{
		N: g.n, C: g.cin, H: g.h, W: g.w, OC: g.cout, KH: g.kh, KW: g.kw,
		Stride: g.stride, Pad: pad, Groups: g.groups, Bias: b != nil,
	}
	var bd []float32
	if b != nil {
		bd = b.F32()
	}
	out := tensor.Empty(tensor.Float32, g.n, g.cout, g.oh, g.ow)
	if onednn.ConvForward(dg, x.F32(), w.F32(), bd, out.F32()) != nil {
		return nil, false
	}
	tensor.Record(out, func(grad *tensor.Tensor) {
		var d onednn.ConvGrads
		if x.NeedsGrad() {
			d.SetX = x.Grad == nil
			d.X = tensor.GradOf(x).F32()
		}
		if w.NeedsGrad() {
			d.SetW = w.Grad == nil
			d.W = tensor.GradOf(w).F32()
		}
		if b != nil && b.NeedsGrad() {
			d.B = tensor.GradOf(b).F32()
		}
		if onednn.ConvBackward(dg, x.F32(), w.F32(), grad.F32(), d) != nil {
			conv2dBackward(g, x, w, b, grad.F32())
		}
	}, x, w, b)
	return out, true
}
