package op

import (
	"math"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

// crossEntropyLabels are the labels of the gradient cases, one per row.
var crossEntropyLabels = []int{2, 0, 4, 4, 1, 3}

func TestCrossEntropyGrad(t *testing.T) {
	ce := func(in []*tensor.Tensor) *tensor.Tensor {
		loss, err := CrossEntropy(in[0], crossEntropyLabels[:in[0].Dim(0)])
		if err != nil {
			panic(err)
		}
		return loss
	}
	runOpCases(t, []opCase{
		{"logits", [][]int{{6, 5}}, ce},
		{"one row", [][]int{{1, 5}}, ce},
		{"scaled logits", [][]int{{6, 5}, {6, 5}}, func(in []*tensor.Tensor) *tensor.Tensor {
			return ce([]*tensor.Tensor{Mul(in[0], in[1])})
		}},
	})
}

func TestCrossEntropyForward(t *testing.T) {
	logits := tensor.FromFloat64([]float64{
		0, 0, 0, // uniform over three: log 3
		1, 2, 3, // label 2: log(1 + e⁻¹ + e⁻²)
		1000, 0, -1000, // would overflow a naive exp: loss 1000
	}, 3, 3)
	loss, err := CrossEntropy(logits, []int{1, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	want := (math.Log(3) + math.Log(1+math.Exp(-1)+math.Exp(-2)) + 1000) / 3
	if loss.Rank() != 0 || math.Abs(loss.Item()-want) > 1e-12 {
		t.Errorf("loss %v of shape %v, want %v as a scalar", loss.Item(), loss.Shape(), want)
	}
	// float32 must be stable too.
	loss32, err := CrossEntropy(logits.As(tensor.Float32), []int{1, 2, 1})
	if err != nil || loss32.DType() != tensor.Float32 || math.Abs(loss32.Item()-want) > 1e-4 {
		t.Errorf("float32 loss %v (%v), want %v", loss32.Item(), err, want)
	}

	// The gradient is (softmax − onehot)/N: for the uniform row, 1/9 and −2/9.
	x := tensor.FromFloat64([]float64{0, 0, 0, 5, 5, 5}, 2, 3).SetRequiresGrad(true)
	loss, _ = CrossEntropy(x, []int{1, 0})
	loss.Backward()
	valuesAre(t, "gradient", x.Grad, []int{2, 3}, 1.0/6, -1.0/3, 1.0/6, -1.0/3, 1.0/6, 1.0/6)
}

func TestCrossEntropyErrors(t *testing.T) {
	logits := tensor.New(tensor.Float64, 3, 4)
	for _, c := range []struct {
		labels []int
		want   string
	}{
		{[]int{0, 1}, "2 labels for 3 rows"},
		{[]int{0, 1, 2, 3}, "4 labels for 3 rows"},
		{[]int{0, -1, 2}, "position 1"},
		{[]int{0, 1, 4}, "position 2"},
	} {
		if _, err := CrossEntropy(logits, c.labels); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("labels %v: error %v, want one mentioning %q", c.labels, err, c.want)
		}
	}
	if _, err := CrossEntropy(tensor.New(tensor.Float64, 0, 4), nil); err == nil {
		t.Error("empty batch: no error")
	}
	panicsWithShapeError(t, "rank 3 logits", func() { _, _ = CrossEntropy(tensor.New(tensor.Float64, 2, 3, 4), []int{0, 1}) })
}
