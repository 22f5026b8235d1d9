package ggraph

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/tensor"
)

// randTensor is a float64 tensor of normal values.
func randTensor(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float64, shape...)
	t.FillNormal(r, 0, 1)
	return t
}

// randSource is a fixed random source for tests that need one stream.
func randSource() *rand.Rand { return rand.New(rand.NewPCG(17, 19)) }

// input is a gorgonia input node holding a copy of t.
func input(g *G.ExprGraph, name string, t *tensor.Tensor) *G.Node {
	return G.NewTensor(g, gorgoniaType(t.DType()), t.Rank(), G.WithShape(t.Shape()...), G.WithValue(ToDense(t)), G.WithName(name))
}

// randomise gives every parameter and buffer of m random values (the
// official initialisation leaves SRM's cfc at zero and BatchNorms at the
// identity, which would hide mistakes), positive where a variance.
func randomise(r *rand.Rand, m nn.Module) {
	for _, v := range m.Vars() {
		switch {
		case strings.HasSuffix(v.Name, "num_batches_tracked"):
			v.Value.Fill(3)
		case strings.HasSuffix(v.Name, "running_var"):
			v.Value.FillUniform(r, 0.5, 2)
		default:
			v.Value.FillNormal(r, 0, 0.7)
		}
	}
}

// maxRelDiff is max|got−want| over max(max|want|, floor): the error
// relative to the tensor's scale, so that elements near zero (gradients
// that nearly cancel) are held to the same absolute standard as the large
// ones. The floor stands in for tensors that are zero but for rounding:
// the gradient of a bias just before a training-mode BatchNorm is one.
func maxRelDiff(got, want *tensor.Tensor, floor float64) float64 {
	diff := 0.0
	g, w := got.Float64s(), want.Float64s()
	for i := range w {
		diff = max(diff, math.Abs(g[i]-w[i]))
	}
	if math.IsNaN(diff) {
		return math.Inf(1)
	}
	return diff / max(maxAbs(want), floor, 1e-300)
}

// expectClose fails t unless the gorgonia value v has want's shape and is
// within tol of it (maxRelDiff with the given floor).
func expectClose(t *testing.T, what string, v G.Value, want *tensor.Tensor, floor, tol float64) {
	t.Helper()
	got, err := FromValue(v)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if !tensor.SameShape(got, want) {
		t.Errorf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
		return
	}
	if d := maxRelDiff(got, want, floor); d > tol {
		t.Errorf("%s: relative difference %.3g > %g", what, d, tol)
	}
}

// read is where the value n takes in a run will be: a node's own Value
// can be overwritten later in the run, as the TapeMachine reuses memory.
func read(n *G.Node) *G.Value {
	v := new(G.Value)
	G.Read(n, v)
	return v
}

// run compiles the whole of g into a TapeMachine and runs it once.
func run(t *testing.T, g *G.ExprGraph) {
	t.Helper()
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
}

// maxAbs is the largest magnitude in t.
func maxAbs(t *tensor.Tensor) float64 {
	m := 0.0
	for _, v := range t.Float64s() {
		m = max(m, math.Abs(v))
	}
	return m
}
