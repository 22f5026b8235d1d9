// Package gradcheck compares analytic gradients with central finite
// differences in float64, the test every differentiable operation in srmlab
// passes.
package gradcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

// Check evaluates the scalar L = Σ f()·R for a fixed random R, takes dL/dw
// for every w in wrt by Backward, and compares it with (L(w+h) − L(w−h))/2h
// for up to maxPerTensor elements of each w (all when maxPerTensor ≤ 0).
// Every w must be a float64 tensor that requires a gradient, and f must be
// deterministic. The check passes where |analytic − numeric| ≤ tol·(1 + |numeric|).
func Check(t testing.TB, f func() *tensor.Tensor, wrt []*tensor.Tensor, maxPerTensor int, tol float64) {
	t.Helper()
	if err := Compare(f, wrt, maxPerTensor, tol); err != nil {
		t.Fatal(err)
	}
}

// Compare is Check returning the first mismatch as an error.
func Compare(f func() *tensor.Tensor, wrt []*tensor.Tensor, maxPerTensor int, tol float64) error {
	const h = 1e-6
	r := rand.New(rand.NewPCG(7, 11))
	for _, w := range wrt {
		if w.DType() != tensor.Float64 || !w.RequiresGrad() {
			return fmt.Errorf("gradcheck: %v must be float64 and require a gradient", w)
		}
		w.ZeroGrad()
	}
	out := f()
	seed := tensor.New(tensor.Float64, out.Shape()...)
	seed.FillNormal(r, 0, 1)
	out.BackwardWith(seed)
	loss := func() float64 {
		o := f().Detach()
		s := 0.0
		for i, v := range o.F64() {
			s += v * seed.F64()[i]
		}
		return s
	}
	for wi, w := range wrt {
		if w.Grad == nil {
			w.Grad = tensor.ZerosLike(w)
		}
		analytic := w.Grad.F64()
		idx := r.Perm(w.Len())
		if maxPerTensor > 0 && len(idx) > maxPerTensor {
			idx = idx[:maxPerTensor]
		}
		data := w.F64()
		for _, i := range idx {
			orig := data[i]
			data[i] = orig + h
			up := loss()
			data[i] = orig - h
			down := loss()
			data[i] = orig
			numeric := (up - down) / (2 * h)
			if d := math.Abs(analytic[i] - numeric); d > tol*(1+math.Abs(numeric)) || math.IsNaN(analytic[i]) {
				return fmt.Errorf("gradcheck: input %d %v element %d: analytic %.8g, numeric %.8g", wi, w.Shape(), i, analytic[i], numeric)
			}
		}
	}
	return nil
}

// Rand64 returns a float64 tensor of N(0,1) samples that requires a gradient.
func Rand64(r *rand.Rand, shape ...int) *tensor.Tensor {
	x := tensor.New(tensor.Float64, shape...)
	x.FillNormal(r, 0, 1)
	return x.SetRequiresGrad(true)
}
