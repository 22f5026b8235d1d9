package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

func TestNewLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	l := NewLinear(r, 64, 100, true)
	if l.In != 64 || l.Out != 100 {
		t.Errorf("geometry %+v", l)
	}
	if s := l.Weight.Shape(); len(s) != 2 || s[0] != 100 || s[1] != 64 || l.Bias.Len() != 100 {
		t.Errorf("weight %v bias %v", s, l.Bias)
	}
	checkVars(t, l.Vars(), l.Weight, l.Bias)
	checkUniform(t, "weight", l.Weight, 1/math.Sqrt(64))
	checkUniform(t, "bias", l.Bias, 1/math.Sqrt(64))

	if n := NewLinear(r, 3, 2, false); n.Bias != nil {
		t.Error("bias without asking")
	} else {
		checkVars(t, n.Vars(), n.Weight, nil)
	}
}

func TestLinearForward(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	l := NewLinear(r, 3, 2, true)
	x := tensor.Zeros(4, 3)
	x.FillNormal(r, 0, 1)
	y := l.Forward(x)
	for i := range 4 {
		for o := range 2 {
			want := l.Bias.At(o)
			for k := range 3 {
				want += x.At(i*3+k) * l.Weight.At(o*3+k)
			}
			if got := y.At(i*2 + o); math.Abs(got-want) > 1e-5 {
				t.Errorf("y[%d,%d] = %v, want %v", i, o, got, want)
			}
		}
	}
	y.Backward()
	if l.Weight.Grad == nil || l.Bias.Grad == nil || l.Bias.Grad.At(1) != 4 {
		t.Errorf("gradients %v, %v", l.Weight.Grad, l.Bias.Grad)
	}
}
