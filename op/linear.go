package op

import (
	"github.com/srmlab/srmlab/blas"
	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/tensor"
)

// Linear computes x·wᵀ + b as PyTorch's nn.Linear: x is (N, in), w is
// (out, in), b is (out) or nil; the result is (N, out).
func Linear(x, w, b *tensor.Tensor) *tensor.Tensor {
	kern.SameType("Linear", x, w, b)
	if x.Rank() != 2 || w.Rank() != 2 || x.Dim(1) != w.Dim(1) {
		tensor.Panicf("Linear: input %v and weight %v do not fit (want (N, in) and (out, in))", x.Shape(), w.Shape())
	}
	if b != nil && (b.Rank() != 1 || b.Dim(0) != w.Dim(0)) {
		tensor.Panicf("Linear: bias %v for %d outputs", b.Shape(), w.Dim(0))
	}
	if d := DeviceOf("Linear", x, w, b); d != nil {
		return linearDevice(d, x, w, b)
	}
	if x.DType() == tensor.Float64 {
		return linear[float64](x, w, b)
	}
	return linear[float32](x, w, b)
}

func linear[T kern.Float](x, w, b *tensor.Tensor) *tensor.Tensor {
	n, in, out := x.Dim(0), x.Dim(1), w.Dim(0)
	y := tensor.New(x.DType(), n, out)
	xd, wd, yd := kern.Vals[T](x), kern.Vals[T](w), kern.Vals[T](y)
	if b != nil {
		bd := kern.Vals[T](b)
		for i := range n {
			copy(yd[i*out:][:out], bd)
		}
		gemm(false, true, n, out, in, xd, in, wd, in, 1, yd, out)
	} else {
		gemm(false, true, n, out, in, xd, in, wd, in, 0, yd, out)
	}
	tensor.Record(y, func(grad *tensor.Tensor) {
		dy := kern.Vals[T](grad)
		if x.NeedsGrad() {
			gemm(false, false, n, in, out, dy, out, wd, in, 1, kern.Vals[T](tensor.GradOf(x)), in)
		}
		if w.NeedsGrad() {
			gemm(true, false, out, in, n, dy, out, xd, in, 1, kern.Vals[T](tensor.GradOf(w)), in)
		}
		if b != nil && b.NeedsGrad() {
			db := kern.Vals[T](tensor.GradOf(b))
			for i := range n {
				for j, v := range dy[i*out:][:out] {
					db[j] += v
				}
			}
		}
	}, x, w, b)
	return y
}

// gemm is blas's row-major c = op(a)·op(b) + beta·c for either element
// type, the one product that convolution and linear layers are built on.
func gemm[T kern.Float](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch a := any(a).(type) {
	case []float32:
		blas.Sgemm(transA, transB, m, n, k, 1, a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		blas.Dgemm(transA, transB, m, n, k, 1, a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}
