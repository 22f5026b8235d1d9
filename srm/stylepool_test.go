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
