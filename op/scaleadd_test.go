package op

import (
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

func TestScaleAddReLUGradients(t *testing.T) {
	runOpCases(t, []opCase{
		{name: "2x3x4x5", shapes: [][]int{{2, 3, 4, 5}, {2, 3, 1, 1}, {2, 3, 4, 5}},
			f: func(in []*tensor.Tensor) *tensor.Tensor { return ScaleAddReLU(in[0], in[1], in[2]) }},
		{name: "1x1 planes", shapes: [][]int{{3, 2, 1, 1}, {3, 2, 1, 1}, {3, 2, 1, 1}},
			f: func(in []*tensor.Tensor) *tensor.Tensor { return ScaleAddReLU(in[0], in[1], in[2]) }},
		// The shortcut is x itself: both gradients land in one buffer.
		{name: "shortcut is x", shapes: [][]int{{2, 2, 3, 3}, {2, 2, 1, 1}},
			f: func(in []*tensor.Tensor) *tensor.Tensor { return ScaleAddReLU(in[0], in[1], in[0]) }},
		// The output feeds two consumers, so it keeps no gradient of its own
		// to hand on, and backward runs on a gradient it does not own.
		{name: "output used twice", shapes: [][]int{{2, 2, 3, 3}, {2, 2, 1, 1}, {2, 2, 3, 3}},
			f: func(in []*tensor.Tensor) *tensor.Tensor {
				y := ScaleAddReLU(in[0], in[1], in[2])
				return Add(y, Mul(y, y))
			}},
	})
}

// TestScaleAddReLUMatchesParts checks the fused op against the operations
// it replaces, forward and backward, in float32.
func TestScaleAddReLUMatchesParts(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	mk := func() []*tensor.Tensor {
		r := rand.New(rand.NewPCG(r.Uint64(), 1))
		return []*tensor.Tensor{
			gradcheck.Rand64(r, 4, 16, 8, 8).As(tensor.Float32).SetRequiresGrad(true),
			gradcheck.Rand64(r, 4, 16, 1, 1).As(tensor.Float32).SetRequiresGrad(true),
			gradcheck.Rand64(r, 4, 16, 8, 8).As(tensor.Float32).SetRequiresGrad(true),
		}
	}
	a := mk()
	b := make([]*tensor.Tensor, 3)
	for i, v := range a {
		b[i] = v.Clone().SetRequiresGrad(true)
	}
	fused, parts := ScaleAddReLU(a[0], a[1], a[2]), AddReLU(Mul(b[0], b[1]), b[2])
	seed := tensor.New(tensor.Float32, fused.Shape()...)
	seed.FillNormal(r, 0, 1)
	fused.BackwardWith(seed)
	parts.BackwardWith(seed)
	closeTo(t, "output", fused, parts, 1e-6)
	for i := range a {
		closeTo(t, "gradient", a[i].Grad, b[i].Grad, 1e-5)
	}
}

func TestScaleAddReLUMisuse(t *testing.T) {
	x, g := tensor.New(tensor.Float32, 2, 3, 4, 4), tensor.New(tensor.Float32, 2, 3, 1, 1)
	panicsWithShapeError(t, "gate of x's shape", func() { ScaleAddReLU(x, x, x) })
	panicsWithShapeError(t, "shortcut of another shape", func() { ScaleAddReLU(x, g, tensor.New(tensor.Float32, 2, 3, 2, 2)) })
	panicsWithShapeError(t, "3-D x", func() { ScaleAddReLU(tensor.New(tensor.Float32, 2, 3, 4), g, tensor.New(tensor.Float32, 2, 3, 4)) })
}
