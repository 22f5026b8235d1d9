package op

import (
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

func TestShapeGrad(t *testing.T) {
	runOpCases(t, []opCase{
		{"Reshape", [][]int{{2, 3, 4}}, func(in []*tensor.Tensor) *tensor.Tensor { return Reshape(in[0], 4, 6) }},
		{"Flatten", [][]int{{2, 3, 2, 2}}, func(in []*tensor.Tensor) *tensor.Tensor { return Flatten(in[0]) }},
		// Through a view and back, the gradient must reach x once per use.
		{"Reshape twice", [][]int{{3, 4}}, func(in []*tensor.Tensor) *tensor.Tensor {
			return Mul(Reshape(in[0], 2, 6), Reshape(Sigmoid(in[0]), 2, 6))
		}},
	})
}

func TestShapeForward(t *testing.T) {
	x := seq64(0, 2, 3, 1, 2)
	f := Flatten(x)
	valuesAre(t, "Flatten", f, []int{2, 6}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	// A view, as in PyTorch: writes through x show in the result.
	x.Set(5, -1)
	if f.At(5) != -1 {
		t.Errorf("Flatten copied its input")
	}
	if s := Flatten(tensor.New(tensor.Float32, 0, 3, 2)).Shape(); len(s) != 2 || s[0] != 0 || s[1] != 6 {
		t.Errorf("Flatten of an empty batch: shape %v, want [0 6]", s)
	}
	valuesAre(t, "Reshape", Reshape(seq64(0, 4), 2, 1, 2), []int{2, 1, 2}, 0, 1, 2, 3)
}

func TestShapePanics(t *testing.T) {
	panicsWithShapeError(t, "Reshape size", func() { Reshape(tensor.New(tensor.Float64, 2, 3), 4, 2) })
	panicsWithShapeError(t, "Flatten scalar", func() { Flatten(tensor.Scalar(tensor.Float64, 1)) })
}
