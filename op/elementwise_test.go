package op

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

func TestElementwiseGrad(t *testing.T) {
	runOpCases(t, []opCase{
		{"ReLU", [][]int{{2, 3, 4, 5}}, func(in []*tensor.Tensor) *tensor.Tensor { return ReLU(in[0]) }},
		{"Sigmoid", [][]int{{3, 7}}, func(in []*tensor.Tensor) *tensor.Tensor { return Sigmoid(in[0]) }},
		{"Add", [][]int{{2, 3, 4, 4}, {2, 3, 4, 4}}, func(in []*tensor.Tensor) *tensor.Tensor { return Add(in[0], in[1]) }},
		{"AddSelf", [][]int{{4, 5}}, func(in []*tensor.Tensor) *tensor.Tensor { return Add(in[0], in[0]) }},
		{"AddReLU", [][]int{{2, 3, 4, 4}, {2, 3, 4, 4}}, func(in []*tensor.Tensor) *tensor.Tensor { return AddReLU(in[0], in[1]) }},
		{"AddReLUSelf", [][]int{{4, 5}}, func(in []*tensor.Tensor) *tensor.Tensor { return AddReLU(in[0], in[0]) }},
		// The inner sum takes the outer one's gradient buffer over, and
		// in[0]'s gradient then collects from both additions.
		{"AddChain", [][]int{{3, 4}, {3, 4}}, func(in []*tensor.Tensor) *tensor.Tensor { return Add(Add(in[0], in[1]), in[0]) }},
		{"AddReLUChain", [][]int{{3, 4}, {3, 4}}, func(in []*tensor.Tensor) *tensor.Tensor {
			return AddReLU(Mul(AddReLU(in[0], in[1]), in[1]), in[0])
		}},
		{"MulSameShape", [][]int{{2, 3, 4, 5}, {2, 3, 4, 5}}, func(in []*tensor.Tensor) *tensor.Tensor { return Mul(in[0], in[1]) }},
		{"MulSelf", [][]int{{3, 4}}, func(in []*tensor.Tensor) *tensor.Tensor { return Mul(in[0], in[0]) }},
		{"MulGate", [][]int{{2, 3, 4, 5}, {2, 3, 1, 1}}, func(in []*tensor.Tensor) *tensor.Tensor { return Mul(in[0], in[1]) }},
		{"MulGate1x1", [][]int{{3, 2, 1, 1}, {3, 2, 1, 1}}, func(in []*tensor.Tensor) *tensor.Tensor { return Mul(in[0], in[1]) }},
		{"SigmoidGateChain", [][]int{{2, 3, 4, 4}, {2, 3, 1, 1}}, func(in []*tensor.Tensor) *tensor.Tensor {
			return ReLU(Add(Mul(in[0], Sigmoid(in[1])), in[0]))
		}},
	})
}

func TestAddReLUIsComposition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	a, b, seed := tensor.New(tensor.Float32, 2, 3, 5, 5), tensor.New(tensor.Float32, 2, 3, 5, 5), tensor.New(tensor.Float32, 2, 3, 5, 5)
	for _, x := range []*tensor.Tensor{a, b, seed} {
		x.FillNormal(r, 0, 1)
	}
	run := func(fused bool) []*tensor.Tensor {
		a.ZeroGrad()
		b.ZeroGrad()
		a.SetRequiresGrad(true)
		b.SetRequiresGrad(true)
		var y *tensor.Tensor
		if fused {
			y = AddReLU(a, b)
		} else {
			y = ReLU(Add(a, b))
		}
		y.BackwardWith(seed)
		return []*tensor.Tensor{y, a.Grad, b.Grad}
	}
	got, want := run(true), run(false)
	for i := range want {
		for j := range want[i].Len() {
			if got[i].At(j) != want[i].At(j) {
				t.Fatalf("result %d element %d is %v, want %v", i, j, got[i].At(j), want[i].At(j))
			}
		}
	}
}

func TestAddLeavesRetainedGradient(t *testing.T) {
	// y keeps its gradient, so the addition must neither mask it in
	// place nor hand it to an input.
	a := tensor.FromFloat64([]float64{1, -3}, 2).SetRequiresGrad(true)
	b := tensor.FromFloat64([]float64{1, 1}, 2).SetRequiresGrad(true)
	y := AddReLU(a, b).SetRequiresGrad(true)
	Mul(y, tensor.FromFloat64([]float64{2, 5}, 2)).Backward()
	valuesAre(t, "y.Grad", y.Grad, []int{2}, 2, 5)
	valuesAre(t, "a.Grad", a.Grad, []int{2}, 2, 0)
	a.Grad.Set(0, 7)
	valuesAre(t, "b.Grad after changing a.Grad", b.Grad, []int{2}, 2, 0)
	valuesAre(t, "y.Grad after changing a.Grad", y.Grad, []int{2}, 2, 5)

	// The same for a product, whose x gradient could otherwise be
	// computed in y's gradient buffer.
	x := tensor.FromFloat64([]float64{1, -3}, 2).SetRequiresGrad(true)
	y = Mul(x, tensor.FromFloat64([]float64{2, 5}, 2)).SetRequiresGrad(true)
	Mul(y, tensor.FromFloat64([]float64{3, 4}, 2)).Backward()
	valuesAre(t, "Mul y.Grad", y.Grad, []int{2}, 3, 4)
	valuesAre(t, "Mul x.Grad", x.Grad, []int{2}, 6, 20)
}

func TestElementwiseForward(t *testing.T) {
	x := tensor.FromFloat64([]float64{-2, -0.5, 0, 0.5, 3, 800, -800}, 7)
	valuesAre(t, "ReLU", ReLU(x), []int{7}, 0, 0, 0, 0.5, 3, 800, 0)
	if v := ReLU(tensor.FromFloat64([]float64{math.NaN()}, 1)).At(0); !math.IsNaN(v) {
		t.Errorf("ReLU(NaN) = %v, want NaN as in PyTorch", v)
	}

	sig := Sigmoid(tensor.FromFloat64([]float64{-2, 0, 3, 800, -800}, 5))
	want := []float64{1 / (1 + math.Exp(2)), 0.5, 1 / (1 + math.Exp(-3)), 1, 0}
	valuesAre(t, "Sigmoid", sig, []int{5}, want...)

	valuesAre(t, "Add", Add(seq64(1, 2, 2), seq64(10, 2, 2)), []int{2, 2}, 11, 13, 15, 17)

	// Gate (1, 2, 1, 1) scales plane 0 by 2 and plane 1 by −1.
	gate := tensor.FromFloat64([]float64{2, -1}, 1, 2, 1, 1)
	valuesAre(t, "Mul gate", Mul(seq64(0, 1, 2, 2, 1), gate), []int{1, 2, 2, 1}, 0, 2, -2, -3)
	valuesAre(t, "Mul", Mul(seq64(1, 3), seq64(2, 3)), []int{3}, 2, 6, 12)
}

func TestElementwiseFloat32(t *testing.T) {
	x := tensor.FromFloat32([]float32{-1, 2}, 2)
	g := tensor.FromFloat32([]float32{3, 4}, 2)
	if got := Mul(ReLU(x), g); got.DType() != tensor.Float32 || got.At(0) != 0 || got.At(1) != 8 {
		t.Errorf("float32 Mul(ReLU) = %v %v", got, got.Float64s())
	}
}

func TestElementwiseShapePanics(t *testing.T) {
	a := tensor.New(tensor.Float64, 2, 3, 4, 4)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Add shapes", func() { Add(a, tensor.New(tensor.Float64, 2, 3, 4, 5)) }},
		{"Add types", func() { Add(a, tensor.New(tensor.Float32, 2, 3, 4, 4)) }},
		{"Mul gate (N, C)", func() { Mul(a, tensor.New(tensor.Float64, 2, 3)) }},
		{"Mul gate wrong C", func() { Mul(a, tensor.New(tensor.Float64, 2, 4, 1, 1)) }},
		{"Mul gate 1x2", func() { Mul(a, tensor.New(tensor.Float64, 2, 3, 1, 2)) }},
		{"Mul types", func() { Mul(a, tensor.New(tensor.Float32, 2, 3, 1, 1)) }},
	} {
		panicsWithShapeError(t, c.name, c.f)
	}
}
