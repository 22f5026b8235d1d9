package ggraph

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	gt "gorgonia.org/tensor"

	"github.com/srmlab/srmlab/tensor"
)

// ToDense copies t into a new gorgonia *tensor.Dense of the same shape and
// element type. A 0-d srmlab tensor becomes a scalar-shaped Dense.
func ToDense(t *tensor.Tensor) *gt.Dense { return ToDenseAs(t, t.DType()) }

// ToDenseAs is ToDense converting the elements to dt, for loading float32
// checkpoints into a float64 graph and back. It reads tensors on a device
// through a host copy.
func ToDenseAs(t *tensor.Tensor, dt tensor.DType) *gt.Dense {
	var backing any
	if dt == tensor.Float64 {
		backing = t.Float64s()
	} else {
		backing = t.Float32s()
	}
	if t.Rank() == 0 {
		return gt.New(gt.FromScalar(firstOf(backing)))
	}
	return gt.New(gt.WithShape(t.Shape()...), gt.WithBacking(backing))
}

// firstOf is the one element of a scalar's backing slice.
func firstOf(backing any) any {
	if b, ok := backing.([]float64); ok {
		return b[0]
	}
	return backing.([]float32)[0]
}

// FromValue copies a gorgonia value, a float32 or float64 tensor (views
// included) or scalar, into a new srmlab tensor of the same element type.
func FromValue(v G.Value) (*tensor.Tensor, error) {
	switch s := v.(type) {
	case *G.F64:
		return tensor.Scalar(tensor.Float64, float64(*s)), nil
	case *G.F32:
		return tensor.Scalar(tensor.Float32, float64(*s)), nil
	case gt.Tensor:
		return fromTensor(s)
	case nil:
		return nil, fmt.Errorf("ggraph: no value (has the graph been run?)")
	}
	return nil, fmt.Errorf("ggraph: cannot convert a %T to an srmlab tensor", v)
}

func fromTensor(t gt.Tensor) (*tensor.Tensor, error) {
	data, err := rowMajor(t)
	if err != nil {
		return nil, err
	}
	shape := []int(t.Shape().Clone())
	if t.Shape().IsScalar() {
		shape = nil
	}
	if d, ok := data.([]float64); ok {
		return tensor.FromFloat64(d, shape...), nil
	}
	return tensor.FromFloat32(data.([]float32), shape...), nil
}

// rowMajor returns a copy of t's elements in row-major order, as a
// []float64 or []float32.
func rowMajor(t gt.Tensor) (any, error) {
	// A transposed or sliced view keeps its parent's layout; Materialize
	// gives the row-major copy.
	if vw, ok := t.(gt.View); ok && vw.IsMaterializable() {
		t = vw.Materialize()
	}
	n := t.Shape().TotalSize()
	switch d := t.Data().(type) {
	case []float64:
		return slices.Clone(d[:n]), nil
	case []float32:
		return slices.Clone(d[:n]), nil
	case float64:
		return []float64{d}, nil
	case float32:
		return []float32{d}, nil
	}
	return nil, fmt.Errorf("ggraph: cannot convert %v elements to an srmlab tensor (want float32 or float64)", t.Dtype())
}

// gorgoniaType is the gorgonia element type of an srmlab one.
func gorgoniaType(dt tensor.DType) gt.Dtype {
	if dt == tensor.Float64 {
		return gt.Float64
	}
	return gt.Float32
}
