package srm

import "github.com/srmlab/srmlab/tensor"

// float is the element type the generic kernels of this package are
// instantiated for; the exported operations stay non-generic so that an
// interpreter (yaegi) can bind them.
type float interface{ ~float32 | ~float64 }

// vals returns t's data as []T; the caller has checked t's type.
func vals[T float](t *tensor.Tensor) []T { return t.Raw().([]T) }

// sameType panics unless every non-nil tensor has the first one's type,
// since a kernel reads all its operands as one element type.
func sameType(op string, ts ...*tensor.Tensor) {
	dt := ts[0].DType()
	for _, t := range ts[1:] {
		if t != nil && t.DType() != dt {
			tensor.Panicf("%s: mixed element types %v and %v", op, dt, t.DType())
		}
	}
}
