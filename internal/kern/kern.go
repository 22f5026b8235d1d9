// Package kern holds what srmlab's generic compute kernels share: the
// element-type constraint, typed access to a tensor's data and the check
// that a kernel's operands have one element type. Exported operations stay
// non-generic so that an interpreter (yaegi) can bind them; the kernels
// behind them are instantiated for float32 and float64 from one source.
package kern

import "github.com/srmlab/srmlab/tensor"

// Float is the element type kernels are instantiated for.
type Float interface{ ~float32 | ~float64 }

// Vals returns t's data as []T; the caller has checked t's type.
func Vals[T Float](t *tensor.Tensor) []T { return t.Raw().([]T) }

// SameType panics with a *tensor.ShapeError unless every non-nil tensor has
// the first one's element type, since a kernel reads all its operands as one
// type.
func SameType(op string, ts ...*tensor.Tensor) {
	dt := ts[0].DType()
	for _, t := range ts[1:] {
		if t != nil && t.DType() != dt {
			tensor.Panicf("%s: mixed element types %v and %v", op, dt, t.DType())
		}
	}
}

// UpdateRunning moves a BatchNorm channel's running mean and variance
// towards the batch's, mean mu and Σ(x−mu)² sq over m values, as PyTorch
// does: the running variance takes the unbiased batch variance.
func UpdateRunning[T Float](rm, rv *T, mu, sq, m, momentum float64) {
	*rm = T((1-momentum)*float64(*rm) + momentum*mu)
	*rv = T((1-momentum)*float64(*rv) + momentum*sq/(m-1))
}
