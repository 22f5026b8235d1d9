package gradcheck

import (
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

// square is x² with a deliberately switchable backward, so the test shows
// that Compare both accepts a right gradient and rejects a wrong one.
func square(x *tensor.Tensor, factor float64) *tensor.Tensor {
	out := tensor.ZerosLike(x)
	for i, v := range x.F64() {
		out.F64()[i] = v * v
	}
	tensor.Record(out, func(g *tensor.Tensor) {
		gx := tensor.GradOf(x).F64()
		for i, v := range x.F64() {
			gx[i] += factor * v * g.F64()[i]
		}
	}, x)
	return out
}

func TestCompare(t *testing.T) {
	x := Rand64(rand.New(rand.NewPCG(1, 1)), 3, 4)
	if err := Compare(func() *tensor.Tensor { return square(x, 2) }, []*tensor.Tensor{x}, 0, 1e-6); err != nil {
		t.Errorf("right gradient rejected: %v", err)
	}
	if err := Compare(func() *tensor.Tensor { return square(x, 2.01) }, []*tensor.Tensor{x}, 0, 1e-6); err == nil {
		t.Error("wrong gradient accepted")
	}
}
