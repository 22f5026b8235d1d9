package op

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

// opCase is one differentiable call for runOpCases: f applies the operation
// to inputs of the listed shapes, filled with N(0, 1) samples. f must build
// any extra tensors it needs in its inputs' element type, so that the same
// case runs in float64 and float32.
type opCase struct {
	name   string
	shapes [][]int
	f      func(in []*tensor.Tensor) *tensor.Tensor
}

// runOpCases checks every case's gradient with respect to all its inputs
// against finite differences in float64, and checks that the float32
// instantiation computes the same output and gradients to float32 accuracy.
func runOpCases(t *testing.T, cases []opCase) {
	t.Helper()
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(ci), 3))
			in := make([]*tensor.Tensor, len(c.shapes))
			for i, s := range c.shapes {
				in[i] = gradcheck.Rand64(r, s...)
			}
			gradcheck.Check(t, func() *tensor.Tensor { return c.f(in) }, in, 0, 1e-6)

			in32 := make([]*tensor.Tensor, len(in))
			for i, x := range in {
				in32[i] = x.As(tensor.Float32).SetRequiresGrad(true)
				x.ZeroGrad()
			}
			out64, out32 := c.f(in), c.f(in32)
			seed := tensor.New(tensor.Float64, out64.Shape()...)
			seed.FillNormal(r, 0, 1)
			out64.BackwardWith(seed)
			out32.BackwardWith(seed.As(tensor.Float32))
			closeTo(t, "float32 output", out32, out64, 1e-5)
			for i := range in {
				closeTo(t, "float32 gradient", in32[i].Grad, in[i].Grad, 1e-4)
			}
		})
	}
}

// closeTo fails t unless got and want have one shape and agree within
// tol·(1 + max|want|) everywhere.
func closeTo(t *testing.T, what string, got, want *tensor.Tensor, tol float64) {
	t.Helper()
	if !tensor.SameShape(got, want) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	scale := 0.0
	for i := range want.Len() {
		scale = math.Max(scale, math.Abs(want.At(i)))
	}
	for i := range want.Len() {
		if d := math.Abs(got.At(i) - want.At(i)); !(d <= tol*(1+scale)) {
			t.Fatalf("%s: element %d is %.9g, want %.9g", what, i, got.At(i), want.At(i))
		}
	}
}

// valuesAre fails t unless x has the given shape and values within 1e-9.
func valuesAre(t *testing.T, what string, x *tensor.Tensor, shape []int, want ...float64) {
	t.Helper()
	closeTo(t, what, x, tensor.FromFloat64(want, shape...), 1e-9)
}

// seq64 returns a float64 tensor holding start, start+1, … in row-major order.
func seq64(start float64, shape ...int) *tensor.Tensor {
	x := tensor.New(tensor.Float64, shape...)
	for i := range x.Len() {
		x.Set(i, start+float64(i))
	}
	return x
}

// panicsWithShapeError fails t unless f panics with a *tensor.ShapeError.
func panicsWithShapeError(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		err, _ := r.(error)
		var se *tensor.ShapeError
		if !errors.As(err, &se) {
			t.Errorf("%s: panic %v, want a *tensor.ShapeError", name, r)
		}
	}()
	f()
}
