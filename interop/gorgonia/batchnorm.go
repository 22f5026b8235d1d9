package ggraph

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	gt "gorgonia.org/tensor"

	"github.com/srmlab/srmlab/nn"
)

// batchNorm is nn.BatchNorm2d on (N, C, H, W) or (N, C), made of
// element-wise operations and last-axis means rather than gorgonia's
// BatchNorm, whose SetTraining(true) zeroes the running statistics and
// whose missing scale or bias becomes a full-shape random tensor.
func (b *Builder) batchNorm(x *G.Node, name string, bn *nn.BatchNorm2d) *G.Node {
	s := x.Shape()
	if (len(s) != 2 && len(s) != 4) || s[1] != bn.Weight.Len() {
		fail("%s: input %v for a BatchNorm of %d channels", name, s, bn.Weight.Len())
	}
	n, plane := s[0], s.TotalSize()/(s[0]*s[1])
	// perChannel spreads a (C) vector over x's shape.
	perChannel := func(v *G.Node) *G.Node { return b.tile(v, n, plane, s...) }
	gamma := b.param(join(name, "weight"), bn.Weight)
	beta := b.param(join(name, "bias"), bn.Bias)
	// The deviations are taken as mean − x, not x − mean: in-place
	// operations overwrite their first operand, and x, the caller's node,
	// may share memory with another (see reshape).
	var mean, variance, dev *G.Node
	if b.training {
		count := n * plane
		if count < 2 {
			fail("%s: training needs more than one value per channel, input %v", name, s)
		}
		mean = channelMean(x, name)
		dev = must(G.Sub(perChannel(mean), x))
		variance = channelMean(must(G.Square(dev)), name)
		must(G.ApplyOp(&runningStats{bn: bn, count: count}, mean, variance))
	} else {
		mean = b.mirror(join(name, "running_mean"), bn.RunningMean, false)
		variance = b.mirror(join(name, "running_var"), bn.RunningVar, false)
		dev = must(G.Sub(perChannel(mean), x))
	}
	// Not InverseSqrt, whose gradient divides by 2y³ where it should
	// multiply by y³/2.
	istd := must(G.Inverse(must(G.Sqrt(must(G.Add(variance, b.scalar(bn.Eps)))))))
	scale := must(G.HadamardProd(gamma, istd))
	// (x − mean)·scale + beta
	return must(G.Sub(perChannel(beta), must(G.HadamardProd(dev, perChannel(scale)))))
}

// channelMean is the mean of x, (N, C, H, W) or (N, C), over all axes but
// the channels: over each plane (the last axis of an (N, C, H·W) view),
// then over the batch. The planes are equal in size, so the mean of means
// is the mean.
func channelMean(x *G.Node, name string) *G.Node {
	if x.Dims() == 4 {
		x = meanLast(planes(x, name))
	}
	return must(G.Mean(x, 0))
}

// runningStats is a node of (mean, biased variance) of a training-mode
// batch norm that, each time the machine runs it, folds them into the
// srmlab BatchNorm2d's running statistics exactly as its own Forward does:
// momentum-weighted, the variance made unbiased, the batch counter bumped.
// gorgonia offers no side-effect node besides Read, which only copies a
// value out.
type runningStats struct {
	bn    *nn.BatchNorm2d
	count int // values per channel in a batch
}

func (op *runningStats) Do(vs ...G.Value) (G.Value, error) {
	mean, err := floats(vs[0])
	if err != nil {
		return nil, err
	}
	variance, err := floats(vs[1])
	if err != nil {
		return nil, err
	}
	bn := op.bn
	m := bn.Momentum
	unbias := float64(op.count) / float64(op.count-1)
	for c := range mean {
		bn.RunningMean.Set(c, (1-m)*bn.RunningMean.At(c)+m*mean[c])
		bn.RunningVar.Set(c, (1-m)*bn.RunningVar.At(c)+m*variance[c]*unbias)
	}
	bn.CountBatch()
	return G.CloneValue(vs[0])
}

// floats reads a float32 or float64 vector value.
func floats(v G.Value) ([]float64, error) {
	t, err := FromValue(v)
	if err != nil {
		return nil, err
	}
	return t.Float64s(), nil
}

func (op *runningStats) Arity() int { return 2 }

func (op *runningStats) Type() hm.Type {
	t := G.TensorType{Dims: 1, Of: hm.TypeVariable('a')}
	return hm.NewFnType(t, t, t)
}

func (op *runningStats) InferShape(ds ...G.DimSizer) (gt.Shape, error) {
	s, ok := ds[0].(gt.Shape)
	if !ok {
		return nil, fmt.Errorf("ggraph: running statistics of a %T", ds[0])
	}
	return s.Clone(), nil
}

func (op *runningStats) ReturnsPtr() bool      { return false }
func (op *runningStats) CallsExtern() bool     { return false }
func (op *runningStats) OverwritesInput() int  { return -1 }
func (op *runningStats) String() string        { return "runningStats" }
func (op *runningStats) WriteHash(h hash.Hash) { fmt.Fprintf(h, "runningStats %p", op.bn) }

func (op *runningStats) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
