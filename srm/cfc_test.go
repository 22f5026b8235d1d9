package srm

import (
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

func TestCFCValues(t *testing.T) {
	// Two channels of two statistics, one image, with a bias.
	x := tensor.FromFloat64([]float64{1, 2, 3, 4}, 1, 2, 2)
	w := tensor.FromFloat64([]float64{10, 1, -1, 2}, 2, 2)
	b := tensor.FromFloat64([]float64{0.5, 0}, 2)
	got := CFC(x, w, b)
	if s := got.Shape(); len(s) != 4 || s[0] != 1 || s[1] != 2 || s[2] != 1 || s[3] != 1 {
		t.Fatalf("shape %v, want (1, 2, 1, 1)", s)
	}
	if z := got.Float64s(); z[0] != 12.5 || z[1] != 5 {
		t.Errorf("got %v, want [12.5 5]", z)
	}
}

func TestCFCGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, bias := range []bool{false, true} {
		// A (N, C, K) input as SRM's and an (N, C, H, W) one with a
		// (C, 1, H, W) kernel as GE-θ's global gather.
		for _, shapes := range [][2][]int{{{3, 4, 2}, {4, 2}}, {{2, 3, 3, 2}, {3, 1, 3, 2}}} {
			x, w := gradcheck.Rand64(r, shapes[0]...), gradcheck.Rand64(r, shapes[1]...)
			wrt := []*tensor.Tensor{x, w}
			var b *tensor.Tensor
			if bias {
				b = gradcheck.Rand64(r, shapes[1][0])
				wrt = append(wrt, b)
			}
			gradcheck.Check(t, func() *tensor.Tensor { return CFC(x, w, b) }, wrt, 0, 1e-6)
		}
	}
}

func TestCFCShapeErrors(t *testing.T) {
	x := tensor.New(tensor.Float64, 2, 3, 2)
	for name, f := range map[string]func(){
		"weight size":   func() { CFC(x, tensor.New(tensor.Float64, 3, 3), nil) },
		"weight rows":   func() { CFC(x, tensor.New(tensor.Float64, 2, 3), nil) },
		"bias size":     func() { CFC(x, tensor.New(tensor.Float64, 3, 2), tensor.New(tensor.Float64, 2)) },
		"mixed types":   func() { CFC(x, tensor.New(tensor.Float32, 3, 2), nil) },
		"no channel ax": func() { CFC(tensor.New(tensor.Float64, 3), tensor.New(tensor.Float64, 3), nil) },
	} {
		if shapePanic(f) == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
