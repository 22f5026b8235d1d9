package nn

import (
	"testing"

	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

func TestLayers(t *testing.T) {
	x := tensor.New(tensor.Float64, 2, 3, 6, 6)
	for i := range x.Len() {
		x.Set(i, float64(i%7)-3)
	}
	for _, c := range []struct {
		name string
		m    Module
		want *tensor.Tensor
	}{
		{"ReLU", ReLU{}, op.ReLU(x)},
		{"Sigmoid", Sigmoid{}, op.Sigmoid(x)},
		{"Identity", Identity{}, x},
		{"Flatten", Flatten{}, op.Flatten(x)},
		{"MaxPool2d", NewMaxPool2d(3, 2, 1), op.MaxPool2d(x, 3, 2, 1)},
		{"AvgPool2d", NewAvgPool2d(2, 2, 0), op.AvgPool2d(x, 2, 2, 0)},
		{"AdaptiveAvgPool2d", NewAdaptiveAvgPool2d(1, 1), op.GlobalAvgPool(x)},
	} {
		c.m.SetTraining(false)
		got := c.m.Forward(x)
		if !tensor.SameShape(got, c.want) {
			t.Errorf("%s: shape %v, want %v", c.name, got.Shape(), c.want.Shape())
			continue
		}
		for i := range got.Len() {
			if got.At(i) != c.want.At(i) {
				t.Errorf("%s: element %d is %v, want %v", c.name, i, got.At(i), c.want.At(i))
				break
			}
		}
		if len(c.m.Vars()) != 0 {
			t.Errorf("%s has vars %v", c.name, c.m.Vars())
		}
	}
}

func TestLayersInSequential(t *testing.T) {
	s := Sequential{NewBatchNorm2d(2), ReLU{}, NewAdaptiveAvgPool2d(1, 1), Flatten{}}
	vars := s.Vars()
	if len(vars) != 5 || vars[0].Name != "0.weight" || vars[4].Name != "0.num_batches_tracked" {
		t.Errorf("vars %v", vars)
	}
	x := tensor.New(tensor.Float32, 4, 2, 3, 3)
	x.Fill(1)
	if y := s.Forward(x); y.Dim(0) != 4 || y.Dim(1) != 2 || y.Rank() != 2 {
		t.Errorf("output shape %v, want (4, 2)", y.Shape())
	}
	s.SetTraining(false)
	if s[0].(*BatchNorm2d).Training {
		t.Error("SetTraining(false) did not reach the BatchNorm")
	}
}
