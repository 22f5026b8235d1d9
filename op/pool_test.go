package op

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

// poolConfigs are the kernel, stride and pad combinations the pooling tests
// sweep, from ResNet's stem pool to windows that leave input rows unread.
var poolConfigs = []struct{ k, s, p int }{
	{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {3, 3, 0}, {2, 1, 1}, {1, 2, 0}, {4, 3, 2},
}

func TestPoolGrad(t *testing.T) {
	var cases []opCase
	for _, c := range poolConfigs {
		k, s, p := c.k, c.s, c.p
		cfg := fmt.Sprintf(" k%d s%d p%d", k, s, p)
		cases = append(cases,
			opCase{"MaxPool2d" + cfg, [][]int{{2, 2, 7, 6}}, func(in []*tensor.Tensor) *tensor.Tensor { return MaxPool2d(in[0], k, s, p) }},
			opCase{"AvgPool2d" + cfg, [][]int{{2, 2, 7, 6}}, func(in []*tensor.Tensor) *tensor.Tensor { return AvgPool2d(in[0], k, s, p) }})
	}
	for _, o := range [][2]int{{1, 1}, {3, 2}, {4, 4}, {5, 7}, {9, 11}} {
		oh, ow := o[0], o[1]
		size := fmt.Sprintf(" %dx%d", oh, ow)
		cases = append(cases,
			opCase{"AdaptiveAvgPool2d" + size, [][]int{{2, 3, 7, 6}}, func(in []*tensor.Tensor) *tensor.Tensor { return AdaptiveAvgPool2d(in[0], oh, ow) }},
			opCase{"UpsampleNearest" + size, [][]int{{2, 3, 3, 4}}, func(in []*tensor.Tensor) *tensor.Tensor { return UpsampleNearest(in[0], oh, ow) }})
	}
	cases = append(cases,
		opCase{"GlobalAvgPool", [][]int{{3, 4, 5, 6}}, func(in []*tensor.Tensor) *tensor.Tensor { return GlobalAvgPool(in[0]) }},
		opCase{"UpsampleDown", [][]int{{1, 2, 7, 9}}, func(in []*tensor.Tensor) *tensor.Tensor { return UpsampleNearest(in[0], 3, 4) }})
	runOpCases(t, cases)
}

// naivePool pools each window of x padded with fill; reduce folds a
// window's values into one. It is the definition the pools are checked
// against, written without the clipped windows they use.
func naivePool(x *tensor.Tensor, k, s, p int, fill float64, reduce func([]float64) float64) *tensor.Tensor {
	sh := x.Shape()
	h, w := sh[2], sh[3]
	oh, ow := (h+2*p-k)/s+1, (w+2*p-k)/s+1
	out := tensor.New(tensor.Float64, sh[0], sh[1], oh, ow)
	at := func(pl, y, x0 int) float64 {
		if y < 0 || y >= h || x0 < 0 || x0 >= w {
			return fill
		}
		return x.At((pl*h+y)*w + x0)
	}
	o := 0
	for pl := range sh[0] * sh[1] {
		for i := range oh {
			for j := range ow {
				var win []float64
				for dy := range k {
					for dx := range k {
						win = append(win, at(pl, i*s-p+dy, j*s-p+dx))
					}
				}
				out.Set(o, reduce(win))
				o++
			}
		}
	}
	return out
}

func TestPoolForwardReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	x := gradcheck.Rand64(r, 2, 3, 9, 8)
	maxOf := func(v []float64) float64 {
		m := math.Inf(-1)
		for _, e := range v {
			m = math.Max(m, e)
		}
		return m
	}
	meanOf := func(v []float64) float64 {
		s := 0.0
		for _, e := range v {
			s += e
		}
		return s / float64(len(v))
	}
	for _, c := range poolConfigs {
		closeTo(t, "MaxPool2d", MaxPool2d(x, c.k, c.s, c.p), naivePool(x, c.k, c.s, c.p, math.Inf(-1), maxOf), 1e-12)
		closeTo(t, "AvgPool2d", AvgPool2d(x, c.k, c.s, c.p), naivePool(x, c.k, c.s, c.p, 0, meanOf), 1e-12)
	}
}

func TestPoolForwardByHand(t *testing.T) {
	// 0 1 2
	// 3 4 5
	// 6 7 8
	x := seq64(0, 1, 1, 3, 3)
	valuesAre(t, "MaxPool2d k2 s2 p1", MaxPool2d(x, 2, 2, 1), []int{1, 1, 2, 2}, 0, 2, 6, 8)
	valuesAre(t, "MaxPool2d k2 s1", MaxPool2d(x, 2, 1, 0), []int{1, 1, 2, 2}, 4, 5, 7, 8)
	// Padding counts in the divisor: the corner window holds 0+1+3+4 over 9.
	valuesAre(t, "AvgPool2d k3 s2 p1", AvgPool2d(x, 3, 2, 1), []int{1, 1, 2, 2}, 8.0/9, 12.0/9, 20.0/9, 24.0/9)
	valuesAre(t, "GlobalAvgPool", GlobalAvgPool(seq64(0, 2, 1, 2, 2)), []int{2, 1, 1, 1}, 1.5, 5.5)

	// Five columns into three bins: [0, 2), [1, 4), [3, 5).
	valuesAre(t, "AdaptiveAvgPool2d 5→3", AdaptiveAvgPool2d(seq64(0, 1, 1, 1, 5), 1, 3), []int{1, 1, 1, 3}, 0.5, 2, 3.5)
	// Two into three: [0, 1), [0, 2), [1, 2).
	valuesAre(t, "AdaptiveAvgPool2d 2→3", AdaptiveAvgPool2d(seq64(0, 1, 1, 2, 1), 3, 1), []int{1, 1, 3, 1}, 0, 0.5, 1)

	// Sources floor(i·2/3) = 0, 0, 1 across and floor(i·3/2) = 0, 1 down.
	valuesAre(t, "UpsampleNearest", UpsampleNearest(seq64(0, 1, 1, 3, 2), 2, 3), []int{1, 1, 2, 3}, 0, 0, 1, 2, 2, 3)
	valuesAre(t, "UpsampleNearest ×2", UpsampleNearest(seq64(0, 1, 1, 1, 2), 1, 4), []int{1, 1, 1, 4}, 0, 0, 1, 1)
}

func TestNearestSourcesLikePyTorch(t *testing.T) {
	// PyTorch computes i·(in/out) in float32: for 26 → 22, row 11 reads
	// row 12 where exact arithmetic gives floor(11·26/22) = 13.
	if got := nearestSources(26, 22)[11]; got != 12 {
		t.Errorf("nearestSources(26, 22)[11] = %d, want 12 as PyTorch", got)
	}
	for _, io := range [][2]int{{3, 7}, {8, 32}, {32, 8}, {5, 5}, {4, 8}} {
		for i, s := range nearestSources(io[0], io[1]) {
			if want := i * io[0] / io[1]; s != want {
				t.Errorf("nearestSources(%d, %d)[%d] = %d, want %d", io[0], io[1], i, s, want)
			}
		}
	}
}

func TestMaxPoolTiesAndNaN(t *testing.T) {
	// The first of equal maxima takes the gradient, as in PyTorch.
	x := tensor.FromFloat64([]float64{1, 3, 3, 0}, 1, 1, 2, 2).SetRequiresGrad(true)
	MaxPool2d(x, 2, 2, 0).Backward()
	valuesAre(t, "tie gradient", x.Grad, []int{1, 1, 2, 2}, 0, 1, 0, 0)

	y := MaxPool2d(tensor.FromFloat64([]float64{1, math.NaN(), 3, 0}, 1, 1, 2, 2), 2, 2, 0)
	if !math.IsNaN(y.At(0)) {
		t.Errorf("max with NaN = %v, want NaN", y.At(0))
	}
}

func TestPoolShapePanics(t *testing.T) {
	x := tensor.New(tensor.Float64, 1, 2, 4, 4)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"MaxPool2d rank", func() { MaxPool2d(tensor.New(tensor.Float64, 2, 4, 4), 2, 2, 0) }},
		{"MaxPool2d pad > k/2", func() { MaxPool2d(x, 2, 2, 2) }},
		{"MaxPool2d stride 0", func() { MaxPool2d(x, 2, 0, 0) }},
		{"MaxPool2d kernel > input", func() { MaxPool2d(x, 7, 1, 1) }},
		{"AvgPool2d kernel 0", func() { AvgPool2d(x, 0, 1, 0) }},
		{"AvgPool2d negative pad", func() { AvgPool2d(x, 3, 1, -1) }},
		{"AdaptiveAvgPool2d size 0", func() { AdaptiveAvgPool2d(x, 0, 2) }},
		{"GlobalAvgPool rank", func() { GlobalAvgPool(tensor.New(tensor.Float64, 2, 4)) }},
		{"UpsampleNearest size 0", func() { UpsampleNearest(x, 3, 0) }},
		{"UpsampleNearest rank", func() { UpsampleNearest(tensor.New(tensor.Float64, 4, 4), 8, 8) }},
	} {
		panicsWithShapeError(t, c.name, c.f)
	}
}
