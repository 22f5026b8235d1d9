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
// the same way, so the choice never changes a result beyond rounding. The
// output, and x's gradient when this pass makes it, are in the layout
// oneDNN computes in (see tensor.Blocked16); x and the output's gradient
// are taken in the layout they are in.
func conv2dOneDNN(g *convGeom, x, w, b *tensor.Tensor, pad int) (*tensor.Tensor, bool) {
	dg, ok := oneDNNGeom(g, x, pad, b != nil, false)
	if !ok {
		return nil, false
	}
	var bd []float32
	if b != nil {
		bd = b.F32()
	}
	out, ok := convForward(dg, g, x, w.F32(), bd)
	if !ok {
		return nil, false
	}
	tensor.Record(out, func(grad *tensor.Tensor) {
		var io onednn.ConvLayouts
		var d onednn.ConvGrads
		var xs, gs []float32
		xs, io.X = mapData(x)
		gs, io.DY = mapData(grad)
		if x.NeedsGrad() {
			lay, err := onednn.ConvGradLayout(dg)
			gx, first := tensor.GradFor16(x, err == nil && lay == onednn.Blocked16)
			d.X, io.DX = mapData(gx)
			d.SetX = first
		}
		if w.NeedsGrad() {
			gw, first := tensor.GradFor(w)
			d.W, d.SetW = gw.F32(), first
		}
		if b != nil && b.NeedsGrad() {
			d.B = tensor.GradOf(b).F32()
		}
		if onednn.ConvBackward(dg, xs, w.F32(), gs, d, io) != nil {
			clearFirst(d)
			conv2dBackward(g, x, w, b, grad.F32())
		}
	}, x, w, b)
	return out, true
}

// convForward is the convolution dg of x with the weight w and bias b
// (nil for none), into a new output in the layout oneDNN writes; false
// where oneDNN cannot run it.
func convForward(dg onednn.ConvGeom, g *convGeom, x *tensor.Tensor, w, b []float32) (*tensor.Tensor, bool) {
	lay, err := onednn.ConvOutLayout(dg)
	if err != nil {
		return nil, false
	}
	var out *tensor.Tensor
	if lay == onednn.Blocked16 {
		out = tensor.EmptyBlocked16(g.n, g.cout, g.oh, g.ow)
	} else {
		out = tensor.Empty(tensor.Float32, g.n, g.cout, g.oh, g.ow)
	}
	var io onednn.ConvLayouts
	var xs, ys []float32
	xs, io.X = mapData(x)
	ys, io.Y = mapData(out)
	if onednn.ConvForward(dg, xs, w, b, ys, io) != nil {
		return nil, false
	}
	return out, true
}

// mapData is a float32 feature map's values as they lie, and their layout.
func mapData(t *tensor.Tensor) ([]float32, onednn.Layout) {
	if tensor.IsBlocked16(t) {
		return tensor.Blocked16(t), onednn.Blocked16
	}
	return t.F32(), onednn.NCHW
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
