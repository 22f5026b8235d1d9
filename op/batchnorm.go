package op

import "github.com/srmlab/srmlab/tensor"

// BatchNorm normalises x, (N, C, H, W) or (N, C), per channel as PyTorch's
// BatchNorm2d/1d. In training it uses the batch statistics (biased variance)
// and updates runMean and runVar in place with the given momentum (runVar
// takes the unbiased batch variance); in evaluation it uses runMean and
// runVar. gamma and beta are (C).
func BatchNorm(x, gamma, beta, runMean, runVar *tensor.Tensor, training bool, momentum, eps float64) *tensor.Tensor {
	panic("op.BatchNorm: not yet implemented")
}
