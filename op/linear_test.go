package op

import (
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

func TestLinearGradients(t *testing.T) {
	runOpCases(t, []opCase{
		{"bias", [][]int{{5, 3}, {4, 3}, {4}}, func(in []*tensor.Tensor) *tensor.Tensor { return Linear(in[0], in[1], in[2]) }},
		{"no bias", [][]int{{5, 3}, {4, 3}}, func(in []*tensor.Tensor) *tensor.Tensor { return Linear(in[0], in[1], nil) }},
		{"one row", [][]int{{1, 6}, {2, 6}, {2}}, func(in []*tensor.Tensor) *tensor.Tensor { return Linear(in[0], in[1], in[2]) }},
	})
}

func TestLinearForward(t *testing.T) {
	x := seq64(0, 2, 3)                                         // [0 1 2; 3 4 5]
	w := tensor.FromFloat64([]float64{1, 0, -1, 2, 1, 0}, 2, 3) // rows (1 0 −1), (2 1 0)
	b := tensor.FromFloat64([]float64{10, 20}, 2)
	valuesAre(t, "x·wᵀ+b", Linear(x, w, b), []int{2, 2}, 10-2, 20+1, 10-2, 20+10)
	valuesAre(t, "x·wᵀ", Linear(x, w, nil), []int{2, 2}, -2, 1, -2, 10)
}

// TestLinearGradientsOnlyWhereNeeded checks that a weight outside the graph
// gets no gradient while the input still does, as for a frozen layer.
func TestLinearGradientsOnlyWhereNeeded(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := gradcheck.Rand64(r, 3, 4)
	w := gradcheck.Rand64(r, 2, 4).SetRequiresGrad(false)
	b := gradcheck.Rand64(r, 2).SetRequiresGrad(false)
	gradcheck.Check(t, func() *tensor.Tensor { return Linear(x, w, b) }, []*tensor.Tensor{x}, 0, 1e-6)
	if w.Grad != nil || b.Grad != nil {
		t.Error("frozen weight or bias got a gradient")
	}
}

func TestLinearShapeMisuse(t *testing.T) {
	f32 := func(shape ...int) *tensor.Tensor { return tensor.Zeros(shape...) }
	for _, tc := range []struct {
		name    string
		x, w, b *tensor.Tensor
	}{
		{"input not 2-D", f32(2, 3, 1), f32(4, 3), nil},
		{"weight not 2-D", f32(2, 3), f32(12), nil},
		{"in mismatch", f32(2, 3), f32(4, 2), nil},
		{"bias length", f32(2, 3), f32(4, 3), f32(3)},
		{"bias rank", f32(2, 3), f32(4, 3), f32(1, 4)},
		{"mixed types", f32(2, 3), tensor.New(tensor.Float64, 4, 3), nil},
	} {
		panicsWithShapeError(t, tc.name, func() { Linear(tc.x, tc.w, tc.b) })
	}
}
