package op

import (
	"github.com/srmlab/srmlab/onednn"
	"github.com/srmlab/srmlab/tensor"
)

// useOneDNN lets tests run float32 convolutions on srmlab's own path too.
var useOneDNN = true

// oneDNNGeom is g as oneDNN describes it, and whether oneDNN runs it: x is
// float32 on the CPU, the library opened, and the tests have not turned it
// off.
func oneDNNGeom(g *convGeom, x *tensor.Tensor, pad int, bias, relu bool) (onednn.ConvGeom, bool) {
	dg := onednn.ConvGeom{
		N: g.n, C: g.cin, H: g.h, W: g.w, OC: g.cout, KH: g.kh, KW: g.kw,
		Stride: g.stride, Pad: pad, Groups: g.groups, Bias: bias, ReLU: relu,
	}
	return dg, useOneDNN && x.DType() == tensor.Float32 && x.Device() == nil && onednn.Available() == nil
}

// conv2dOneDNN runs a float32 convolution through oneDNN when the library
// is there, and reports false when it is not or cannot take the geometry,
// for Conv2d to use its own path. A backward pass oneDNN refuses falls back
// the same way, so the choice never changes a result beyond rounding.
func conv2dOneDNN(g *convGeom, x, w, b *tensor.Tensor, pad int) (*tensor.Tensor, bool) {
	dg, ok := oneDNNGeom(g, x, pad, b != nil, false)
	if !ok {
		return nil, false
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
			gx, first := tensor.GradFor(x)
			d.X, d.SetX = gx.F32(), first
		}
		if w.NeedsGrad() {
			gw, first := tensor.GradFor(w)
			d.W, d.SetW = gw.F32(), first
		}
		if b != nil && b.NeedsGrad() {
			d.B = tensor.GradOf(b).F32()
		}
		if onednn.ConvBackward(dg, x.F32(), w.F32(), grad.F32(), d) != nil {
			clearFirst(d)
			conv2dBackward(g, x, w, b, grad.F32())
		}
	}, x, w, b)
	return out, true
}

// clearFirst zeroes the gradients d was to set, for srmlab's own backward
// pass, which adds, to take over where oneDNN refused.
func clearFirst(d onednn.ConvGrads) {
	if d.SetX {
		clear(d.X)
	}
	if d.SetW {
		clear(d.W)
	}
}
