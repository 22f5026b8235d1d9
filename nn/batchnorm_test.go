package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

func TestBatchNorm2dState(t *testing.T) {
	b := NewBatchNorm2d(3)
	want := []struct {
		name   string
		buffer bool
		fill   float64
		shape  []int
	}{
		{"weight", false, 1, []int{3}},
		{"bias", false, 0, []int{3}},
		{"running_mean", true, 0, []int{3}},
		{"running_var", true, 1, []int{3}},
		{"num_batches_tracked", true, 0, []int{}},
	}
	vars := b.Vars()
	if len(vars) != len(want) {
		t.Fatalf("%d vars, want %d", len(vars), len(want))
	}
	for i, w := range want {
		v := vars[i]
		if v.Name != w.name || v.Buffer != w.buffer || v.NoDecay || v.Value.DType() != tensor.Float32 ||
			len(v.Value.Shape()) != len(w.shape) || (len(w.shape) == 1 && v.Value.Dim(0) != w.shape[0]) {
			t.Errorf("var %d: %+v, want %s %v buffer=%v", i, v, w.name, w.shape, w.buffer)
		}
		for j := range v.Value.Len() {
			if v.Value.At(j) != w.fill {
				t.Errorf("%s[%d] = %v, want %v", v.Name, j, v.Value.At(j), w.fill)
			}
		}
		if v.Value.RequiresGrad() == w.buffer {
			t.Errorf("%s: RequiresGrad %v", v.Name, v.Value.RequiresGrad())
		}
	}
	if !b.Training || b.Momentum != 0.1 || b.Eps != 1e-5 {
		t.Errorf("defaults: training %v, momentum %v, eps %v", b.Training, b.Momentum, b.Eps)
	}
	if ps := Params(b); len(ps) != 2 || ps[0] != b.Weight || ps[1] != b.Bias {
		t.Errorf("Params = %v, want weight and bias", ps)
	}

	b.NoDecay = true
	for _, v := range b.Vars() {
		if v.NoDecay == v.Buffer {
			t.Errorf("with NoDecay: %s NoDecay=%v", v.Name, v.NoDecay)
		}
	}
}

func TestBatchNorm2dForward(t *testing.T) {
	b := NewBatchNorm2d(1)
	// One channel holding 1, 2, 3, 4: mean 2.5, unbiased variance 5/3.
	x := tensor.FromFloat32([]float32{1, 2, 3, 4}, 2, 1, 1, 2)
	for step := 1; step <= 2; step++ {
		y := b.Forward(x)
		if got, want := y.At(3), 1.5/math.Sqrt(1.25+1e-5); math.Abs(got-want) > 1e-6 {
			t.Errorf("step %d: y[3] = %v, want %v", step, got, want)
		}
		if b.NumBatchesTracked.Item() != float64(step) {
			t.Errorf("step %d: num_batches_tracked = %v", step, b.NumBatchesTracked.Item())
		}
	}
	// Two updates from (0, 1): mean 0.25 then 0.475; var 1.0667 then 1.1267.
	wantMean, wantVar := 0.9*0.25+0.25, 0.9*(0.9+0.5/3)+0.5/3
	if math.Abs(b.RunningMean.At(0)-wantMean) > 1e-6 || math.Abs(b.RunningVar.At(0)-wantVar) > 1e-6 {
		t.Errorf("running stats (%v, %v), want (%v, %v)", b.RunningMean.At(0), b.RunningVar.At(0), wantMean, wantVar)
	}

	b.SetTraining(false)
	before := b.RunningMean.At(0)
	y := b.Forward(tensor.FromFloat32([]float32{float32(before)}, 1, 1))
	if b.NumBatchesTracked.Item() != 2 || b.RunningMean.At(0) != before || math.Abs(y.At(0)) > 1e-6 {
		t.Errorf("evaluation: y %v, tracked %v, running mean %v", y.At(0), b.NumBatchesTracked.Item(), b.RunningMean.At(0))
	}
}

func TestBatchNorm2dGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, training := range []bool{true, false} {
		for _, shape := range [][]int{{4, 3, 3, 2}, {5, 3}, {2, 3, 1, 1}} {
			b := NewBatchNorm2d(3)
			Cast(b, tensor.Float64)
			b.Weight.FillNormal(r, 1, 0.5)
			b.Bias.FillNormal(r, 0, 0.5)
			b.RunningMean.FillNormal(r, 0, 1)
			b.RunningVar.FillUniform(r, 0.5, 2)
			b.SetTraining(training)
			x := gradcheck.Rand64(r, shape...)
			gradcheck.Check(t, func() *tensor.Tensor { return b.Forward(x) }, []*tensor.Tensor{x, b.Weight, b.Bias}, 0, 1e-6)
		}
	}
}
