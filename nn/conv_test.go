package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// moments returns the mean and standard deviation of t's elements.
func moments(t *tensor.Tensor) (mean, std float64) {
	for _, v := range t.Float64s() {
		mean += v
	}
	mean /= float64(t.Len())
	for _, v := range t.Float64s() {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(t.Len()))
}

// checkUniform fails t unless every element of x lies in [−bound, bound]
// and the spread is that of U(−bound, bound) (std bound/√3).
func checkUniform(t *testing.T, what string, x *tensor.Tensor, bound float64) {
	t.Helper()
	for i, v := range x.Float64s() {
		if math.Abs(v) > bound {
			t.Fatalf("%s[%d] = %v outside ±%v", what, i, v, bound)
		}
	}
	if _, std := moments(x); math.Abs(std-bound/math.Sqrt(3)) > 0.1*bound {
		t.Errorf("%s: std %v, want about %v", what, std, bound/math.Sqrt(3))
	}
}

// checkVars fails t unless vars are exactly weight w and (when b is not
// nil) bias b, trainable, in that order.
func checkVars(t *testing.T, vars []Var, w, b *tensor.Tensor) {
	t.Helper()
	want := []Var{{Name: "weight", Value: w}}
	if b != nil {
		want = append(want, Var{Name: "bias", Value: b})
	}
	if len(vars) != len(want) {
		t.Fatalf("%d vars, want %d", len(vars), len(want))
	}
	for i := range want {
		if vars[i] != want[i] {
			t.Errorf("var %d = %+v, want %+v", i, vars[i], want[i])
		}
		if !vars[i].Value.RequiresGrad() || vars[i].Value.DType() != tensor.Float32 {
			t.Errorf("%s: RequiresGrad %v, %v", vars[i].Name, vars[i].Value.RequiresGrad(), vars[i].Value.DType())
		}
	}
}

func TestNewConv2d(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := NewConv2d(r, 32, 64, 3, 2, 1, 1, true)
	if c.In != 32 || c.Out != 64 || c.KernelH != 3 || c.KernelW != 3 || c.Stride != 2 || c.Pad != 1 || c.Groups != 1 {
		t.Errorf("geometry %+v", c)
	}
	if s := c.Weight.Shape(); len(s) != 4 || s[0] != 64 || s[1] != 32 || s[2] != 3 || s[3] != 3 {
		t.Errorf("weight shape %v", s)
	}
	checkVars(t, c.Vars(), c.Weight, c.Bias)
	mean, std := moments(c.Weight)
	if want := math.Sqrt(2.0 / (3 * 3 * 64)); math.Abs(mean) > 0.1*want || math.Abs(std-want) > 0.05*want {
		t.Errorf("weight mean %v std %v, want 0 and %v", mean, std, want)
	}
	for i, v := range c.Bias.Float64s() {
		if v != 0 {
			t.Fatalf("bias[%d] = %v, want 0", i, v)
		}
	}

	d := NewConv2dKernel(r, 8, 8, 1, 2, 1, 0, 8, false)
	if s := d.Weight.Shape(); d.Bias != nil || s[0] != 8 || s[1] != 1 || s[2] != 1 || s[3] != 2 || d.KernelH != 1 || d.KernelW != 2 {
		t.Errorf("depthwise 1x2: weight %v, bias %v, %+v", s, d.Bias, d)
	}
	checkVars(t, d.Vars(), d.Weight, nil)
}

func TestInitPyTorchDefault(t *testing.T) {
	c := InitPyTorchDefault(rand.New(rand.NewPCG(3, 4)), NewConv2d(rand.New(rand.NewPCG(1, 2)), 64, 128, 3, 1, 1, 2, true))
	bound := 1 / math.Sqrt(64/2*3*3)
	checkUniform(t, "weight", c.Weight, bound)
	checkUniform(t, "bias", c.Bias, bound)
}

func TestNewConv2dRejectsGroups(t *testing.T) {
	defer func() {
		if _, ok := recover().(*tensor.ShapeError); !ok {
			t.Error("3 groups of 4 channels: no *tensor.ShapeError")
		}
	}()
	NewConv2d(rand.New(rand.NewPCG(1, 1)), 4, 6, 3, 1, 1, 3, false)
}

// TestConv2dForward checks that the layer is op.Conv2d with its own
// geometry and that gradients reach its parameters, in float32 and after a
// Cast to float64.
func TestConv2dForward(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	c := NewConv2dKernel(r, 4, 6, 3, 2, 2, 1, 2, true)
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
		Cast(c, dt)
		x := tensor.New(dt, 2, 4, 7, 6)
		x.FillNormal(r, 0, 1)
		y := c.Forward(x)
		want := op.Conv2d(x, c.Weight.Detach(), c.Bias.Detach(), 2, 1, 2)
		if s := y.Shape(); len(s) != 4 || s[0] != 2 || s[1] != 6 || s[2] != 4 || s[3] != 4 || y.DType() != dt {
			t.Fatalf("%v: output %v", dt, y)
		}
		for i := range want.Len() {
			if y.At(i) != want.At(i) {
				t.Fatalf("%v: element %d = %v, want %v", dt, i, y.At(i), want.At(i))
			}
		}
		ZeroGrad(c)
		y.Backward()
		if c.Weight.Grad == nil || c.Bias.Grad == nil || c.Bias.Grad.At(0) != 2*4*4 {
			t.Errorf("%v: gradients %v, %v", dt, c.Weight.Grad, c.Bias.Grad)
		}
	}
}
