package op

import "github.com/srmlab/srmlab/tensor"

// Conv2d is the 2-D cross-correlation of PyTorch's nn.Conv2d.
// x is (N, Cin, H, W); w is (Cout, Cin/groups, KH, KW); b is (Cout) or nil.
// stride and pad apply to both spatial axes. The result is
// (N, Cout, (H+2·pad−KH)/stride+1, (W+2·pad−KW)/stride+1).
func Conv2d(x, w, b *tensor.Tensor, stride, pad, groups int) *tensor.Tensor {
	panic("op.Conv2d: not yet implemented")
}
