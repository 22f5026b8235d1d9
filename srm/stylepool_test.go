package srm

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

// allPoolings lists every non-empty subset of {avg, std, max}.
var allPoolings = []Pooling{
	PoolAvg, PoolStd, PoolMax,
	PoolAvg | PoolStd, PoolAvg | PoolMax, PoolStd | PoolMax,
	PoolAvg | PoolStd | PoolMax,
}

func TestStylePoolValues(t *testing.T) {
	// One plane, 1..4: mean 2.5, Σ(x−m)² = 5, max 4.
	x := tensor.FromFloat64([]float64{1, 2, 3, 4}, 1, 1, 2, 2)
	for _, tc := range []struct {
		p      Pooling
		biased bool
		want   []float64
	}{
		{OfficialPooling, false, []float64{2.5, math.Sqrt(5.0/3 + StyleEps)}},
		{OfficialPooling, true, []float64{2.5, math.Sqrt(5.0/4 + StyleEps)}},
		{PoolAvg | PoolStd | PoolMax, false, []float64{2.5, math.Sqrt(5.0/3 + StyleEps), 4}},
		{PoolMax | PoolAvg, false, []float64{2.5, 4}},
	} {
		got := StylePool(x, tc.p, tc.biased).Float64s()
		for i := range tc.want {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("%v biased=%v: got %v, want %v", tc.p, tc.biased, got, tc.want)
				break
			}
		}
	}
}

func TestStylePoolFloat32MatchesFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := gradcheck.Rand64(r, 2, 3, 5, 4)
	all := PoolAvg | PoolStd | PoolMax
	want := StylePool(x.Detach(), all, false).Float64s()
	got := StylePool(x.As(tensor.Float32), all, false).Float64s()
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-5 {
			t.Fatalf("element %d: float32 %v, float64 %v", i, got[i], want[i])
		}
	}
}

// TestStylePoolFloat32Offset runs the float32 pooling (internal/simd's
// one-pass shifted sums forward, its AffineAdd backward) on planes long
// enough for the vector loops and their tails, with a mean 100 times the
// spread, against float64: the shifted sums keep the variance, and the
// gradient stays within float32 roundings of the mean's scale.
func TestStylePoolFloat32Offset(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const n, c, h, w = 2, 3, 9, 9
	xv, gv := make([]float64, n*c*h*w), make([]float64, n*c*3)
	for i := range xv {
		xv[i] = 100 + r.NormFloat64()
	}
	for i := range gv {
		gv[i] = r.NormFloat64()
	}
	all := PoolAvg | PoolStd | PoolMax
	for _, biased := range []bool{false, true} {
		var outs, grads [2][]float64
		for i, dt := range []tensor.DType{tensor.Float64, tensor.Float32} {
			x := tensor.FromFloat64(xv, n, c, h, w).As(dt).SetRequiresGrad(true)
			y := StylePool(x, all, biased)
			y.BackwardWith(tensor.FromFloat64(gv, n, c, 3).As(dt))
			outs[i], grads[i] = y.Float64s(), x.Grad.Float64s()
		}
		for i := range outs[0] {
			if math.Abs(outs[1][i]-outs[0][i]) > 1e-5*math.Abs(outs[0][i]) {
				t.Errorf("biased=%v: feature %d float32 %v, float64 %v", biased, i, outs[1][i], outs[0][i])
			}
		}
		for i := range grads[0] {
			// The gradient's terms are gStd·(x−m) with |m| ≈ 100|x−m|.
			if math.Abs(grads[1][i]-grads[0][i]) > 1e-6 { // gradients of about 0.02
				t.Errorf("biased=%v: gradient %d float32 %v, float64 %v", biased, i, grads[1][i], grads[0][i])
			}
		}
	}
}

func TestStylePoolGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range allPoolings {
		for _, biased := range []bool{false, true} {
			x := gradcheck.Rand64(r, 2, 3, 3, 4)
			if err := gradcheck.Compare(func() *tensor.Tensor { return StylePool(x, p, biased) }, []*tensor.Tensor{x}, 0, 1e-6); err != nil {
				t.Errorf("%v biased=%v: %v", p, biased, err)
			}
		}
	}
}

func TestStylePoolOneByOne(t *testing.T) {
	x := tensor.New(tensor.Float64, 2, 3, 1, 1)
	err := shapePanic(func() { StylePool(x, OfficialPooling, false) })
	if err == nil || !strings.Contains(err.Error(), "1x1") {
		t.Errorf("unbiased std of a 1x1 map: got %v, want an error naming the 1x1 map", err)
	}
	for _, biased := range []bool{true, false} {
		if err := shapePanic(func() { StylePool(x, PoolAvg|PoolMax, biased) }); err != nil {
			t.Errorf("avg+max of a 1x1 map: %v", err)
		}
	}
	if err := shapePanic(func() { StylePool(x, OfficialPooling, true) }); err != nil {
		t.Errorf("biased std of a 1x1 map: %v", err)
	}
}

func TestParsePooling(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Pooling
		ok   bool
	}{
		{"avg+std", OfficialPooling, true},
		{"max+avg", PoolAvg | PoolMax, true},
		{"std", PoolStd, true},
		{"avg+std+max", PoolAvg | PoolStd | PoolMax, true},
		{"avg+avg", 0, false},
		{"mean", 0, false},
		{"", 0, false},
	} {
		got, err := ParsePooling(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePooling(%q) = %v, %v", tc.in, got, err)
		}
	}
	if s := (PoolMax | PoolAvg).String(); s != "avg+max" {
		t.Errorf("String: %q", s)
	}
}

// shapePanic runs f and returns the *tensor.ShapeError it panics with.
func shapePanic(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = r.(*tensor.ShapeError)
		}
	}()
	f()
	return nil
}

// Style pooling of a map in the blocked layout (mean and std; max is not
// blocked) computes what NCHW does, forward and backward, with x's
// gradient new or added to, and leaves x in the layout.
func TestStylePoolBlocked(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	x := tensor.New(tensor.Float32, 3, 32, 5, 6)
	x.FillNormal(r, 2, 1.5)
	for _, p := range []Pooling{PoolAvg | PoolStd, PoolAvg, PoolStd} {
		seed := tensor.New(tensor.Float32, 3, 32, p.Len())
		seed.FillNormal(r, 0, 1)
		for _, biased := range []bool{false, true} {
			for _, earlier := range []bool{false, true} {
				outs, grads := inBothLayouts(t, x, seed, earlier, func(x *tensor.Tensor) *tensor.Tensor {
					return StylePool(x, p, biased)
				})
				for i := range outs[0] {
					if d := math.Abs(outs[1][i] - outs[0][i]); d > 1e-6*(1+math.Abs(outs[0][i])) {
						t.Fatalf("%v biased %v: output %d is %v, NCHW %v", p, biased, i, outs[1][i], outs[0][i])
					}
				}
				for i := range grads[0] {
					if d := math.Abs(grads[1][i] - grads[0][i]); d > 1e-5*(1+math.Abs(grads[0][i])) {
						t.Fatalf("%v biased %v earlier %v: dx[%d] is %v, NCHW %v", p, biased, earlier, i, grads[1][i], grads[0][i])
					}
				}
			}
		}
	}
}
