package op

import (
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

// blockedCase is c with its float32 instance fed the feature maps in[maps]
// in the blocked layout (its float64 instance, which has none, checks the
// gradients against finite differences as before): runOpCases then holds
// the blocked kernels to the float64 results.
func blockedCase(c opCase, maps ...int) opCase {
	f := c.f
	c.name += " blocked"
	c.f = func(in []*tensor.Tensor) *tensor.Tensor {
		for _, i := range maps {
			if tensor.CanBlock16(in[i]) {
				tensor.Blocked16(in[i])
			}
		}
		y := f(in)
		// An operation that read its input in NCHW would have converted it.
		if in[maps[0]].DType() == tensor.Float32 && !tensor.IsBlocked16(in[maps[0]]) {
			panic("the blocked case did not run in the blocked layout")
		}
		return y
	}
	return c
}

func TestBatchNormBlockedGrad(t *testing.T) {
	shape := []int{3, 32, 5, 6}
	runOpCases(t, []opCase{
		blockedCase(bnCase("train", shape, true), 0),
		blockedCase(bnCase("eval", shape, false), 0),
		blockedCase(bnReLUCase("ReLU train", shape, true), 0),
		blockedCase(bnReLUCase("ReLU eval", shape, false), 0),
		blockedCase(bnAddReLUCase("add+ReLU train", shape, true), 0, 3),
		blockedCase(bnAddReLUCase("add+ReLU eval", shape, false), 0, 3),
		// The shortcut in NCHW is taken into the blocked layout.
		blockedCase(bnAddReLUCase("add+ReLU NCHW shortcut", []int{2, 16, 4, 3}, true), 0),
		// Two readers of one map: x's gradient arrives from both, the
		// second added to the first's.
		blockedCase(opCase{"two readers", [][]int{{2, 16, 3, 3}, {16}, {16}}, func(in []*tensor.Tensor) *tensor.Tensor {
			rm, rv := bnStats(in[0].DType(), 16)
			a := BatchNormReLU(in[0], in[1], in[2], rm, rv, true, 0.1, 1e-5)
			return BatchNormAddReLU(in[0], in[1], in[2], rm, rv, a, true, 0.1, 1e-5)
		}}, 0),
	})
}

func TestAddBlockedGrad(t *testing.T) {
	shape := []int{2, 32, 3, 4}
	two := [][]int{shape, shape}
	runOpCases(t, []opCase{
		blockedCase(opCase{"add", two, func(in []*tensor.Tensor) *tensor.Tensor { return Add(in[0], in[1]) }}, 0, 1),
		blockedCase(opCase{"add+ReLU", two, func(in []*tensor.Tensor) *tensor.Tensor { return AddReLU(in[0], in[1]) }}, 0, 1),
		blockedCase(opCase{"add+ReLU, b in NCHW", two, func(in []*tensor.Tensor) *tensor.Tensor { return AddReLU(in[0], in[1]) }}, 0),
		blockedCase(opCase{"x+x", [][]int{shape}, func(in []*tensor.Tensor) *tensor.Tensor { return AddReLU(in[0], in[0]) }}, 0),
		// The sum feeds a BatchNorm and the output: its gradient arrives
		// twice, in the blocked layout.
		blockedCase(opCase{"add then BatchNorm", [][]int{shape, shape, {32}, {32}}, func(in []*tensor.Tensor) *tensor.Tensor {
			s := AddReLU(in[0], in[1])
			rm, rv := bnStats(in[0].DType(), 32)
			return BatchNormAddReLU(s, in[2], in[3], rm, rv, s, true, 0.1, 1e-5)
		}}, 0, 1),
	})
}

func TestGlobalAvgPoolBlockedGrad(t *testing.T) {
	runOpCases(t, []opCase{
		blockedCase(opCase{"global pool", [][]int{{2, 32, 3, 5}}, func(in []*tensor.Tensor) *tensor.Tensor {
			return GlobalAvgPool(in[0])
		}}, 0),
	})
}

func TestScaleAddReLUBlockedGrad(t *testing.T) {
	shape := []int{2, 32, 3, 4}
	runOpCases(t, []opCase{
		blockedCase(opCase{"gate", [][]int{shape, {2, 32, 1, 1}, shape}, func(in []*tensor.Tensor) *tensor.Tensor {
			return ScaleAddReLU(in[0], in[1], in[2])
		}}, 0, 2),
		blockedCase(opCase{"gate, shortcut in NCHW", [][]int{shape, {2, 32, 1, 1}, shape}, func(in []*tensor.Tensor) *tensor.Tensor {
			return ScaleAddReLU(in[0], in[1], in[2])
		}}, 0),
		blockedCase(opCase{"x as its own shortcut", [][]int{shape, {2, 32, 1, 1}}, func(in []*tensor.Tensor) *tensor.Tensor {
			return ScaleAddReLU(in[0], in[1], in[0])
		}}, 0),
	})
}
