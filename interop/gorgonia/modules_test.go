package ggraph

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

// moduleCase is a module and the input shape it is checked on.
type moduleCase struct {
	name  string
	shape []int // (N, C, H, W)
	make  func(r *rand.Rand, c, size int) (nn.Module, error)
}

// spec is a case for srm.NewRecalibrator(s), global GE kernels sized for
// the (square) map.
func spec(s string, shape ...int) moduleCase {
	return moduleCase{s, shape, func(r *rand.Rand, c, size int) (nn.Module, error) {
		return srm.NewRecalibrator(s, c, size, r)
	}}
}

// layer is a case for a plain layer.
func layer(name string, m func(r *rand.Rand, c int) nn.Module, shape ...int) moduleCase {
	return moduleCase{name, shape, func(r *rand.Rand, c, _ int) (nn.Module, error) { return m(r, c), nil }}
}

var moduleCases = []moduleCase{
	spec("srm", 4, 6, 5, 5),
	spec("srm:avg", 4, 6, 5, 5),
	spec("srm:std", 4, 6, 5, 5),
	spec("srm:max", 4, 6, 5, 5),
	spec("srm:avg+max", 4, 6, 5, 5),
	spec("srm:std+max", 4, 6, 5, 5),
	spec("srm:avg+std+max", 4, 6, 5, 5),
	spec("srm:biased", 4, 6, 5, 5),
	spec("srm:biased", 4, 6, 1, 1), // the biased std takes a 1x1 map
	spec("srm:mlp:r2", 4, 6, 3, 4),
	spec("srm:avg+std+max:biased:mlp:r3", 3, 6, 4, 3),
	spec("se", 4, 6, 5, 5),
	spec("se:r2", 3, 8, 4, 6),
	spec("ge", 4, 6, 5, 5),
	spec("ge:e2", 3, 6, 6, 6),
	spec("ge:e2", 3, 6, 5, 7), // a row and a column past the last window, uneven upsampling
	spec("ge:e3", 3, 4, 7, 7),
	spec("ge-", 4, 6, 5, 3),
	spec("ge-:e2", 3, 6, 6, 6),
	spec("ge-:e3", 3, 6, 8, 7),
	spec("ge+", 4, 6, 4, 4),
	spec("ge+:e2:r2", 3, 6, 5, 5),
	layer("conv3x3", func(r *rand.Rand, c int) nn.Module { return nn.NewConv2d(r, c, 5, 3, 1, 1, 1, true) }, 2, 3, 6, 6),
	layer("conv3x3/2", func(r *rand.Rand, c int) nn.Module { return nn.NewConv2d(r, c, 5, 3, 2, 1, 1, false) }, 2, 3, 7, 7),
	layer("conv1x1", func(r *rand.Rand, c int) nn.Module { return nn.NewConv2d(r, c, 4, 1, 1, 0, 1, true) }, 2, 3, 1, 1),
	layer("bn", func(r *rand.Rand, c int) nn.Module { return nn.NewBatchNorm2d(c) }, 3, 4, 3, 2),
	layer("avgpool2", func(r *rand.Rand, c int) nn.Module { return nn.NewAvgPool2d(2, 2, 0) }, 2, 3, 5, 4),
	layer("adaptive-avgpool", func(r *rand.Rand, c int) nn.Module {
		return nn.Sequential{nn.NewAdaptiveAvgPool2d(1, 1), nn.Flatten{}, nn.NewLinear(r, c, 2, true)}
	}, 2, 3, 4, 6),
	layer("adaptive-avgpool-2x3", func(r *rand.Rand, c int) nn.Module { return nn.NewAdaptiveAvgPool2d(2, 3) }, 2, 3, 4, 6),
	layer("conv-bn-relu-flatten-linear", func(r *rand.Rand, c int) nn.Module {
		return nn.Sequential{nn.NewConv2d(r, c, 4, 3, 2, 1, 1, false), nn.NewBatchNorm2d(4), nn.ReLU{}, nn.Flatten{}, nn.NewLinear(r, 4*2*2, 3, true), nn.Sigmoid{}}
	}, 3, 2, 4, 4),
}

// TestModulesMatchSrmlab builds each module in gorgonia from a randomised
// float64 srmlab module and checks the output, the gradients of Σ out·R
// with respect to the input and every parameter, and in training the
// updated running statistics, against srmlab's own Forward and Backward.
func TestModulesMatchSrmlab(t *testing.T) {
	const tol = 1e-8
	for i, c := range moduleCases {
		for _, training := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/%v/training=%v", c.name, c.shape, training), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(i), 1))
				checkModule(t, r, c, training, tensor.Float64, tol)
			})
		}
	}
}

// TestModulesFloat32 checks that float32 graphs work too, to float32
// precision.
func TestModulesFloat32(t *testing.T) {
	for _, c := range []moduleCase{spec("srm", 4, 6, 5, 5), spec("ge:e2", 3, 6, 5, 7), spec("se", 4, 6, 5, 5)} {
		t.Run(c.name, func(t *testing.T) {
			checkModule(t, rand.New(rand.NewPCG(9, 9)), c, true, tensor.Float32, 1e-4)
		})
	}
}

func checkModule(t *testing.T, r *rand.Rand, c moduleCase, training bool, dt tensor.DType, tol float64) {
	n, ch, h, w := c.shape[0], c.shape[1], c.shape[2], c.shape[3]
	size := 0
	if h == w {
		size = h
	}
	m, err := c.make(r, ch, size)
	if err != nil {
		t.Fatal(err)
	}
	nn.Cast(m, dt)
	randomise(r, m)
	m.SetTraining(training)
	x := randTensor(r, n, ch, h, w)
	x.SetDType(dt)
	x.SetRequiresGrad(true)

	// srmlab first, then the buffers are put back for gorgonia to update
	// from the same start.
	var buffers, updated []*tensor.Tensor
	for _, v := range m.Vars() {
		if v.Buffer {
			buffers = append(buffers, v.Value)
			updated = append(updated, v.Value.Clone())
		}
	}
	before := make([]*tensor.Tensor, len(buffers))
	for j, b := range buffers {
		before[j] = b.Clone()
	}
	y := m.Forward(x)
	seed := randTensor(r, y.Shape()...)
	seed.SetDType(dt)
	y.BackwardWith(seed)
	for j, b := range buffers {
		updated[j].CopyFrom(b)
		b.CopyFrom(before[j])
	}

	g := G.NewGraph()
	bld := NewBuilder(g, dt, training)
	xn := input(g, "x", x)
	out, err := bld.Forward(xn, "rclb", m)
	if err != nil {
		t.Fatal(err)
	}
	loss := must(G.Sum(must(G.HadamardProd(out, G.NewConstant(ToDense(seed))))))
	params := bld.Params()
	wrt := G.Nodes{xn}
	for _, p := range params {
		wrt = append(wrt, p.Node)
	}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	got, gotGrads := read(out), make([]*G.Value, len(grads))
	for j, gr := range grads {
		gotGrads[j] = read(gr)
	}
	run(t, g)

	expectClose(t, "output", *got, y, 0, tol)
	expectClose(t, "input gradient", *gotGrads[0], x.Grad, 0, tol)
	// A parameter's gradient is a sum of terms on the scale of the input's.
	gradScale := maxAbs(x.Grad)
	for j, p := range params {
		if p.Src.Grad == nil {
			t.Errorf("%s: srmlab has no gradient", p.Name)
			continue
		}
		expectClose(t, p.Name+" gradient", *gotGrads[j+1], p.Src.Grad, gradScale, tol)
	}
	// Every parameter of m, under its state_dict name, and nothing else.
	var want []string
	for _, v := range nn.Prefixed("rclb", m.Vars()) {
		if !v.Buffer {
			want = append(want, v.Name)
		}
	}
	if len(params) != len(want) {
		t.Errorf("%d parameters, want %v", len(params), want)
	}
	for j := range min(len(params), len(want)) {
		if params[j].Name != want[j] || params[j].Node.Name() != want[j] {
			t.Errorf("parameter %d is %s, want %s", j, params[j].Name, want[j])
		}
	}
	for j, b := range buffers {
		if d := maxRelDiff(b, updated[j], 0); d > tol {
			t.Errorf("buffer %d after one run: %v, srmlab has %v", j, b.Float64s(), updated[j].Float64s())
		}
	}
}

// TestRecalibratorFromSpec builds a module from a Spec straight into a
// graph: the srmlab module it returns is what the graph computes, and
// its parameters are the graph's learnables.
func TestRecalibratorFromSpec(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	x := randTensor(r, 2, 4, 3, 3)
	g := G.NewGraph()
	b := NewBuilder(g, tensor.Float64, false)
	s, err := srm.ParseSpec("ge+:r2")
	if err != nil {
		t.Fatal(err)
	}
	m, out, err := b.Recalibrator(input(g, "x", x), "layer1.0.rclb", s, r)
	if err != nil {
		t.Fatal(err)
	}
	got := read(out)
	if ps := b.Params(); len(ps) != len(nn.Params(m)) || ps[0].Name != "layer1.0.rclb.conv.0.weight" || ps[0].Src != m.(*srm.GE).Conv.Weight {
		t.Errorf("parameters %v", ps)
	}
	run(t, g)
	m.SetTraining(false)
	expectClose(t, "output", *got, m.Forward(x), 0, 1e-8)
}

// TestBuildErrors checks that what gorgonia cannot express, or srmlab
// would refuse, is an error naming the module, not a panic.
func TestBuildErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	mustModule := func(s string, c, size int) nn.Module {
		m, err := srm.NewRecalibrator(s, c, size, r)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, c := range []struct {
		name  string
		m     nn.Module
		shape []int
		want  string
	}{
		{"unbiased std of 1x1", mustModule("srm", 4, 0), []int{2, 4, 1, 1}, "at least 2 pixels"},
		{"global GE of another size", mustModule("ge", 4, 5), []int{2, 4, 6, 6}, "built for 5x5"},
		{"extent past the map", mustModule("ge-:e4", 4, 0), []int{2, 4, 3, 3}, "exceeds"},
		{"grouped convolution", nn.NewConv2d(r, 4, 4, 3, 1, 1, 2, false), []int{2, 4, 5, 5}, "no grouped convolution"},
		{"BN of one value per channel", nn.NewBatchNorm2d(4), []int{1, 4, 1, 1}, "more than one value"},
		{"unknown module", nn.NewMaxPool2d(2, 2, 0), []int{2, 4, 4, 4}, "no gorgonia form"},
		{"overlapping average pooling", nn.NewAvgPool2d(3, 2, 1), []int{2, 4, 4, 4}, "stride equal to the kernel"},
	} {
		g := G.NewGraph()
		x := G.NewTensor(g, G.Float64, 4, G.WithShape(c.shape...), G.WithName("x"))
		_, err := NewBuilder(g, tensor.Float64, true).Forward(x, "m", c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
	g := G.NewGraph()
	x := G.NewTensor(g, G.Float32, 4, G.WithShape(2, 4, 3, 3), G.WithName("x"))
	if _, err := NewBuilder(g, tensor.Float64, true).Forward(x, "m", mustModule("se", 4, 0)); err == nil {
		t.Error("float32 input to a float64 builder: no error")
	}
	b := NewBuilder(g, tensor.Float32, true)
	if _, err := b.Forward(x, "", nn.NewLinear(r, 3, 3, true)); err == nil {
		t.Error("4-D input to a linear layer: no error")
	}
	if _, err := b.Forward(x, "", nn.NewBatchNorm2d(4)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Forward(x, "", nn.NewBatchNorm2d(4)); err == nil || !strings.Contains(err.Error(), "distinct prefixes") {
		t.Errorf("two modules under one prefix: error %v", err)
	}
}
