package tensor

import (
	"errors"
	"math"
	"testing"
)

// scale is a minimal recorded operation (y = k·x) for exercising the graph.
func scale(x *Tensor, k float64) *Tensor {
	out := ZerosLike(x)
	for i := 0; i < x.Len(); i++ {
		out.Set(i, k*x.At(i))
	}
	Record(out, func(g *Tensor) {
		gx := GradOf(x)
		for i := 0; i < x.Len(); i++ {
			gx.Set(i, gx.At(i)+k*g.At(i))
		}
	}, x)
	return out
}

func add(a, b *Tensor) *Tensor {
	out := ZerosLike(a)
	for i := 0; i < a.Len(); i++ {
		out.Set(i, a.At(i)+b.At(i))
	}
	Record(out, func(g *Tensor) {
		for _, in := range []*Tensor{a, b} {
			if in.NeedsGrad() {
				gi := GradOf(in)
				for i := 0; i < in.Len(); i++ {
					gi.Set(i, gi.At(i)+g.At(i))
				}
			}
		}
	}, a, b)
	return out
}

func TestBackwardDiamond(t *testing.T) {
	// y = 2x + 3x: x feeds two branches that meet again, so its gradient
	// must be the sum over both paths, and each node must run once.
	x := FromFloat64([]float64{1, -2}, 2).SetRequiresGrad(true)
	y := add(scale(x, 2), scale(x, 3))
	y.Backward()
	for i, g := range x.Grad.F64() {
		if g != 5 {
			t.Fatalf("grad[%d] = %v, want 5", i, g)
		}
	}
	if y.NeedsGrad() {
		t.Error("graph kept after Backward")
	}
}

func TestNoGraphWithoutGrad(t *testing.T) {
	x := FromFloat32([]float32{1, 2}, 2)
	if y := scale(x, 2); y.NeedsGrad() {
		t.Error("operation on constants recorded a graph")
	}
}

func TestDeepChainNoStackOverflow(t *testing.T) {
	x := FromFloat64([]float64{1}, 1).SetRequiresGrad(true)
	y := x
	for i := 0; i < 200000; i++ {
		y = scale(y, 1)
	}
	y.Backward()
	if x.Grad.F64()[0] != 1 {
		t.Fatalf("grad = %v", x.Grad.F64()[0])
	}
}

func TestSetDTypeKeepsIdentity(t *testing.T) {
	x := FromFloat32([]float32{1.5, -2}, 2)
	p := x
	x.SetDType(Float64)
	if p != x || x.DType() != Float64 || x.F64()[0] != 1.5 {
		t.Fatalf("SetDType: %v %v", x.DType(), x.Float64s())
	}
}

func TestShapeErrors(t *testing.T) {
	for name, f := range map[string]func(){
		"FromFloat32 size": func() { FromFloat32([]float32{1}, 2) },
		"View size":        func() { Zeros(2, 3).View(4) },
		"negative dim":     func() { Zeros(-1) },
		"F64 of float32":   func() { Zeros(1).F64() },
	} {
		func() {
			defer func() {
				var se *ShapeError
				if r := recover(); r == nil || !errors.As(r.(error), &se) {
					t.Errorf("%s: recovered %v, want *ShapeError", name, r)
				}
			}()
			f()
		}()
	}
}

func TestCheckFinite(t *testing.T) {
	x := FromFloat32([]float32{1, float32(math.Inf(1))}, 2)
	if err := x.CheckFinite("loss"); err == nil {
		t.Error("Inf not caught")
	}
	if err := Zeros(3).CheckFinite("x"); err != nil {
		t.Error(err)
	}
}
