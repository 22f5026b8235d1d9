package op

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

// TestConvBNEval checks the folded unit against the convolution and the
// evaluation-mode BatchNorm (and ReLU) it replaces, computed in float64:
// output and every gradient, with the unit's output used once (its
// gradient is the op's to change) and twice.
func TestConvBNEval(t *testing.T) {
	convPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(31, 32))
		for _, tc := range []convCase{
			{n: 2, c: 3, h: 6, w: 6, cout: 16, kh: 3, kw: 3, stride: 1, pad: 1, groups: 1},
			{n: 3, c: 16, h: 9, w: 9, cout: 32, kh: 3, kw: 3, stride: 2, pad: 1, groups: 1},
			{n: 2, c: 8, h: 5, w: 5, cout: 8, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1},
			{n: 2, c: 8, h: 6, w: 6, cout: 8, kh: 3, kw: 3, stride: 1, pad: 1, groups: 8},
		} {
			for _, relu := range []bool{false, true} {
				for _, twice := range []bool{false, true} {
					t.Run(fmt.Sprintf("%v_relu%v_twice%v", tc, relu, twice), func(t *testing.T) {
						x, w, _ := newConvCase(r, tc)
						bn := []*tensor.Tensor{
							gradcheck.Rand64(r, tc.cout), gradcheck.Rand64(r, tc.cout), // γ, β
							gradcheck.Rand64(r, tc.cout), gradcheck.Rand64(r, tc.cout), // μ, σ² (made positive below)
						}
						for i := range tc.cout {
							bn[3].Set(i, 0.5+bn[3].At(i)*bn[3].At(i))
						}
						bn[2].SetRequiresGrad(false)
						bn[3].SetRequiresGrad(false)
						run := func(x, w *tensor.Tensor, bn []*tensor.Tensor, fused bool) *tensor.Tensor {
							var y *tensor.Tensor
							if fused {
								y = ConvBNEval(x, w, bn[0], bn[1], bn[2], bn[3], 1e-5, tc.stride, tc.pad, tc.groups, relu)
							} else {
								norm := BatchNorm
								if relu {
									norm = BatchNormReLU
								}
								y = norm(Conv2d(x, w, nil, tc.stride, tc.pad, tc.groups), bn[0], bn[1], bn[2], bn[3], false, 0, 1e-5)
							}
							if twice {
								y = Add(y, Mul(y, y))
							}
							return y
						}
						x32, w32 := x.As(tensor.Float32).SetRequiresGrad(true), w.As(tensor.Float32).SetRequiresGrad(true)
						bn32 := make([]*tensor.Tensor, 4)
						for i, p := range bn {
							bn32[i] = p.As(tensor.Float32).SetRequiresGrad(i < 2)
						}
						want, got := run(x, w, bn, false), run(x32, w32, bn32, true)
						seed := tensor.New(tensor.Float64, want.Shape()...)
						seed.FillNormal(r, 0, 1)
						want.BackwardWith(seed)
						got.BackwardWith(seed.As(tensor.Float32))
						closeTo(t, "output", got, want, 1e-5)
						for i, pair := range [][2]*tensor.Tensor{{x32, x}, {w32, w}, {bn32[0], bn[0]}, {bn32[1], bn[1]}} {
							closeTo(t, fmt.Sprintf("gradient %d", i), pair[0].Grad, pair[1].Grad, 1e-4)
						}
					})
				}
			}
		}
	})
}

func TestConvBNEvalMisuse(t *testing.T) {
	x, w, p := tensor.New(tensor.Float32, 1, 2, 4, 4), tensor.New(tensor.Float32, 3, 2, 3, 3), tensor.New(tensor.Float32, 2)
	panicsWithShapeError(t, "BatchNorm for 2 of 3 channels", func() { ConvBNEval(x, w, p, p, p, p, 1e-5, 1, 1, 1, false) })
}
