package op

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

// TestReLUGradSelects checks that ReLU and AddReLU pass no gradient where
// the unit is inactive, even a NaN or infinite one (a select, as PyTorch's
// threshold_backward), and pass it unchanged, NaN included, where it is
// active, in float64 and float32 (internal/simd's vector code).
func TestReLUGradSelects(t *testing.T) {
	xv := []float64{-2, 0, 1, 3, -1, math.Copysign(0, -1), 2, -5, 4, -3, 0.5, -0.25, 6, -7, 8, -9, 1.5, -1.5, 2.5}
	gv := make([]float64, len(xv))
	for i, x := range xv {
		switch {
		case x > 0 && i%5 == 2:
			gv[i] = math.NaN()
		case x > 0:
			gv[i] = float64(i) + 0.5
		default:
			gv[i] = []float64{math.NaN(), math.Inf(1), math.Inf(-1)}[i%3]
		}
	}
	for _, dt := range []tensor.DType{tensor.Float64, tensor.Float32} {
		for _, fused := range []bool{false, true} {
			x := tensor.FromFloat64(xv, len(xv)).As(dt).SetRequiresGrad(true)
			var y *tensor.Tensor
			if fused {
				// x + 0 with a second input that takes no gradient.
				y = AddReLU(x, tensor.New(dt, len(xv)))
			} else {
				y = ReLU(x)
			}
			y.BackwardWith(tensor.FromFloat64(gv, len(gv)).As(dt))
			for i, x0 := range xv {
				got := x.Grad.At(i)
				switch {
				case !(x0 > 0):
					if got != 0 {
						t.Errorf("%v fused=%v: gradient at inactive x=%v is %v, want 0", dt, fused, x0, got)
					}
				case math.IsNaN(gv[i]):
					if !math.IsNaN(got) {
						t.Errorf("%v fused=%v: gradient %v at active x=%v, want NaN", dt, fused, got, x0)
					}
				case got != gv[i]:
					t.Errorf("%v fused=%v: gradient %v at active x=%v, want %v", dt, fused, got, x0, gv[i])
				}
			}
		}
	}
}

// TestElementwiseLargeFloat32 runs the float32 ops on feature maps large
// enough to be split over goroutines, with planes that leave vector tails
// (7×7) or not (16×16), against float64.
func TestElementwiseLargeFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 7))
	for _, s := range [][]int{{8, 32, 16, 16}, {4, 40, 7, 7}, {3, 5, 33, 1}} {
		gateShape := []int{s[0], s[1], 1, 1}
		for _, name := range []string{"ReLU", "AddReLU", "Add", "MulGate", "Mul"} {
			in64 := []*tensor.Tensor{tensor.New(tensor.Float64, s...), tensor.New(tensor.Float64, s...)}
			if name == "MulGate" {
				in64[1] = tensor.New(tensor.Float64, gateShape...)
			}
			for _, x := range in64 {
				x.FillNormal(r, 0, 1)
				x.SetRequiresGrad(true)
			}
			f := func(in []*tensor.Tensor) *tensor.Tensor {
				switch name {
				case "ReLU":
					// Through a product, so the ReLU's input gradient is
					// added into the one Mul's x gradient gets.
					return ReLU(Mul(in[0], in[1]))
				case "AddReLU":
					return AddReLU(in[0], in[1])
				case "Add":
					return Add(in[0], in[1])
				}
				return Mul(in[0], in[1])
			}
			in32 := []*tensor.Tensor{in64[0].As(tensor.Float32).SetRequiresGrad(true), in64[1].As(tensor.Float32).SetRequiresGrad(true)}
			out64, out32 := f(in64), f(in32)
			seed := tensor.New(tensor.Float64, out64.Shape()...)
			seed.FillNormal(r, 0, 1)
			out64.BackwardWith(seed)
			out32.BackwardWith(seed.As(tensor.Float32))
			closeTo(t, name+" float32 output", out32, out64, 1e-6)
			for i := range in64 {
				closeTo(t, name+" float32 gradient", in32[i].Grad, in64[i].Grad, 1e-5)
			}
		}
	}
}

// BenchmarkElementwise runs float32 ReLU, AddReLU and a channel gate Mul,
// forward and backward, at ResNet-20's feature map shapes (batch 128).
func BenchmarkElementwise(b *testing.B) {
	for _, s := range []struct{ c, px int }{{16, 32}, {32, 16}, {64, 8}} {
		for _, name := range []string{"ReLU", "AddReLU", "MulGate"} {
			b.Run(fmt.Sprintf("%s/C%d_%dpx", name, s.c, s.px), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				x, y := tensor.Zeros(128, s.c, s.px, s.px), tensor.Zeros(128, s.c, s.px, s.px)
				if name == "MulGate" {
					y = tensor.Zeros(128, s.c, 1, 1)
				}
				for _, t := range []*tensor.Tensor{x, y} {
					t.FillNormal(r, 0.1, 1)
					t.SetRequiresGrad(true)
				}
				seed := tensor.ZerosLike(x)
				seed.FillNormal(r, 0, 1)
				b.SetBytes(int64(x.Len()) * 4)
				for b.Loop() {
					x.ZeroGrad()
					y.ZeroGrad()
					var out *tensor.Tensor
					switch name {
					case "ReLU":
						out = ReLU(x)
					case "AddReLU":
						out = AddReLU(x, y)
					default:
						out = Mul(x, y)
					}
					out.BackwardWith(seed)
				}
			})
		}
	}
}
