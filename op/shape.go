package op

import "github.com/srmlab/srmlab/tensor"

// Reshape returns x with another shape of the same size; the gradient flows
// back through it.
func Reshape(x *tensor.Tensor, shape ...int) *tensor.Tensor {
	panic("op.Reshape: not yet implemented")
}

// Flatten reshapes (N, ...) to (N, rest).
func Flatten(x *tensor.Tensor) *tensor.Tensor { panic("op.Flatten: not yet implemented") }
