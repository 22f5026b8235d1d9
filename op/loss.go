package op

import "github.com/srmlab/srmlab/tensor"

// CrossEntropy is the mean softmax cross-entropy of logits (N, K) against
// integer labels in [0, K), as PyTorch's F.cross_entropy; it returns a
// scalar. A label out of range is an error naming its position.
func CrossEntropy(logits *tensor.Tensor, labels []int) (*tensor.Tensor, error) {
	panic("op.CrossEntropy: not yet implemented")
}
