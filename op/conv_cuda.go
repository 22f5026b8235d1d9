package op

import (
	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/tensor"
)

// conv2dDevice runs the convolution through cuDNN, or im2col and cuBLAS
// where cuDNN is missing (package cuda chooses).
func conv2dDevice(d *cuda.Device, cg convGeom, x, w, b *tensor.Tensor, pad int) *tensor.Tensor {
	g := GPU{d, "Conv2d"}
	geom := cuda.ConvGeom{N: cg.n, C: cg.cin, H: cg.h, W: cg.w, K: cg.cout, R: cg.kh, S: cg.kw,
		StrideH: cg.stride, StrideW: cg.stride, PadH: pad, PadW: pad, Groups: cg.groups}
	y := g.Empty(cg.n, cg.cout, cg.oh, cg.ow)
	g.Must(d.ConvForward(geom, g.Buf(x), g.Buf(w), g.Buf(y)))
	if b != nil {
		g.Must(d.AddBias(g.Buf(y), g.Buf(b), cg.n, cg.cout, cg.ohw))
	}
	tensor.Record(y, func(grad *tensor.Tensor) {
		dy := g.Buf(grad)
		if x.NeedsGrad() {
			dx, acc := g.Grad(x)
			g.Must(d.ConvBackwardData(geom, g.Buf(w), dy, dx, acc))
		}
		if w.NeedsGrad() {
			dw, acc := g.Grad(w)
			g.Must(d.ConvBackwardFilter(geom, g.Buf(x), dy, dw, acc))
		}
		if b != nil && b.NeedsGrad() {
			db, acc := g.Grad(b)
			g.Must(d.SumBias(dy, db, cg.n, cg.cout, cg.ohw, acc))
		}
	}, x, w, b)
	return y
}

// linearDevice is Linear through cuBLAS: the row-major products of the
// host path, one Gemm each.
func linearDevice(d *cuda.Device, x, w, b *tensor.Tensor) *tensor.Tensor {
	g := GPU{d, "Linear"}
	n, in, out := x.Dim(0), x.Dim(1), w.Dim(0)
	y := g.Empty(n, out)
	g.Must(d.Gemm(false, true, n, out, in, 1, g.Buf(x), in, g.Buf(w), in, 0, g.Buf(y), out))
	if b != nil {
		g.Must(d.AddBias(g.Buf(y), g.Buf(b), n, out, 1))
	}
	tensor.Record(y, func(grad *tensor.Tensor) {
		dy := g.Buf(grad)
		if x.NeedsGrad() {
			dx, acc := g.Grad(x)
			g.Must(d.Gemm(false, false, n, in, out, 1, dy, out, g.Buf(w), in, beta(acc), dx, in))
		}
		if w.NeedsGrad() {
			dw, acc := g.Grad(w)
			g.Must(d.Gemm(true, false, out, in, n, 1, dy, out, g.Buf(x), in, beta(acc), dw, in))
		}
		if b != nil && b.NeedsGrad() {
			db, acc := g.Grad(b)
			g.Must(d.SumBias(dy, db, n, out, 1, acc))
		}
	}, x, w, b)
	return y
}

// beta is a product's weight on what its output held: 1 to accumulate.
func beta(accumulate bool) float32 {
	if accumulate {
		return 1
	}
	return 0
}
