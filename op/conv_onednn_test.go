package op

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/onednn"
	"github.com/srmlab/srmlab/tensor"
)

// convPaths runs f with float32 convolutions on each path this machine
// has: oneDNN when its library opens, and srmlab's im2col+BLAS always.
func convPaths(t *testing.T, f func(t *testing.T)) {
	paths := []bool{false}
	if onednn.Available() == nil {
		paths = append(paths, true)
	}
	defer func(old bool) { useOneDNN = old }(useOneDNN)
	for _, on := range paths {
		useOneDNN = on
		name := "im2col"
		if on {
			name = "onednn"
		}
		t.Run(name, f)
	}
}

// TestConv2dFloat32Paths checks both float32 paths against float64 for
// every case, including gradients added by a second backward pass (oneDNN
// writes a fresh gradient and adds to an existing one).
func TestConv2dFloat32Paths(t *testing.T) {
	convPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, tc := range convCases {
			x, w, b := newConvCase(r, tc)
			out := Conv2d(x, w, b, tc.stride, tc.pad, tc.groups)
			seed := tensor.New(tensor.Float64, out.Shape()...)
			seed.FillNormal(r, 0, 1)
			out.BackwardWith(seed)
			want := []*tensor.Tensor{out.Detach(), x.Grad, w.Grad, nil}
			if b != nil {
				want[3] = b.Grad
			}
			xc, wc := x.As(tensor.Float32).SetRequiresGrad(true), w.As(tensor.Float32).SetRequiresGrad(true)
			var bc *tensor.Tensor
			if tc.bias {
				bc = b.As(tensor.Float32).SetRequiresGrad(true)
			}
			for pass := 1; pass <= 2; pass++ {
				out32 := Conv2d(xc, wc, bc, tc.stride, tc.pad, tc.groups)
				out32.BackwardWith(seed.As(tensor.Float32))
				got := []*tensor.Tensor{out32.Detach(), xc.Grad, wc.Grad, nil}
				if bc != nil {
					got[3] = bc.Grad
				}
				for k, g := range got {
					if want[k] == nil || g == nil {
						continue
					}
					scale := 1.0
					if k > 0 {
						scale = float64(pass) // gradients add up
					}
					if e := relDiff(g, want[k], scale); e > 1e-5 {
						t.Errorf("%v pass %d: result %d differs from float64 by %.2g", tc, pass, k, e)
					}
				}
			}
		}
	})
}

// relDiff is max|got − scale·want| / max|scale·want|.
func relDiff(got, want *tensor.Tensor, scale float64) float64 {
	var d, m float64
	for i := range want.Len() {
		w := scale * want.At(i)
		d = math.Max(d, math.Abs(got.At(i)-w))
		m = math.Max(m, math.Abs(w))
	}
	return d / math.Max(m, 1e-30)
}
