package op

import "github.com/srmlab/srmlab/tensor"

// Linear computes x·wᵀ + b as PyTorch's nn.Linear: x is (N, in), w is
// (out, in), b is (out) or nil; the result is (N, out).
func Linear(x, w, b *tensor.Tensor) *tensor.Tensor {
	panic("op.Linear: not yet implemented")
}
