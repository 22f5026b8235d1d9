package op

import "github.com/srmlab/srmlab/tensor"

// ReLU returns max(x, 0).
func ReLU(x *tensor.Tensor) *tensor.Tensor { panic("op.ReLU: not yet implemented") }

// Sigmoid returns 1/(1+exp(−x)).
func Sigmoid(x *tensor.Tensor) *tensor.Tensor { panic("op.Sigmoid: not yet implemented") }

// Add returns a+b for tensors of one shape (the residual addition).
func Add(a, b *tensor.Tensor) *tensor.Tensor { panic("op.Add: not yet implemented") }

// Mul returns x·g where g has x's shape, or is (N, C, 1, 1) for x of shape
// (N, C, H, W) and then scales each channel plane (a recalibration gate).
func Mul(x, g *tensor.Tensor) *tensor.Tensor { panic("op.Mul: not yet implemented") }
