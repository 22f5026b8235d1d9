package srm

import (
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

func TestShortcutAValues(t *testing.T) {
	x := tensor.FromFloat64([]float64{
		1, 2, 3,
		4, 5, 6,
		7, 8, 9,
	}, 1, 1, 3, 3)
	got := shortcutA{stride: 2, out: 2}.Forward(x)
	want := []float64{1, 3, 7, 9, 0, 0, 0, 0}
	if s := got.Shape(); s[1] != 2 || s[2] != 2 || s[3] != 2 {
		t.Fatalf("shape %v, want (1, 2, 2, 2)", s)
	}
	for i, v := range got.Float64s() {
		if v != want[i] {
			t.Fatalf("got %v, want %v", got.Float64s(), want)
		}
	}
}

func TestShortcutAGradient(t *testing.T) {
	x := gradcheck.Rand64(rand.New(rand.NewPCG(9, 9)), 2, 3, 5, 4)
	gradcheck.Check(t, func() *tensor.Tensor { return shortcutA{stride: 2, out: 6}.Forward(x) }, []*tensor.Tensor{x}, 0, 1e-6)
}
