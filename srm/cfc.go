package srm

import (
	"math"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// CFC is the channel-wise fully connected layer of SRM's style integration:
// a separate dot product for every channel,
//
//	z[n, c] = Σ_j w[c, j]·t[n, c, j] + b[c],
//
// equal to PyTorch's Conv1d(C, C, K, groups=C). t is (N, C, ...) with K
// values per (n, c) after the channel axis, w holds C·K values, b is (C) or
// nil. The result is (N, C, 1, 1), the shape BatchNorm2d and the gating
// multiply take.
//
// The same operation is GE-θ's global gather: a depthwise convolution whose
// kernel (C, 1, H, W) covers the whole (N, C, H, W) map is a per-channel dot
// product with K = H·W, and this reduction is much cheaper than a
// convolution that happens to have one output position.
func CFC(t, w, b *tensor.Tensor) *tensor.Tensor {
	if t.Rank() < 2 {
		tensor.Panicf("CFC: input %v has no channel axis", t.Shape())
	}
	kern.SameType("CFC", t, w, b)
	n, c := t.Dim(0), t.Dim(1)
	k := 0
	if n*c > 0 {
		k = t.Len() / (n * c)
	}
	if w.Len() != c*k || w.Dim(0) != c {
		tensor.Panicf("CFC: weight %v for input %v (want C=%d rows of %d)", w.Shape(), t.Shape(), c, k)
	}
	if b != nil && (b.Rank() != 1 || b.Dim(0) != c) {
		tensor.Panicf("CFC: bias %v for %d channels", b.Shape(), c)
	}
	if d := op.DeviceOf("CFC", t, w, b); d != nil {
		return cfcDevice(d, t, w, b, n, c, k)
	}
	if t.DType() == tensor.Float64 {
		return cfc[float64](t, w, b, n, c, k)
	}
	if tensor.IsBlocked16(t) {
		return cfcBlocked(t, w, b, n, c, k)
	}
	return cfc[float32](t, w, b, n, c, k)
}

func cfc[T kern.Float](t, w, b *tensor.Tensor, n, c, k int) *tensor.Tensor {
	out := tensor.New(t.DType(), n, c, 1, 1)
	ts, ws, zs := kern.Vals[T](t), kern.Vals[T](w), kern.Vals[T](out)
	var bs []T
	if b != nil {
		bs = kern.Vals[T](b)
	}
	parallel.For(n*c, k, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			ch := pl % c
			// A float64 dot product, in fixed order (vector code for
			// float32): GE-θ's global gather is one over each whole map.
			s := simd.Dot(ts[pl*k:(pl+1)*k], ws[ch*k:(ch+1)*k])
			if bs != nil {
				s += float64(bs[ch])
			}
			zs[pl] = T(s)
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gz := kern.Vals[T](grad)
		var gt, gw, gb []T
		if t.NeedsGrad() {
			gt = kern.Vals[T](tensor.GradOf(t))
		}
		if w.NeedsGrad() {
			gw = kern.Vals[T](tensor.GradOf(w))
		}
		if b != nil && b.NeedsGrad() {
			gb = kern.Vals[T](tensor.GradOf(b))
		}
		// One goroutine owns each channel, and sums over the batch in order,
		// so the weight gradient is the same on every run. Both gradients
		// add g times a row: AffineAdd with b = −0 adds the product alone,
		// to the bit.
		nz := T(math.Copysign(0, -1))
		parallel.For(c, 2*n*k, func(lo, hi int) {
			for ch := lo; ch < hi; ch++ {
				wv := ws[ch*k : (ch+1)*k]
				for i := 0; i < n; i++ {
					pl := i*c + ch
					g := gz[pl]
					if gt != nil {
						simd.AffineAdd(gt[pl*k:(pl+1)*k], wv, g, nz)
					}
					if gw != nil {
						simd.AffineAdd(gw[ch*k:(ch+1)*k], ts[pl*k:(pl+1)*k], g, nz)
					}
					if gb != nil {
						gb[ch] += g
					}
				}
			}
		})
	}, t, w, b)
	return out
}
