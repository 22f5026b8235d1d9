package op

import (
	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/tensor"
)

// Reshape returns x with another shape of the same size; the gradient flows
// back through it. The result shares x's data, as a PyTorch view does.
func Reshape(x *tensor.Tensor, shape ...int) *tensor.Tensor {
	out := x.View(shape...)
	tensor.Record(out, func(grad *tensor.Tensor) {
		if d := DeviceOf("Reshape", x); d != nil {
			reshapeGradDevice(d, x, grad)
			return
		}
		if x.DType() == tensor.Float64 {
			addInto(kern.Vals[float64](tensor.GradOf(x)), kern.Vals[float64](grad))
		} else {
			addInto(kern.Vals[float32](tensor.GradOf(x)), kern.Vals[float32](grad))
		}
	}, x)
	return out
}

// Flatten reshapes (N, ...) to (N, rest).
func Flatten(x *tensor.Tensor) *tensor.Tensor {
	s := x.Shape()
	if len(s) == 0 {
		tensor.Panicf("Flatten: scalar has no batch dimension")
	}
	return Reshape(x, s[0], tensor.Numel(s[1:]))
}
