package ggraph

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	gt "gorgonia.org/tensor"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
	"github.com/srmlab/srmlab/weights"
)

func TestTensorRoundTrip(t *testing.T) {
	r := randSource()
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
		for _, shape := range [][]int{{2, 3, 4}, {5}, {}} {
			src := randTensor(r, shape...)
			src.SetDType(dt)
			d := ToDense(src)
			if d.Dtype() != gorgoniaType(dt) || (len(shape) > 0 && !d.Shape().Eq(gt.Shape(shape))) {
				t.Errorf("%v %v: Dense %v %v", dt, shape, d.Dtype(), d.Shape())
			}
			back, err := FromValue(d)
			if err != nil {
				t.Fatal(err)
			}
			if back.DType() != dt || !tensor.SameShape(back, src) || maxRelDiff(back, src, 0) != 0 {
				t.Errorf("%v %v: round trip gave %v", dt, shape, back)
			}
		}
	}
	// Converting between types, and reading a transposed view.
	src := tensor.FromFloat64([]float64{1, 2, 3, 4, 5, 6}, 2, 3)
	d := ToDenseAs(src, tensor.Float32)
	if _, ok := d.Data().([]float32); !ok {
		t.Fatalf("ToDenseAs float32 holds %T", d.Data())
	}
	if err := d.T(); err != nil {
		t.Fatal(err)
	}
	back, err := FromValue(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{1, 4, 2, 5, 3, 6}; back.Rank() != 2 || back.Dim(0) != 3 || !slices.Equal(back.Float64s(), want) {
		t.Errorf("transposed view read as %v %v, want (3, 2) %v", back.Shape(), back.Float64s(), want)
	}
	for _, v := range []G.Value{G.NewF64(2.5), G.NewF32(2.5)} {
		if s, err := FromValue(v); err != nil || s.Rank() != 0 || s.Item() != 2.5 {
			t.Errorf("scalar %v: %v, %v", v, s, err)
		}
	}
	if _, err := FromValue(gt.New(gt.WithShape(2), gt.WithBacking([]int{1, 2}))); err == nil {
		t.Error("int tensor: no error")
	}
	if _, err := FromValue(nil); err == nil {
		t.Error("nil value: no error")
	}
}

// TestCheckpointRoundTrip carries an srmlab checkpoint into a gorgonia
// graph and a changed one back: weights.Load into a module, Forward, a
// change to the node values, WriteBack, weights.Save, weights.Load into a
// fresh module.
func TestCheckpointRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	build := func() srm.Recalibrator {
		m, err := srm.NewRecalibrator("srm:mlp:r2", 8, 0, r)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	dir := t.TempDir()
	orig := build()
	randomise(r, orig)
	if err := weights.Save(orig, filepath.Join(dir, "a.safetensors"), nil); err != nil {
		t.Fatal(err)
	}
	loaded := build()
	if err := weights.Load(loaded, filepath.Join(dir, "a.safetensors")); err != nil {
		t.Fatal(err)
	}

	g := G.NewGraph()
	b := NewBuilder(g, tensor.Float64, false)
	x := G.NewTensor(g, G.Float64, 4, G.WithShape(2, 8, 3, 3), G.WithName("x"))
	if _, err := b.Forward(x, "layer1.0.rclb", loaded); err != nil {
		t.Fatal(err)
	}
	params := b.Params()
	want := nn.Params(orig)
	if len(params) != len(want) {
		t.Fatalf("%d learnables for %d parameters", len(params), len(want))
	}
	for i, p := range params {
		if got, _ := FromValue(p.Node.Value()); maxRelDiff(got, want[i], 0) != 0 {
			t.Errorf("%s: node holds %v, checkpoint %v", p.Name, got.Float64s(), want[i].Float64s())
		}
		// What a solver step would do: change the node's value in place.
		for j, v := range p.Node.Value().Data().([]float64) {
			p.Node.Value().Data().([]float64)[j] = v + 1
		}
	}
	if err := b.WriteBack(); err != nil {
		t.Fatal(err)
	}
	if err := weights.Save(loaded, filepath.Join(dir, "b.safetensors"), nil); err != nil {
		t.Fatal(err)
	}
	again := build()
	if err := weights.Load(again, filepath.Join(dir, "b.safetensors")); err != nil {
		t.Fatal(err)
	}
	for i, p := range nn.Params(again) {
		for j := range p.Len() {
			// float32 in the module, so the +1 is exact only to float32.
			if d := p.At(j) - (want[i].At(j) + 1); d > 1e-6 || d < -1e-6 {
				t.Fatalf("%s[%d]: %v after the round trip, want %v", params[i].Name, j, p.At(j), want[i].At(j)+1)
			}
		}
	}

	// Reload: new values in the srmlab module reach the nodes, running
	// statistics included.
	bn := loaded.(*srm.SRM).BN
	bn.RunningVar.Fill(7)
	bn.Weight.Fill(3)
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"layer1.0.rclb.bn.running_var", "layer1.0.rclb.bn.weight"} {
		node := g.ByName(n)
		if len(node) != 1 {
			t.Fatalf("%d nodes named %s", len(node), n)
		}
		if v := node[0].Value().Data().([]float64)[0]; v != 7 && v != 3 {
			t.Errorf("%s after Reload: %v", n, v)
		}
	}
}
