package srm

import (
	"math"
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

// TestCFCFloat32MatchesFloat64 runs the float32 CFC (internal/simd's dot
// forward, AffineAdd backward) at GE-θ's shape, maps long enough for the
// vector loops and their tails, against float64.
// TestCFCFloat32MatchesFloat64 runs GE-θ's gather in float32, in NCHW
// and on a map in the blocked layout (with a gradient for x there
// already, which the blocked pass adds to), against float64.
func TestCFCFloat32MatchesFloat64(t *testing.T) {
	for _, c := range []int{4, 32} {
		testCFCFloat32(t, c, false)
	}
	testCFCFloat32(t, 32, true)
}

func testCFCFloat32(t *testing.T, c int, blocked bool) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, h, w = 3, 9, 9
	xv, wv, bv, gv := make([]float64, n*c*h*w), make([]float64, c*h*w), make([]float64, c), make([]float64, n*c)
	for _, s := range [][]float64{xv, wv, bv, gv} {
		for i := range s {
			s[i] = r.NormFloat64()
		}
	}
	var res [2][4][]float64 // z, dx, dw, db per type
	for i, dt := range []tensor.DType{tensor.Float64, tensor.Float32} {
		x := tensor.FromFloat64(xv, n, c, h, w).As(dt).SetRequiresGrad(true)
		x.Grad = tensor.New(dt, x.Shape()...)
		x.Grad.Fill(0.25)
		wt := tensor.FromFloat64(wv, c, 1, h, w).As(dt).SetRequiresGrad(true)
		b := tensor.FromFloat64(bv, c).As(dt).SetRequiresGrad(true)
		if blocked && dt == tensor.Float32 {
			tensor.Blocked16(x)
			tensor.Blocked16(x.Grad)
		}
		z := CFC(x, wt, b)
		if blocked && dt == tensor.Float32 && !tensor.IsBlocked16(x) {
			t.Fatal("the blocked gather converted its input")
		}
		z.BackwardWith(tensor.FromFloat64(gv, n, c, 1, 1).As(dt))
		res[i] = [4][]float64{z.Float64s(), x.Grad.Float64s(), wt.Grad.Float64s(), b.Grad.Float64s()}
	}
	for k, name := range []string{"z", "dx", "dw", "db"} {
		for j, want := range res[0][k] {
			// Sums of up to 81 terms of magnitude about 1, rounded once
			// to float32; the gradients add up to 3 float32 products.
			if got := res[1][k][j]; math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
				t.Errorf("C=%d blocked %v: %s[%d]: float32 %v, float64 %v", c, blocked, name, j, got, want)
			}
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
