package op

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

// bnStats returns running statistics for c channels in type dt that differ
// per channel, so that evaluation mode depends on each of them.
func bnStats(dt tensor.DType, c int) (mean, variance *tensor.Tensor) {
	mean, variance = tensor.New(dt, c), tensor.New(dt, c)
	for i := range c {
		mean.Set(i, 0.3*float64(i)-0.4)
		variance.Set(i, 0.5+0.25*float64(i))
	}
	return mean, variance
}

// bnCase normalises in[0] with gamma in[1] and beta in[2].
func bnCase(name string, shape []int, training bool) opCase {
	c := shape[1]
	return opCase{name, [][]int{shape, {c}, {c}}, func(in []*tensor.Tensor) *tensor.Tensor {
		rm, rv := bnStats(in[0].DType(), c)
		return BatchNorm(in[0], in[1], in[2], rm, rv, training, 0.1, 1e-5)
	}}
}

// bnReLUCase is bnCase through BatchNormReLU.
func bnReLUCase(name string, shape []int, training bool) opCase {
	c := shape[1]
	return opCase{name, [][]int{shape, {c}, {c}}, func(in []*tensor.Tensor) *tensor.Tensor {
		rm, rv := bnStats(in[0].DType(), c)
		return BatchNormReLU(in[0], in[1], in[2], rm, rv, training, 0.1, 1e-5)
	}}
}

// bnAddReLUCase is bnCase through BatchNormAddReLU with the shortcut in[3].
func bnAddReLUCase(name string, shape []int, training bool) opCase {
	c := shape[1]
	return opCase{name, [][]int{shape, {c}, {c}, shape}, func(in []*tensor.Tensor) *tensor.Tensor {
		rm, rv := bnStats(in[0].DType(), c)
		return BatchNormAddReLU(in[0], in[1], in[2], rm, rv, in[3], training, 0.1, 1e-5)
	}}
}

func TestBatchNormReLUIsComposition(t *testing.T) {
	// The fusion must not change a value: BatchNormReLU gives the output,
	// gradients and running statistics of ReLU(BatchNorm(...)).
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
		for _, training := range []bool{true, false} {
			r := rand.New(rand.NewPCG(5, 6))
			x := tensor.New(dt, 6, 3, 5, 7)
			x.FillNormal(r, 0.3, 1.5)
			gamma, beta := tensor.New(dt, 3), tensor.New(dt, 3)
			gamma.FillNormal(r, 1, 0.5)
			beta.FillNormal(r, 0, 0.5)
			seed := tensor.New(dt, x.Shape()...)
			seed.FillNormal(r, 0, 1)
			short := tensor.New(dt, x.Shape()...)
			short.FillNormal(r, 0, 1)
			run := func(fused, add bool) []*tensor.Tensor {
				for _, p := range []*tensor.Tensor{x, gamma, beta, short} {
					p.ZeroGrad()
					p.SetRequiresGrad(true)
				}
				rm, rv := bnStats(dt, 3)
				var y *tensor.Tensor
				switch {
				case fused && add:
					y = BatchNormAddReLU(x, gamma, beta, rm, rv, short, training, 0.1, 1e-5)
				case fused:
					y = BatchNormReLU(x, gamma, beta, rm, rv, training, 0.1, 1e-5)
				case add:
					y = AddReLU(BatchNorm(x, gamma, beta, rm, rv, training, 0.1, 1e-5), short)
				default:
					y = ReLU(BatchNorm(x, gamma, beta, rm, rv, training, 0.1, 1e-5))
				}
				y.BackwardWith(seed)
				res := []*tensor.Tensor{y, x.Grad, gamma.Grad, beta.Grad, rm, rv}
				if add {
					res = append(res, short.Grad)
				}
				return res
			}
			for _, add := range []bool{false, true} {
				// Adding the shortcut inside the affine map's FMA rounds
				// once where the separate ops round twice.
				tol := 0.0
				if add {
					tol = 1e-6
				}
				got, want := run(true, add), run(false, add)
				for i := range want {
					for j := range want[i].Len() {
						if d := math.Abs(got[i].At(j) - want[i].At(j)); !(d <= tol*(1+math.Abs(want[i].At(j)))) {
							t.Fatalf("%v training=%v add=%v: result %d element %d is %v, want %v", dt, training, add, i, j, got[i].At(j), want[i].At(j))
						}
					}
				}
			}
		}
	}
}

func TestBatchNormGrad(t *testing.T) {
	runOpCases(t, []opCase{
		bnCase("train NCHW", []int{3, 4, 5, 6}, true),
		bnCase("train NC", []int{6, 5}, true),
		bnCase("train H=W=1", []int{4, 3, 1, 1}, true),
		bnCase("train N=1", []int{1, 2, 3, 2}, true),
		bnCase("eval NCHW", []int{3, 4, 5, 6}, false),
		bnCase("eval NC", []int{6, 5}, false),
		bnCase("eval H=W=1", []int{1, 3, 1, 1}, false),
		bnReLUCase("fused ReLU train", []int{3, 4, 5, 6}, true),
		bnReLUCase("fused ReLU eval", []int{3, 4, 5, 6}, false),
		bnAddReLUCase("fused add+ReLU train", []int{3, 4, 5, 6}, true),
		bnAddReLUCase("fused add+ReLU eval", []int{3, 4, 5, 6}, false),
		// A nonlinearity after the normalisation makes the output
		// gradient correlate with x̂, which the mean-free parts of the
		// training backward pass must then remove.
		{"train then Sigmoid", [][]int{{4, 3, 2, 2}, {3}, {3}}, func(in []*tensor.Tensor) *tensor.Tensor {
			rm, rv := bnStats(in[0].DType(), 3)
			return Sigmoid(BatchNorm(in[0], in[1], in[2], rm, rv, true, 0.1, 1e-5))
		}},
	})
}

// naiveBatchNorm normalises x with its own batch statistics, written
// directly from the definition.
func naiveBatchNorm(x, gamma, beta *tensor.Tensor, eps float64) (y *tensor.Tensor, mean, biased, unbiased []float64) {
	s := x.Shape()
	n, c, hw := s[0], s[1], x.Len()/(s[0]*s[1])
	y = tensor.New(tensor.Float64, s...)
	for ch := range c {
		var vs []float64
		for i := range n {
			for j := range hw {
				vs = append(vs, x.At((i*c+ch)*hw+j))
			}
		}
		m, v := 0.0, 0.0
		for _, e := range vs {
			m += e / float64(len(vs))
		}
		for _, e := range vs {
			v += (e - m) * (e - m)
		}
		mean, biased, unbiased = append(mean, m), append(biased, v/float64(len(vs))), append(unbiased, v/float64(len(vs)-1))
		for i := range n {
			for j := range hw {
				k := (i*c+ch)*hw + j
				y.Set(k, gamma.At(ch)*(x.At(k)-m)/math.Sqrt(v/float64(len(vs))+eps)+beta.At(ch))
			}
		}
	}
	return y, mean, biased, unbiased
}

func TestBatchNormTrainingReference(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 9))
	for _, shape := range [][]int{{4, 3, 5, 5}, {7, 6}, {5, 2, 1, 1}} {
		c := shape[1]
		x, gamma, beta := gradcheck.Rand64(r, shape...), gradcheck.Rand64(r, c), gradcheck.Rand64(r, c)
		rm, rv := bnStats(tensor.Float64, c)
		rm0, rv0 := rm.Clone(), rv.Clone()
		const momentum, eps = 0.1, 1e-5
		want, mean, _, unbiased := naiveBatchNorm(x, gamma, beta, eps)
		closeTo(t, "training output", BatchNorm(x, gamma, beta, rm, rv, true, momentum, eps), want, 1e-12)
		for ch := range c {
			wm := (1-momentum)*rm0.At(ch) + momentum*mean[ch]
			wv := (1-momentum)*rv0.At(ch) + momentum*unbiased[ch]
			if math.Abs(rm.At(ch)-wm) > 1e-12 || math.Abs(rv.At(ch)-wv) > 1e-12 {
				t.Errorf("%v channel %d: running (%v, %v), want (%v, %v)", shape, ch, rm.At(ch), rv.At(ch), wm, wv)
			}
		}
	}
}

func TestBatchNormByHand(t *testing.T) {
	// One channel holding 1, 2, 3, 4: mean 2.5, biased variance 1.25,
	// unbiased 5/3.
	x := seq64(1, 2, 1, 1, 2)
	gamma, beta := tensor.FromFloat64([]float64{2}, 1), tensor.FromFloat64([]float64{1}, 1)
	rm, rv := tensor.FromFloat64([]float64{0}, 1), tensor.FromFloat64([]float64{1}, 1)
	y := BatchNorm(x, gamma, beta, rm, rv, true, 0.1, 1e-5)
	sd := math.Sqrt(1.25 + 1e-5)
	valuesAre(t, "training", y, []int{2, 1, 1, 2}, 1-3/sd, 1-1/sd, 1+1/sd, 1+3/sd)
	valuesAre(t, "running mean", rm, []int{1}, 0.25)
	valuesAre(t, "running var", rv, []int{1}, 0.9+0.1*5.0/3)

	// Evaluation reads the running statistics and leaves them alone.
	rm.Set(0, 1)
	rv.Set(0, 4)
	y = BatchNorm(tensor.FromFloat64([]float64{3, -1}, 2, 1), gamma, beta, rm, rv, false, 0.1, 1e-5)
	sd = math.Sqrt(4 + 1e-5)
	valuesAre(t, "evaluation", y, []int{2, 1}, 1+4/sd, 1-4/sd)
	valuesAre(t, "running stats after evaluation", tensor.FromFloat64([]float64{rm.At(0), rv.At(0)}, 2), []int{2}, 1, 4)
}

func TestBatchNormFloat32Stats(t *testing.T) {
	// A channel far from zero: float32 sums of squares would lose its
	// variance of about 1 entirely; the float64 accumulators keep it.
	r := rand.New(rand.NewPCG(4, 4))
	x64 := tensor.New(tensor.Float64, 64, 2, 8, 8)
	x64.FillNormal(r, 3000, 1)
	x32 := x64.As(tensor.Float32)
	ones, zeros := tensor.New(tensor.Float64, 2), tensor.New(tensor.Float64, 2)
	ones.Fill(1)
	rm64, rv64 := tensor.New(tensor.Float64, 2), tensor.New(tensor.Float64, 2)
	rm32, rv32 := rm64.As(tensor.Float32), rv64.As(tensor.Float32)
	want := BatchNorm(x32.As(tensor.Float64), ones, zeros, rm64, rv64, true, 0.1, 1e-5)
	got := BatchNorm(x32, ones.As(tensor.Float32), zeros.As(tensor.Float32), rm32, rv32, true, 0.1, 1e-5)
	// x·a + b with b ≈ −3000 costs float32 resolution at 3000.
	closeTo(t, "output", got, want, 1e-3)
	closeTo(t, "running var", rv32, rv64, 1e-6)
}

func TestBatchNormDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 1))
	x := tensor.New(tensor.Float32, 16, 32, 16, 16)
	x.FillNormal(r, 0.5, 2)
	x.SetRequiresGrad(true)
	gamma, beta := tensor.New(tensor.Float32, 32), tensor.New(tensor.Float32, 32)
	gamma.FillNormal(r, 1, 0.1)
	gamma.SetRequiresGrad(true)
	beta.SetRequiresGrad(true)
	seed := tensor.New(tensor.Float32, x.Shape()...)
	seed.FillNormal(r, 0, 1)
	run := func() [][]float32 {
		x.ZeroGrad()
		gamma.ZeroGrad()
		beta.ZeroGrad()
		rm, rv := bnStats(tensor.Float32, 32)
		y := BatchNorm(x, gamma, beta, rm, rv, true, 0.1, 1e-5)
		y.BackwardWith(seed)
		return [][]float32{y.Float32s(), x.Grad.Float32s(), gamma.Grad.Float32s(), beta.Grad.Float32s(), rm.F32(), rv.F32()}
	}
	first, second := run(), run()
	for i := range first {
		for j := range first[i] {
			if math.Float32bits(first[i][j]) != math.Float32bits(second[i][j]) {
				t.Fatalf("result %d element %d: %v then %v", i, j, first[i][j], second[i][j])
			}
		}
	}
}

func TestBatchNormShapePanics(t *testing.T) {
	c3 := tensor.New(tensor.Float64, 3)
	bn := func(x *tensor.Tensor, training bool, params ...*tensor.Tensor) func() {
		p := []*tensor.Tensor{c3, c3, c3, c3}
		copy(p, params)
		return func() { BatchNorm(x, p[0], p[1], p[2], p[3], training, 0.1, 1e-5) }
	}
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"rank 3", bn(tensor.New(tensor.Float64, 2, 3, 4), true)},
		{"gamma length", bn(tensor.New(tensor.Float64, 2, 3, 4, 4), true, tensor.New(tensor.Float64, 4))},
		{"running var (1, C)", bn(tensor.New(tensor.Float64, 2, 3), false, c3, c3, c3, tensor.New(tensor.Float64, 1, 3))},
		{"mixed types", bn(tensor.New(tensor.Float32, 2, 3), true)},
		{"one value per channel (N, C)", bn(tensor.New(tensor.Float64, 1, 3), true)},
		{"one value per channel H=W=1", bn(tensor.New(tensor.Float64, 1, 3, 1, 1), true)},
	} {
		panicsWithShapeError(t, c.name, c.f)
	}
}
