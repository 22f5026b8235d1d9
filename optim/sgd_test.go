package optim

import (
	"math"
	"testing"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/tensor"
)

// grads is the gradient every parameter receives on steps 1, 2 and 3 of
// the hand-computed sequences below.
var grads = []float64{1, 1, -2}

// model returns a parameter "w" that takes weight decay, starting at 2, a
// NoDecay parameter "bn.weight" starting at 1, and a buffer.
func model(dt tensor.DType) []nn.Var {
	w, bn := tensor.Scalar(dt, 2).SetRequiresGrad(true), tensor.Scalar(dt, 1).SetRequiresGrad(true)
	return []nn.Var{
		{Name: "w", Value: w},
		{Name: "bn.weight", Value: bn, NoDecay: true},
		{Name: "bn.running_mean", Value: tensor.Scalar(dt, 5), Buffer: true},
	}
}

// setGrads gives every trainable var the gradient g.
func setGrads(vars []nn.Var, g float64) {
	for _, v := range vars {
		if !v.Buffer {
			v.Value.Grad = tensor.Scalar(v.Value.DType(), g)
		}
	}
}

func TestSGDSequences(t *testing.T) {
	// Worked by hand from torch.optim.SGD's update with lr 0.1, momentum
	// 0.9, weight decay 0.1. For bn.weight (no decay, from 1):
	//   plain:    buf 1, 1.9, −0.29;  p 0.9, 0.71, 0.739
	//   Nesterov: d 1.9, 2.71, −2.261; p 0.81, 0.539, 0.7651
	// For w (decay, from 2):
	//   plain:    d 1.2, 1.188, −1.83468; buf 1.2, 2.268, 0.20652;
	//             p 1.88, 1.6532, 1.632548
	//   Nesterov: buf 1.2, 2.2572, 0.1765932; d 2.28, 3.20868, −1.69595292;
	//             p 1.772, 1.451132, 1.620727292
	for _, c := range []struct {
		nesterov bool
		w, bn    []float64
	}{
		{false, []float64{1.88, 1.6532, 1.632548}, []float64{0.9, 0.71, 0.739}},
		{true, []float64{1.772, 1.451132, 1.620727292}, []float64{0.81, 0.539, 0.7651}},
	} {
		for _, dt := range []tensor.DType{tensor.Float64, tensor.Float32} {
			vars := model(dt)
			opt := NewSGD(vars, 0.1, 0.9, 0.1, c.nesterov)
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 1e-6
			}
			for i, g := range grads {
				setGrads(vars, g)
				opt.Step()
				if w, bn := vars[0].Value.Item(), vars[1].Value.Item(); math.Abs(w-c.w[i]) > tol || math.Abs(bn-c.bn[i]) > tol {
					t.Errorf("nesterov %v %v step %d: w %.10g, bn %.10g; want %.10g, %.10g", c.nesterov, dt, i+1, w, bn, c.w[i], c.bn[i])
				}
			}
			if vars[2].Value.Item() != 5 {
				t.Errorf("buffer moved to %v", vars[2].Value.Item())
			}
		}
	}
}

func TestSGDGroups(t *testing.T) {
	vars := model(tensor.Float64)
	opt := NewSGD(vars, 0.1, 0.9, 5e-4, false)
	if len(opt.Groups) != 2 || len(opt.Groups[0].Params) != 1 || opt.Groups[0].Params[0].Name != "w" ||
		opt.Groups[0].WeightDecay != 5e-4 || len(opt.Groups[1].Params) != 1 || opt.Groups[1].WeightDecay != 0 {
		t.Errorf("groups %+v", opt.Groups)
	}
}

func TestSGDWithoutMomentumAndSkipping(t *testing.T) {
	vars := model(tensor.Float64)
	opt := NewSGD(vars, 0.1, 0, 0.1, false)
	vars[0].Value.Grad = tensor.Scalar(tensor.Float64, 1)
	opt.Step()
	// p − lr·(g + wd·p) = 2 − 0.1·1.2; bn.weight has no gradient and stays.
	if w, bn := vars[0].Value.Item(), vars[1].Value.Item(); math.Abs(w-1.88) > 1e-12 || bn != 1 {
		t.Errorf("w %v, bn %v; want 1.88, 1", w, bn)
	}
	if opt.MomentumBuffer("w") != nil {
		t.Error("momentum buffer without momentum")
	}
	opt.ZeroGrad()
	if vars[0].Value.Grad != nil {
		t.Error("ZeroGrad kept a gradient")
	}
	opt.Step()
	if vars[0].Value.Item() != 1.88 {
		t.Error("Step moved a parameter without gradient")
	}
}

func TestSGDSetLRAndResume(t *testing.T) {
	// The plain sequences with lr 0.01 on step 3: bn.weight goes to
	// 0.71 − 0.01·(−0.29).
	vars := model(tensor.Float64)
	opt := NewSGD(vars, 0.1, 0.9, 0.1, false)
	for _, g := range grads[:2] {
		setGrads(vars, g)
		opt.Step()
	}
	if b := opt.MomentumBuffer("bn.weight"); b == nil || math.Abs(b.Item()-1.9) > 1e-12 {
		t.Fatalf("momentum buffer after 2 steps: %v", b)
	}

	// A fresh optimiser restored from a checkpoint continues identically.
	resumed := NewSGD(vars, 0.1, 0.9, 0.1, false)
	for _, name := range []string{"w", "bn.weight"} {
		if err := resumed.SetMomentumBuffer(name, opt.MomentumBuffer(name).As(tensor.Float32)); err != nil {
			t.Fatal(err)
		}
	}
	resumed.SetLR(0.01)
	setGrads(vars, grads[2])
	resumed.Step()
	// The buffers went through float32, hence the tolerance; w's plain
	// sequence gives 1.6532 − 0.01·0.20652.
	if w, bn := vars[0].Value.Item(), vars[1].Value.Item(); math.Abs(w-1.6511348) > 1e-8 || math.Abs(bn-0.7129) > 1e-8 {
		t.Errorf("w %v, bn.weight %v after resumed step, want 1.6511348, 0.7129", w, bn)
	}
	if resumed.Groups[0].LR != 0.01 || resumed.Groups[1].LR != 0.01 {
		t.Errorf("SetLR: groups %+v", resumed.Groups)
	}

	if err := resumed.SetMomentumBuffer("bn.running_mean", tensor.Scalar(tensor.Float64, 0)); err == nil {
		t.Error("buffer accepted for a non-parameter")
	}
	if err := resumed.SetMomentumBuffer("w", tensor.New(tensor.Float64, 2)); err == nil {
		t.Error("buffer of the wrong size accepted")
	}
}

func TestNewSGDRejects(t *testing.T) {
	for _, c := range []struct{ lr, momentum, wd float64 }{{-1, 0.9, 0}, {0.1, -0.1, 0}, {0.1, 0.9, -1}, {0.1, 0, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewSGD(lr %v, momentum %v, wd %v, nesterov) did not panic", c.lr, c.momentum, c.wd)
				}
			}()
			NewSGD(nil, c.lr, c.momentum, c.wd, true)
		}()
	}
}
