package ggraph

import (
	"fmt"
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	gt "gorgonia.org/tensor"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/tensor"
)

// Each test here shows one gorgonia defect that this package works around,
// and that the workaround gives the right answer. When a gorgonia release
// repairs a defect, its test fails with "upstream fixed", naming the code
// that can then be simplified.

// upstreamFixed reports that the defect is gone.
func upstreamFixed(t *testing.T, defect, simplify string) {
	t.Helper()
	t.Errorf("upstream fixed: %s; simplify %s", defect, simplify)
}

// runValue builds a graph with build, runs it once and returns the values
// of the nodes build returns; a panic in gorgonia becomes an error.
func runValue(build func(g *G.ExprGraph) G.Nodes) (vals []*tensor.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
			if be, ok := r.(buildError); ok {
				err = be.err
			}
		}
	}()
	g := G.NewGraph()
	var reads []*G.Value
	for _, n := range build(g) {
		reads = append(reads, read(n))
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return nil, err
	}
	for _, v := range reads {
		t, err := FromValue(*v)
		if err != nil {
			return nil, err
		}
		vals = append(vals, t)
	}
	return vals, nil
}

// counting is a (2, 2, 4, 4) float64 input holding 0..63.
func counting(g *G.ExprGraph) *G.Node {
	back := make([]float64, 64)
	for i := range back {
		back[i] = float64(i)
	}
	return G.NewTensor(g, G.Float64, 4, G.WithShape(2, 2, 4, 4), G.WithName("x"),
		G.WithValue(gt.New(gt.WithShape(2, 2, 4, 4), gt.WithBacking(back))))
}

// Column sums of plane (0, 1), which holds 16..31: 16+20+24+28 = 88.
func TestDefectSumOverMiddleAxis(t *testing.T) {
	vals, err := runValue(func(g *G.ExprGraph) G.Nodes {
		x := counting(g)
		return G.Nodes{must(G.Sum(x, 2)), sumLast(windows(x, 4, 1, "x"))}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := vals[0].At(4); got == 88 {
		upstreamFixed(t, "Sum over axis 2 of a 4-D tensor", "planes, windows and channelMean (a plain Sum or Mean over the axes would do)")
	} else if got != 56 {
		t.Errorf("Sum over axis 2: element [0,1,0] is %v; the known defect gives 56", got)
	}
	if got := vals[1].At(4); got != 88 {
		t.Errorf("last-axis sum of the column windows: %v, want 88", got)
	}
}

func TestDefectGlobalAveragePoolHasNoGradient(t *testing.T) {
	_, err := runValue(func(g *G.ExprGraph) G.Nodes {
		x := counting(g)
		return must2(G.Grad(must(G.Sum(must(G.GlobalAveragePool2D(x)))), x))
	})
	if err == nil {
		upstreamFixed(t, "GlobalAveragePool2D has a gradient", "SE's squeeze and GE-θ⁻'s global gather (windowMean over the whole map)")
	}
	t.Logf("GlobalAveragePool2D's gradient: %v", err)
	vals, err := runValue(func(g *G.ExprGraph) G.Nodes {
		x := counting(g)
		return must2(G.Grad(must(G.Sum(windowMean(x, 4, 4, "x"))), x))
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals[0].Float64s() {
		if v != 1.0/16 {
			t.Fatalf("gradient of the window mean: element %d is %v, want 1/16", i, v)
		}
	}
}

func TestDefectAveragePoolGradient(t *testing.T) {
	// With Σ y·R over 2x2 windows, x[i][j] gets R[i/2][j/2]/4.
	seed := tensor.FromFloat64([]float64{1, 2, 3, 4, 5, 6, 7, 8}, 2, 2, 2, 1)
	want := tensor.New(tensor.Float64, 2, 2, 4, 2)
	for i := range want.Len() {
		p, r, c := i/8, i/2%4, i%2
		want.Set(i, seed.At(p*2+r/2+c/2)/4)
	}
	x := tensor.New(tensor.Float64, 2, 2, 4, 2)
	x.FillNormal(randSource(), 0, 1)
	grad := func(pool func(*G.Node) *G.Node) ([]*tensor.Tensor, error) {
		return runValue(func(g *G.ExprGraph) G.Nodes {
			xn := input(g, "x", x)
			y := pool(xn)
			return must2(G.Grad(must(G.Sum(must(G.HadamardProd(y, G.NewConstant(ToDense(seed)))))), xn))
		})
	}
	got, err := grad(func(x *G.Node) *G.Node { return must(G.AveragePool2D(x, gt.Shape{2, 2}, []int{0, 0}, []int{2, 2})) })
	switch {
	case err != nil:
		t.Logf("AveragePool2D's gradient: %v", err)
	case maxRelDiff(got[0], want, 0) < 1e-12:
		upstreamFixed(t, "AveragePool2D's gradient", "GE-θ⁻'s local gather (windowMean)")
	default:
		t.Logf("AveragePool2D's gradient %v, want %v", got[0].Float64s(), want.Float64s())
	}
	got, err = grad(func(x *G.Node) *G.Node { return windowMean(x, 2, 2, "x") })
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(got[0], want, 0); d > 1e-12 {
		t.Errorf("gradient of windowMean: %v, want %v", got[0].Float64s(), want.Float64s())
	}
}

func TestDefectBatchNorm(t *testing.T) {
	g := G.NewGraph()
	x := counting(g)
	_, scale, _, op, err := G.BatchNorm(x, nil, nil, 0.1, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if !scale.Shape().Eq(x.Shape()) {
		upstreamFixed(t, fmt.Sprintf("BatchNorm's default scale is %v, no longer the input's shape", scale.Shape()), "nothing (BatchNorm is still built from primitives for srmlab's running statistics)")
	}
	mean := gt.New(gt.WithShape(2), gt.WithBacking([]float64{3, 4}))
	variance := gt.New(gt.WithShape(2), gt.WithBacking([]float64{5, 6}))
	if err := op.SetStats(mean, variance); err != nil {
		t.Fatal(err)
	}
	// A TapeMachine calls SetTraining(true) on every BatchNorm it is made
	// for, so a fresh machine forgets what training gathered.
	G.NewTapeMachine(g).Close()
	m, v := op.Stats()
	if m.Data().([]float64)[0] == 3 {
		upstreamFixed(t, "SetTraining(true) keeps BatchNorm's running statistics", "nothing")
	}
	t.Logf("default scale %v; running statistics after NewTapeMachine %v, %v", scale.Shape(), m.Data(), v.Data())

	// srmlab's BatchNorm in a gorgonia graph: (C) parameters, and running
	// statistics that outlive any number of machines.
	bn := nn.NewBatchNorm2d(2)
	nn.Cast(bn, tensor.Float64)
	bn.RunningMean.Fill(3)
	b := NewBuilder(g, tensor.Float64, true)
	if _, err := b.Forward(x, "bn", bn); err != nil {
		t.Fatal(err)
	}
	for _, p := range b.Params() {
		if s := p.Node.Shape(); len(s) != 1 || s[0] != 2 {
			t.Errorf("%s: shape %v, want (2)", p.Name, s)
		}
	}
	G.NewTapeMachine(g).Close()
	if bn.RunningMean.At(0) != 3 || bn.NumBatchesTracked.Item() != 0 {
		t.Errorf("making a machine changed srmlab's statistics: mean %v, batches %v", bn.RunningMean.At(0), bn.NumBatchesTracked.Item())
	}
}

// d/dx x^(−1/2) at 4 is −1/16; gorgonia's InverseSqrt gives −4.
func TestDefectInverseSqrtGradient(t *testing.T) {
	grad := func(f func(*G.Node) *G.Node) float64 {
		vals, err := runValue(func(g *G.ExprGraph) G.Nodes {
			x := G.NewTensor(g, G.Float64, 1, G.WithShape(1), G.WithName("x"), G.WithValue(gt.New(gt.WithShape(1), gt.WithBacking([]float64{4}))))
			return must2(G.Grad(must(G.Sum(f(x))), x))
		})
		if err != nil {
			t.Fatal(err)
		}
		return vals[0].At(0)
	}
	if got := grad(func(x *G.Node) *G.Node { return must(G.InverseSqrt(x)) }); got == -1.0/16 {
		upstreamFixed(t, "InverseSqrt's gradient", "batchNorm's istd")
	} else {
		t.Logf("InverseSqrt's gradient at 4: %v", got)
	}
	if got := grad(func(x *G.Node) *G.Node { return must(G.Inverse(must(G.Sqrt(x)))) }); got != -1.0/16 {
		t.Errorf("gradient of 1/sqrt(x) at 4: %v, want -1/16", got)
	}
}

// A mean used both on its own and broadcast: gorgonia hands the broadcast
// operand a gradient without the broadcast axis, (2, 3) beside the
// (2, 3, 1) of the other use, and Grad fails to add them.
func TestDefectBroadcastGradient(t *testing.T) {
	x := tensor.New(tensor.Float64, 2, 3, 4)
	x.FillNormal(randSource(), 0, 1)
	_, err := runValue(func(g *G.ExprGraph) G.Nodes {
		xn := input(g, "x", x)
		m := must(G.Mean(xn, 2))
		d := must(G.BroadcastSub(xn, m, nil, []byte{2}))
		loss := must(G.Add(must(G.Sum(must(G.Square(d)))), must(G.Sum(must(G.Reshape(m, gt.Shape{2, 3, 1}))))))
		return must2(G.Grad(loss, xn))
	})
	if err == nil {
		upstreamFixed(t, "broadcast gradients keep their shape", "Builder.tile (gorgonia's Broadcast* would do)")
	}
	t.Logf("Grad through BroadcastSub: %v", err)
	vals, err := runValue(func(g *G.ExprGraph) G.Nodes {
		xn := input(g, "x", x)
		b := NewBuilder(g, tensor.Float64, true)
		m := meanLast(xn)
		d := must(G.Sub(xn, b.tile(m, 1, 4, 2, 3, 4)))
		loss := must(G.Add(must(G.Sum(must(G.Square(d)))), must(G.Sum(reshape(m, 2, 3, 1)))))
		return must2(G.Grad(loss, xn))
	})
	if err != nil {
		t.Fatal(err)
	}
	// Σ(x−m)² has no gradient through m (the deviations sum to 0); Σm
	// adds 1/4 to each element.
	got := vals[0].Float64s()
	for i, v := range x.Float64s() {
		mean := 0.0
		for j := range 4 {
			mean += x.At(i/4*4+j) / 4
		}
		if want := 2*(v-mean) + 0.25; math.Abs(got[i]-want) > 1e-12 {
			t.Fatalf("gradient element %d: %v, want %v", i, got[i], want)
		}
	}
}

// gorgonia's Reshape shares the input's memory without the TapeMachine
// knowing: an in-place operation on the reshaped node (the Sub here, whose
// first operand is read by nothing after it) rewrites the input itself, in
// the middle of the run. Σ(x−1) + Σx for x = 1..4 is 16; the Σx then reads
// the overwritten input and gives 12.
func TestDefectReshapeAliasing(t *testing.T) {
	for _, ours := range []bool{false, true} {
		vals, err := runValue(func(g *G.ExprGraph) G.Nodes {
			x := G.NewTensor(g, G.Float64, 2, G.WithShape(2, 2), G.WithName("x"), G.WithValue(gt.New(gt.WithShape(2, 2), gt.WithBacking([]float64{1, 2, 3, 4}))))
			one := G.NewTensor(g, G.Float64, 1, G.WithShape(4), G.WithName("one"), G.WithValue(gt.New(gt.WithShape(4), gt.WithBacking([]float64{1, 1, 1, 1}))))
			r := reshape(x, 4)
			if !ours {
				r = must(G.Reshape(x, gt.Shape{4}))
			}
			return G.Nodes{must(G.Add(must(G.Sum(must(G.Sub(r, one)))), must(G.Sum(x))))}
		})
		if err != nil {
			t.Fatal(err)
		}
		got := vals[0].Item()
		t.Logf("our reshape %v: %v", ours, got)
		switch {
		case !ours && got == 16:
			upstreamFixed(t, "an in-place operation on a Reshape leaves the input alone", "reshape (gorgonia's Reshape would do)")
		case ours && got != 16:
			t.Errorf("Σ(x−1) + Σx with our reshape: %v, want 16", got)
		}
	}
}

func TestDefectHeNFloat32(t *testing.T) {
	defer func() {
		if recover() == nil {
			upstreamFixed(t, "HeN for float32", "nothing (values come from srmlab modules)")
		}
	}()
	G.HeN(1)(G.Float32, 2, 2)
}

// must2 is must for gorgonia calls that return several nodes.
func must2(ns G.Nodes, err error) G.Nodes {
	if err != nil {
		panic(buildError{err})
	}
	return ns
}
