package ggraph

import (
	"fmt"
	"hash"
	"hash/fnv"
	"slices"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	gt "gorgonia.org/tensor"
)

// reshape is x with a new shape, as a copy. gorgonia's Reshape returns a
// value sharing x's memory, which its TapeMachine does not know: once the
// reshaped node's last reader is an in-place operation (Sub, HadamardProd,
// Sigmoid... overwrite their first operand when it is dead), that
// operation overwrites x too, though x may still be read. SRM's std pooling
// over an (N, C, H·W) view of the input then corrupted the input before
// the gating multiply read it.
func reshape(x *G.Node, shape ...int) *G.Node {
	// Not Shape.Eq, which takes (6) and (1, 6) for equal.
	if slices.Equal(x.Shape(), shape) {
		return x
	}
	if x.Shape().TotalSize() != gt.Shape(shape).TotalSize() {
		fail("cannot reshape %v to %v", x.Shape(), shape)
	}
	return must(G.ApplyOp(&reshapeCopy{from: x.Shape().Clone(), to: gt.Shape(shape).Clone()}, x))
}

// reshapeCopy is the operation of reshape.
type reshapeCopy struct{ from, to gt.Shape }

func (op *reshapeCopy) Do(vs ...G.Value) (G.Value, error) {
	t, ok := vs[0].(gt.Tensor)
	if !ok {
		return nil, fmt.Errorf("ggraph: reshaping a %T", vs[0])
	}
	data, err := rowMajor(t)
	if err != nil {
		return nil, err
	}
	return gt.New(gt.WithShape(op.to...), gt.WithBacking(data)), nil
}

func (op *reshapeCopy) DiffWRT(int) []bool { return []bool{true} }

func (op *reshapeCopy) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{reshape(grad, op.from...)}, nil
}

func (op *reshapeCopy) Arity() int { return 1 }

func (op *reshapeCopy) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: op.from.Dims(), Of: a}, G.TensorType{Dims: op.to.Dims(), Of: a})
}

func (op *reshapeCopy) InferShape(...G.DimSizer) (gt.Shape, error) { return op.to.Clone(), nil }
func (op *reshapeCopy) ReturnsPtr() bool                           { return false }
func (op *reshapeCopy) CallsExtern() bool                          { return false }
func (op *reshapeCopy) OverwritesInput() int                       { return -1 }
func (op *reshapeCopy) String() string                             { return fmt.Sprintf("ReshapeCopy%v", op.to) }
func (op *reshapeCopy) WriteHash(h hash.Hash)                      { fmt.Fprintf(h, "ReshapeCopy %v %v", op.from, op.to) }

func (op *reshapeCopy) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
