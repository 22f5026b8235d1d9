package op

import "github.com/srmlab/srmlab/tensor"

// MaxPool2d is PyTorch's max_pool2d (padding counts as −∞).
func MaxPool2d(x *tensor.Tensor, kernel, stride, pad int) *tensor.Tensor {
	panic("op.MaxPool2d: not yet implemented")
}

// AvgPool2d is PyTorch's avg_pool2d with count_include_pad=true.
func AvgPool2d(x *tensor.Tensor, kernel, stride, pad int) *tensor.Tensor {
	panic("op.AvgPool2d: not yet implemented")
}

// AdaptiveAvgPool2d is PyTorch's adaptive_avg_pool2d to (outH, outW).
func AdaptiveAvgPool2d(x *tensor.Tensor, outH, outW int) *tensor.Tensor {
	panic("op.AdaptiveAvgPool2d: not yet implemented")
}

// GlobalAvgPool averages each (n, c) plane: (N, C, H, W) → (N, C, 1, 1).
func GlobalAvgPool(x *tensor.Tensor) *tensor.Tensor {
	panic("op.GlobalAvgPool: not yet implemented")
}

// UpsampleNearest resizes (N, C, H, W) to (N, C, outH, outW) as PyTorch's
// interpolate(mode="nearest"): source index floor(i·H/outH).
func UpsampleNearest(x *tensor.Tensor, outH, outW int) *tensor.Tensor {
	panic("op.UpsampleNearest: not yet implemented")
}
