package op

import (
	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/tensor"
)

// pointwiseDevice is an elementwise activation whose gradient follows
// from its output: ReLU and Sigmoid.
func pointwiseDevice(d *cuda.Device, op string, x *tensor.Tensor,
	forward func(x, y *cuda.Buffer, n int) error,
	backward func(y, dy, dx *cuda.Buffer, n int, accumulate bool) error) *tensor.Tensor {
	g := GPU{d, op}
	return g.Map(x, x.Shape(),
		func(y *cuda.Buffer) error { return forward(g.Buf(x), y, x.Len()) },
		func(y, dy, dx *cuda.Buffer, acc bool) error { return backward(y, dy, dx, x.Len(), acc) })
}

func addDevice(d *cuda.Device, op string, a, b *tensor.Tensor, relu bool) *tensor.Tensor {
	g := GPU{d, op}
	out := g.Empty(a.Shape()...)
	g.Must(d.Add(g.Buf(a), g.Buf(b), g.Buf(out), a.Len(), relu))
	tensor.Record(out, func(grad *tensor.Tensor) {
		src, own := grad, tensor.OwnsGrad(out)
		if relu {
			src, own = g.Empty(out.Shape()...), true
			g.Must(d.ReLUBackward(g.Buf(out), g.Buf(grad), g.Buf(src), out.Len(), false))
		}
		// One input may adopt src as its gradient; the other then copies
		// it, since adopting means later additions land in src.
		taken := false
		for _, t := range []*tensor.Tensor{a, b} {
			if t.NeedsGrad() {
				take := own && !taken && t.Grad == nil
				g.Pass(t, src, take)
				taken = taken || take
			}
		}
	}, a, b)
	return out
}

// mulDevice is Mul with g of x's shape (plane 1) or one gate per plane.
func mulDevice(d *cuda.Device, x, gate *tensor.Tensor, plane int) *tensor.Tensor {
	g := GPU{d, "Mul"}
	out := g.Empty(x.Shape()...)
	planes := gate.Len()
	g.Must(d.ScalePlanes(g.Buf(x), g.Buf(gate), g.Buf(out), planes, plane))
	tensor.Record(out, func(grad *tensor.Tensor) {
		if x == gate { // d(x²) = 2x dx: the same term twice into one gradient
			tmp := g.Empty(x.Shape()...)
			g.Must(d.ScalePlanesBackward(g.Buf(x), g.Buf(gate), g.Buf(grad), g.Buf(tmp), nil, planes, plane, false, false))
			g.Pass(x, tmp, false)
			g.Pass(x, tmp, false)
			return
		}
		var dx, dg *cuda.Buffer
		var accX, accG bool
		if gate.NeedsGrad() {
			dg, accG = g.Grad(gate)
		}
		if x.NeedsGrad() {
			dx, accX = g.Grad(x)
		}
		g.Must(d.ScalePlanesBackward(g.Buf(x), g.Buf(gate), g.Buf(grad), dx, dg, planes, plane, accX, accG))
	}, x, gate)
	return out
}

// reshapeGrad passes a view's gradient back to x on the device.
func reshapeGradDevice(d *cuda.Device, x, grad *tensor.Tensor) {
	GPU{d, "Reshape"}.Pass(x, grad, false)
}
