package srm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// tailShapes are the (N, C, H, W) the fused tail is checked on: planes
// shorter than, equal to and longer than the vector kernels' 8 lanes, with
// and without a tail. N ≥ 3: with N = 2 SRM's BatchNorm maps a channel's
// two z to ±1 whatever they are, so the gradients through it vanish in
// exact arithmetic and both paths return rounding noise.
var tailShapes = [][4]int{{3, 4, 2, 2}, {4, 3, 7, 7}, {3, 5, 8, 8}, {5, 2, 16, 16}}

// tailInputs are the operands of one block tail.
type tailInputs struct {
	x, short *tensor.Tensor
	bn       *nn.BatchNorm2d
	m        *SRM
}

// newTailInputs builds operands of shape s and type dt from seed: random
// parameters and running statistics for both BatchNorms and a non-zero
// cfc, so that no gradient term vanishes; x off-centre; and a shortcut
// that drives part of the sum below zero, so that the ReLU's mask matters.
// The values are float32's in either type, so equal seeds give equal
// operands in float32 and float64.
func newTailInputs(s [4]int, dt tensor.DType, seed uint64) tailInputs {
	r := rand.New(rand.NewPCG(seed, 99))
	rclb, err := NewRecalibrator("srm", s[1], 0, r)
	if err != nil {
		panic(err)
	}
	in := tailInputs{bn: nn.NewBatchNorm2d(s[1]), m: rclb.(*SRM)}
	for _, mod := range []nn.Module{in.bn, in.m} {
		randomise(mod, r)
		nn.Cast(mod, dt)
	}
	x, short := tensor.New(tensor.Float32, s[:]...), tensor.New(tensor.Float32, s[:]...)
	x.FillNormal(r, 0.8, 2)
	short.FillNormal(r, -0.3, 1)
	in.x, in.short = x.As(dt).SetRequiresGrad(true), short.As(dt).SetRequiresGrad(true)
	return in
}

func (in tailInputs) fused() *tensor.Tensor { return in.m.tail(in.x, in.bn, in.short) }

// composed is the tail as separate operations: BatchNorm, SRM, addition
// and ReLU.
func (in tailInputs) composed() *tensor.Tensor {
	return op.AddReLU(in.m.Forward(in.bn.Forward(in.x)), in.short)
}

// tailResult is one named result of a tail's forward and backward pass.
type tailResult struct {
	name string
	t    *tensor.Tensor
}

// run evaluates tail on in, back-propagates seed (of type dt), and lists
// everything the tail computes or updates.
func (in tailInputs) run(tail func() *tensor.Tensor, seed *tensor.Tensor) []tailResult {
	out := tail()
	out.BackwardWith(seed.As(out.DType()))
	return append([]tailResult{
		{"out", out}, {"gates", in.m.Gates()},
		{"bn running_mean", in.bn.RunningMean}, {"bn running_var", in.bn.RunningVar},
		{"bn num_batches_tracked", in.bn.NumBatchesTracked},
		{"srm bn running_mean", in.m.BN.RunningMean}, {"srm bn running_var", in.m.BN.RunningVar},
		{"srm bn num_batches_tracked", in.m.BN.NumBatchesTracked},
	}, in.grads()...)
}

// grads lists the gradients of every input and parameter.
func (in tailInputs) grads() []tailResult {
	return []tailResult{
		{"dx", in.x.Grad}, {"dshort", in.short.Grad},
		{"bn dweight", in.bn.Weight.Grad}, {"bn dbias", in.bn.Bias.Grad},
		{"dcfc", in.m.CFC.Grad}, {"srm bn dweight", in.m.BN.Weight.Grad}, {"srm bn dbias", in.m.BN.Bias.Grad},
	}
}

// relErr is max|got − want| over max|want|, the error of got relative to
// want's scale, which stays meaningful where single elements are near 0.
func relErr(got, want []float64) float64 {
	diff, scale := 0.0, 0.0
	for i, w := range want {
		diff = max(diff, math.Abs(got[i]-w))
		scale = max(scale, math.Abs(w))
	}
	if diff == 0 {
		return 0
	}
	return diff / scale
}

// TestTailMatchesComposed checks the fused tail against the composed
// operations in float64: output, gates, both BatchNorms' running
// statistics and batch counts, and every gradient; float32 against the
// same float64 reference.
func TestTailMatchesComposed(t *testing.T) {
	for i, s := range tailShapes {
		seed := tensor.New(tensor.Float64, s[:]...)
		seed.FillNormal(rand.New(rand.NewPCG(uint64(i), 5)), 0, 1)
		want := newTailInputs(s, tensor.Float64, uint64(i))
		ref := want.run(want.composed, seed)
		if dead, live := countSign(ref[0].t); dead == 0 || live == 0 {
			t.Fatalf("%v: %d outputs clamped, %d passed: the ReLU's mask is not tested", s, dead, live)
		}
		for _, c := range []struct {
			dt  tensor.DType
			tol float64
		}{{tensor.Float64, 1e-10}, {tensor.Float32, 2e-6}} {
			got := newTailInputs(s, c.dt, uint64(i))
			for j, res := range got.run(got.fused, seed) {
				if res.t.DType() != c.dt {
					t.Errorf("%v %v %s: %v", s, c.dt, res.name, res.t.DType())
				}
				if e := relErr(res.t.Float64s(), ref[j].t.Float64s()); !(e <= c.tol) {
					t.Errorf("%v %v %s: relative error %.3g", s, c.dt, res.name, e)
				}
			}
		}
	}
}

// countSign counts the zero and the positive elements of a ReLU's output.
func countSign(out *tensor.Tensor) (zero, positive int) {
	for _, v := range out.Float64s() {
		if v > 0 {
			positive++
		} else {
			zero++
		}
	}
	return zero, positive
}

// TestTailAccumulates runs the tail twice without clearing the gradients:
// the second pass adds its shares to those of the first (x's and the
// shortcut's then exist, where the first pass wrote or adopted them).
func TestTailAccumulates(t *testing.T) {
	s := tailShapes[2]
	for _, dt := range []tensor.DType{tensor.Float64, tensor.Float32} {
		seed := tensor.New(dt, s[:]...)
		seed.FillNormal(rand.New(rand.NewPCG(4, 4)), 0, 1)
		in := newTailInputs(s, dt, 4)
		in.run(in.fused, seed)
		var once [][]float64
		for _, g := range in.grads() {
			once = append(once, g.t.Float64s())
		}
		in.run(in.fused, seed)
		for i, g := range in.grads() {
			twice := once[i]
			for j := range twice {
				twice[j] *= 2
			}
			if e := relErr(g.t.Float64s(), twice); !(e <= 1e-6) {
				t.Errorf("%v %s: relative error %.3g against twice one pass's", dt, g.name, e)
			}
		}
	}
}

// TestTailGradient checks the hand-derived backward pass with finite
// differences, for every input and parameter.
func TestTailGradient(t *testing.T) {
	for i, s := range tailShapes {
		in := newTailInputs(s, tensor.Float64, uint64(10+i))
		wrt := []*tensor.Tensor{in.x, in.short, in.bn.Weight, in.bn.Bias, in.m.CFC, in.m.BN.Weight, in.m.BN.Bias}
		if err := gradcheck.Compare(in.fused, wrt, 40, 1e-5); err != nil {
			t.Errorf("%v: %v", s, err)
		}
	}
}

// TestTailDeterministic runs the float32 tail twice on a batch large
// enough to be split across goroutines and wants the same bits.
func TestTailDeterministic(t *testing.T) {
	s := [4]int{16, 32, 16, 16}
	seed := tensor.New(tensor.Float32, s[:]...)
	seed.FillNormal(rand.New(rand.NewPCG(3, 3)), 0, 1)
	var runs [2][]tailResult
	for k := range runs {
		in := newTailInputs(s, tensor.Float32, 42)
		runs[k] = in.run(in.fused, seed)
	}
	for j, a := range runs[0] {
		again := runs[1][j].t.Float32s()
		for i, v := range a.t.Float32s() {
			if math.Float32bits(v) != math.Float32bits(again[i]) {
				t.Fatalf("%s element %d: %v, then %v", a.name, i, v, again[i])
			}
		}
	}
}

// TestTailShapeErrors checks that misuse panics with a *tensor.ShapeError.
func TestTailShapeErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		shape [4]int
		edit  func(*tailInputs)
	}{
		{"shortcut of another shape", [4]int{3, 4, 5, 5}, func(in *tailInputs) {
			in.short = tensor.New(tensor.Float64, 3, 4, 5, 4)
		}},
		{"shortcut of another type", [4]int{3, 4, 5, 5}, func(in *tailInputs) { in.short = in.short.As(tensor.Float32) }},
		{"BatchNorm for other channels", [4]int{3, 4, 5, 5}, func(in *tailInputs) {
			in.bn = nn.NewBatchNorm2d(5)
			nn.Cast(in.bn, tensor.Float64)
		}},
		{"one image", [4]int{1, 4, 5, 5}, nil},
		{"1x1 map", [4]int{3, 4, 1, 1}, nil},
	} {
		in := newTailInputs(c.shape, tensor.Float64, 1)
		if c.edit != nil {
			c.edit(&in)
		}
		if err := shapePanic(func() { in.fused() }); err == nil {
			t.Errorf("%s: no ShapeError", c.name)
		}
	}
}

// composedSRM hides an SRM's type from block.Forward, which then takes
// the unfused path: BatchNorm, the SRM's gates and op.ScaleAddReLU.
type composedSRM struct{ *SRM }

// TestResNetFusedTail trains one step of SRM-ResNet-20 with the fused
// block tails and one with the unfused path, from equal weights and
// inputs: loss, gradients, running statistics and gates agree, to
// rounding in float64 and to float32 precision in float32.
func TestResNetFusedTail(t *testing.T) {
	for _, c := range []struct {
		dt  tensor.DType
		tol float64
	}{{tensor.Float64, 1e-10}, {tensor.Float32, 2e-4}} {
		var vars [2][]nn.Var
		var losses [2]float64
		var gates [2][]*tensor.Tensor
		for k := range 2 {
			m, err := NewModel("srm-resnet20", Options{InputSize: 16, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			nn.Cast(m.Module(), c.dt)
			r := rand.New(rand.NewPCG(8, 9))
			for _, s := range m.Recalibrators() {
				randomise(s.Module, r)
			}
			for _, l := range m.net.layers {
				for _, b := range l {
					blk := b.(*block)
					if k == 1 {
						blk.rclb = composedSRM{blk.rclb.(*SRM)}
					}
					if fused := blk.fusedTail() != nil; fused != (k == 0) {
						t.Fatalf("run %d: fused tail %v", k, fused)
					}
				}
			}
			logits, err := m.Forward(images(r, c.dt, 4, 16))
			if err != nil {
				t.Fatal(err)
			}
			loss, err := op.CrossEntropy(logits, []int{1, 0, 7, 3})
			if err != nil {
				t.Fatal(err)
			}
			loss.Backward()
			losses[k], vars[k] = loss.Item(), m.Vars()
			for _, s := range m.Recalibrators() {
				gates[k] = append(gates[k], s.Module.Gates())
			}
		}
		if e := math.Abs(losses[0]-losses[1]) / losses[1]; !(e <= c.tol) {
			t.Errorf("%v: loss %v fused, %v unfused", c.dt, losses[0], losses[1])
		}
		for i, v := range vars[0] {
			got, want := v.Value, vars[1][i].Value
			if !v.Buffer {
				got, want = got.Grad, want.Grad
			}
			if e := relErr(got.Float64s(), want.Float64s()); !(e <= c.tol) {
				t.Errorf("%v %s: relative error %.3g", c.dt, v.Name, e)
			}
		}
		for i, g := range gates[0] {
			if e := relErr(g.Float64s(), gates[1][i].Float64s()); !(e <= c.tol) {
				t.Errorf("%v gates of block %d: relative error %.3g", c.dt, i, e)
			}
		}
	}
}

// BenchmarkTail times a block's tail, forward and backward, in float32 at
// ResNet-20's shapes: fused (SRM.tail), the unfused SRM path it replaces
// (BatchNorm, gates, op.ScaleAddReLU), and a plain block's
// op.BatchNormAddReLU, the cost the fused tail aims at.
func BenchmarkTail(b *testing.B) {
	for _, s := range stageShapes {
		in := newTailInputs(s, tensor.Float32, 1)
		seed := tensor.New(tensor.Float32, s[:]...)
		seed.FillNormal(rand.New(rand.NewPCG(2, 2)), 0, 1)
		bn := in.bn
		for _, c := range []struct {
			name string
			tail func() *tensor.Tensor
		}{
			{"fused", in.fused},
			{"unfused", func() *tensor.Tensor {
				y := bn.Forward(in.x)
				g, _ := in.m.channelGates(y)
				return op.ScaleAddReLU(y, g, in.short)
			}},
			{"plain", func() *tensor.Tensor {
				return op.BatchNormAddReLU(in.x, bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar, in.short, true, bn.Momentum, bn.Eps)
			}},
		} {
			b.Run(fmt.Sprintf("%d/%s", s[1], c.name), func(b *testing.B) {
				for b.Loop() {
					for _, t := range []*tensor.Tensor{in.x, in.short, bn.Weight, bn.Bias, in.m.CFC, in.m.BN.Weight, in.m.BN.Bias} {
						t.Grad = nil
					}
					c.tail().BackwardWith(seed)
				}
			})
		}
	}
}

// TestTailBlocked runs the float32 tail on maps in the blocked layout (as
// a convolution leaves them) against the float64 composed operations, and
// a second pass that adds to the gradients the first left.
func TestTailBlocked(t *testing.T) {
	for i, s := range [][4]int{{3, 32, 5, 6}, {2, 16, 8, 8}} {
		seed := tensor.New(tensor.Float64, s[:]...)
		seed.FillNormal(rand.New(rand.NewPCG(uint64(i), 7)), 0, 1)
		want := newTailInputs(s, tensor.Float64, uint64(i))
		ref := want.run(want.composed, seed)
		got := newTailInputs(s, tensor.Float32, uint64(i))
		tensor.Blocked16(got.x)
		tensor.Blocked16(got.short)
		res := got.run(func() *tensor.Tensor {
			out := got.fused()
			if !tensor.IsBlocked16(out) {
				t.Fatalf("%v: the tail left the blocked layout", s)
			}
			return out
		}, seed)
		for j, r := range res {
			if e := relErr(r.t.Float64s(), ref[j].t.Float64s()); !(e <= 2e-6) {
				t.Errorf("%v %s: relative error %.3g", s, r.name, e)
			}
		}
		once := got.grads()
		var first [][]float64
		for _, g := range once {
			first = append(first, g.t.Float64s())
		}
		tensor.Blocked16(got.x)
		tensor.Blocked16(got.short)
		tensor.Blocked16(got.x.Grad)
		got.run(got.fused, seed)
		for k, g := range got.grads() {
			for j := range first[k] {
				first[k][j] *= 2
			}
			if e := relErr(g.t.Float64s(), first[k]); !(e <= 1e-6) {
				t.Errorf("%v %s: twice one pass's, relative error %.3g", s, g.name, e)
			}
		}
	}
}
