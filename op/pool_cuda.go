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
	argmax := g.Buf(g.Empty(np * oh * ow))
	return g.Map(x, []int{x.Dim(0), x.Dim(1), oh, ow},
		func(y *cuda.Buffer) error {
			return d.MaxPool(g.Buf(x), y, argmax, np, h, w, poolSpans(rows), poolSpans(cols))
		},
		func(_, dy, dx *cuda.Buffer, acc bool) error {
			return d.MaxPoolBackward(dy, argmax, dx, np, h, w, oh, ow, acc)
		})
}

func avgPoolDevice(d *cuda.Device, x *tensor.Tensor, rows, cols []span) *tensor.Tensor {
	g := GPU{d, "AvgPool"}
	np, h, w := planes(g.Op, x)
	r, c := poolSpans(rows), poolSpans(cols)
	return g.Map(x, []int{x.Dim(0), x.Dim(1), len(rows), len(cols)},
		func(y *cuda.Buffer) error { return d.AvgPool(g.Buf(x), y, np, h, w, r, c) },
		func(_, dy, dx *cuda.Buffer, acc bool) error { return d.AvgPoolBackward(dy, dx, np, h, w, r, c, acc) })
}

func upsampleDevice(d *cuda.Device, x *tensor.Tensor, rows, cols []int) *tensor.Tensor {
	g := GPU{d, "UpsampleNearest"}
	np, h, w := planes(g.Op, x)
	r, c := int32s(rows), int32s(cols)
	return g.Map(x, []int{x.Dim(0), x.Dim(1), len(rows), len(cols)},
		func(y *cuda.Buffer) error { return d.Upsample(g.Buf(x), y, np, h, w, r, c) },
		func(_, dy, dx *cuda.Buffer, acc bool) error { return d.UpsampleBackward(dy, dx, np, h, w, r, c, acc) })
}

func int32s(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}
