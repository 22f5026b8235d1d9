package cuda

import (
	"math"
	"math/rand/v2"
	"testing"
)

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// TestReferenceGradients checks the reference backward pass against central
// finite differences of the reference forward pass (loss = sum(out·w)).
func TestReferenceGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range []Shape{{3, 2, 2, 3}, {4, 3, 1, 5}, {2, 1, 3, 3}} {
		r := randomSRM(rng, s.C)
		x := randomInput(rng, s)
		w := randomInput(rng, s)
		g := r.backward(x, w, s, r.forward(x, s, true))
		loss := func() float64 { return dot(r.forward(x, s, true).out, w) }
		const h = 1e-6
		fd := func(v *float64) float64 {
			old := *v
			*v = old + h
			up := loss()
			*v = old - h
			down := loss()
			*v = old
			return (up - down) / (2 * h)
		}
		compare := func(name string, got []float64, param []float64) {
			t.Helper()
			for i := range param {
				want := fd(&param[i])
				if math.Abs(got[i]-want) > 1e-6*(1+math.Abs(want)) {
					t.Errorf("%v %s[%d]: backward %.9g, finite difference %.9g", s, name, i, got[i], want)
				}
			}
		}
		compare("dx", g.dx, x)
		compare("dcfc", g.dcfc, r.cfc)
		compare("dgamma", g.dgamma, r.gamma)
		compare("dbeta", g.dbeta, r.beta)
	}
}

// TestReferenceDefinition pins the reference to the SRM definition on a
// hand-checkable case and to the official initialisation's 0.5 gates.
func TestReferenceDefinition(t *testing.T) {
	s := Shape{N: 2, C: 1, H: 1, W: 2}
	r := &refSRM{c: 1, cfc: []float64{1, 2}, gamma: []float64{1}, beta: []float64{0},
		runningMean: []float64{0}, runningVar: []float64{1}, eps: 1e-5, momentum: 0.1}
	x := []float64{1, 3, 2, 2}
	f := r.forward(x, s, true)
	// Plane 0: mean 2, unbiased variance 2; plane 1: mean 2, variance 0.
	wantStd := []float64{math.Sqrt(2 + 1e-5), math.Sqrt(1e-5)}
	for p := range 2 {
		if f.mean[p] != 2 || math.Abs(f.std[p]-wantStd[p]) > 1e-15 {
			t.Fatalf("plane %d: mean %v std %v", p, f.mean[p], f.std[p])
		}
	}
	z0, z1 := 2+2*wantStd[0], 2+2*wantStd[1]
	m, v := (z0+z1)/2, (z0-z1)*(z0-z1)/4
	zh0 := (z0 - m) / math.Sqrt(v+1e-5)
	if math.Abs(f.zhat[0]-zh0) > 1e-12 || math.Abs(f.gate[0]-1/(1+math.Exp(-zh0))) > 1e-12 {
		t.Errorf("zhat %v gate %v, want %v", f.zhat[0], f.gate[0], zh0)
	}
	if math.Abs(f.runningMean[0]-0.1*m) > 1e-12 || math.Abs(f.runningVr[0]-(0.9+0.1*2*v)) > 1e-12 {
		t.Errorf("running stats %v %v", f.runningMean[0], f.runningVr[0])
	}

	init := &refSRM{c: 3, cfc: make([]float64, 6), gamma: []float64{1, 1, 1}, beta: make([]float64, 3),
		runningMean: make([]float64, 3), runningVar: []float64{1, 1, 1}, eps: 1e-5, momentum: 0.1}
	rng := rand.New(rand.NewPCG(3, 4))
	s = Shape{4, 3, 5, 5}
	for _, training := range []bool{true, false} {
		for _, g := range init.forward(randomInput(rng, s), s, training).gate {
			if g != 0.5 {
				t.Fatalf("training=%v: gate %v at initialisation, want 0.5", training, g)
			}
		}
	}
}
