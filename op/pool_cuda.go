package op

import (
	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/tensor"
)

// poolSpans hands the host's window tables to the kernels, so both paths
// pool over exactly the same windows.
func poolSpans(s []span) []cuda.PoolSpan {
	out := make([]cuda.PoolSpan, len(s))
	for i, v := range s {
		out[i] = cuda.PoolSpan{Lo: int32(v.lo), Hi: int32(v.hi), Div: int32(v.div)}
	}
	return out
}

func maxPoolDevice(d *cuda.Device, x *tensor.Tensor, rows, cols []span) *tensor.Tensor {
	g := GPU{d, "MaxPool2d"}
	np, h, w := planes(g.Op, x)
	oh, ow := len(rows), len(cols)
	y, argmax := g.Empty(x.Dim(0), x.Dim(1), oh, ow), g.Empty(np*oh*ow)
	g.Must(d.MaxPool(g.Buf(x), g.Buf(y), g.Buf(argmax), np, h, w, poolSpans(rows), poolSpans(cols)))
	tensor.Record(y, func(grad *tensor.Tensor) {
		dx, acc := g.Grad(x)
		g.Must(d.MaxPoolBackward(g.Buf(grad), g.Buf(argmax), dx, np, h, w, oh, ow, acc))
	}, x)
	return y
}

func avgPoolDevice(d *cuda.Device, x *tensor.Tensor, rows, cols []span) *tensor.Tensor {
	g := GPU{d, "AvgPool"}
	np, h, w := planes(g.Op, x)
	r, c := poolSpans(rows), poolSpans(cols)
	y := g.Empty(x.Dim(0), x.Dim(1), len(rows), len(cols))
	g.Must(d.AvgPool(g.Buf(x), g.Buf(y), np, h, w, r, c))
	tensor.Record(y, func(grad *tensor.Tensor) {
		dx, acc := g.Grad(x)
		g.Must(d.AvgPoolBackward(g.Buf(grad), dx, np, h, w, r, c, acc))
	}, x)
	return y
}

func upsampleDevice(d *cuda.Device, x *tensor.Tensor, rows, cols []int) *tensor.Tensor {
	g := GPU{d, "UpsampleNearest"}
	np, h, w := planes(g.Op, x)
	r, c := int32s(rows), int32s(cols)
	y := g.Empty(x.Dim(0), x.Dim(1), len(rows), len(cols))
	g.Must(d.Upsample(g.Buf(x), g.Buf(y), np, h, w, r, c))
	tensor.Record(y, func(grad *tensor.Tensor) {
		dx, acc := g.Grad(x)
		g.Must(d.UpsampleBackward(g.Buf(grad), dx, np, h, w, r, c, acc))
	}, x)
	return y
}

func int32s(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}
