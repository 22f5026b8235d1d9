package srm

import (
	"math/rand/v2"
	"slices"
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

// Shortcut A on a map in the blocked layout keeps it there and computes
// what it computes in NCHW, forward and backward, with x's gradient made
// by the shortcut or added to one a convolution left.
func TestShortcutABlocked(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	x := tensor.New(tensor.Float32, 2, 16, 5, 6)
	x.FillNormal(r, 0, 1)
	seed := tensor.New(tensor.Float32, 2, 32, 3, 3)
	seed.FillNormal(r, 0, 1)
	for _, earlier := range []bool{false, true} {
		outs, grads := inBothLayouts(t, x, seed, earlier, func(x *tensor.Tensor) *tensor.Tensor {
			y := shortcutA{stride: 2, out: 32}.Forward(x)
			if tensor.IsBlocked16(y) != tensor.IsBlocked16(x) {
				t.Fatalf("input blocked %v, output blocked %v", tensor.IsBlocked16(x), tensor.IsBlocked16(y))
			}
			return y
		})
		if !slices.Equal(outs[0], outs[1]) || !slices.Equal(grads[0], grads[1]) {
			t.Fatalf("earlier gradient %v: blocked output or gradient differs from NCHW's", earlier)
		}
	}
}

// inBothLayouts runs f on two copies of x, one in NCHW and one in the
// blocked layout (each with a gradient of 0.5 already there, in its
// layout, when earlier is set), back-propagates seed, and returns both
// runs' outputs and x's gradients. It fails t where the blocked run
// converted its input, which an operation that read NCHW would have.
func inBothLayouts(t *testing.T, x, seed *tensor.Tensor, earlier bool, f func(*tensor.Tensor) *tensor.Tensor) (outs, grads [2][]float64) {
	t.Helper()
	for i, blocked := range []bool{false, true} {
		xi := x.Clone().SetRequiresGrad(true)
		if earlier {
			xi.Grad = tensor.New(tensor.Float32, xi.Shape()...)
			xi.Grad.Fill(0.5)
		}
		if blocked {
			tensor.Blocked16(xi)
			if earlier {
				tensor.Blocked16(xi.Grad)
			}
		}
		y := f(xi)
		if blocked && !tensor.IsBlocked16(xi) {
			t.Fatal("the blocked run converted its input to NCHW")
		}
		y.BackwardWith(seed.Clone())
		outs[i], grads[i] = y.Float64s(), xi.Grad.Float64s()
	}
	return outs, grads
}
