package ggraph

import (
	"fmt"
	"strconv"

	G "gorgonia.org/gorgonia"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

// Builder adds srmlab modules to one gorgonia graph, in training or in
// evaluation form (a gorgonia graph is static, so the mode is fixed when
// the nodes are made). It remembers which srmlab tensor every node it made
// mirrors, so that values can travel both ways: Reload after loading a
// checkpoint into the srmlab modules, WriteBack before saving one.
type Builder struct {
	g        *G.ExprGraph
	dt       tensor.DType
	training bool
	mirrors  []mirror
	byTensor map[*tensor.Tensor]*G.Node
}

// mirror is a node made from an srmlab tensor: a learnable parameter, or in
// evaluation a BatchNorm's running statistic.
type mirror struct {
	Param
	learnable bool
}

// Param is a learnable node and the srmlab tensor it started from.
type Param struct {
	// Name is the state_dict key, prefix and all ("rclb.bn.weight"); it
	// is also the node's name.
	Name string
	Node *G.Node
	Src  *tensor.Tensor
}

// NewBuilder returns a Builder adding float32 or float64 nodes (dt) to g;
// training selects batch statistics in BatchNorms, whose running statistics
// then follow every run of the graph (see Builder.Forward).
func NewBuilder(g *G.ExprGraph, dt tensor.DType, training bool) *Builder {
	return &Builder{g: g, dt: dt, training: training, byTensor: map[*tensor.Tensor]*G.Node{}}
}

// Forward adds m applied to x to the graph and returns the output node. m
// is an srmlab module: *srm.SRM, *srm.SE, *srm.GE (the modules
// srm.NewRecalibrator builds), or a layer they and ResNets are made of:
// *nn.Conv2d (ungrouped, or depthwise with non-overlapping windows),
// *nn.Linear, *nn.BatchNorm2d, *nn.AvgPool2d and *nn.AdaptiveAvgPool2d
// (non-overlapping windows), nn.ReLU, nn.Sigmoid, nn.Identity, nn.Flatten
// and nn.Sequential of these. prefix names its parameters as its
// state_dict keys would be under that prefix ("layer1.0.rclb" gives
// "layer1.0.rclb.cfc"); distinct modules need distinct prefixes, since
// gorgonia merges input nodes of equal name and shape.
//
// Learnable nodes start from m's current values, converted to the
// Builder's type; a tensor used twice gets one node. In training, each run
// of the graph updates the srmlab BatchNorms' running statistics and batch
// counters in place, as their own Forward would, by a node on no path to
// the output: compile the whole graph (G.NewTapeMachine(g) does) so that it
// runs.
func (b *Builder) Forward(x *G.Node, prefix string, m nn.Module) (out *G.Node, err error) {
	defer catch(&err)
	if x.Dtype() != gorgoniaType(b.dt) {
		fail("input %s is %v, the builder makes %v nodes", x.Name(), x.Dtype(), b.dt)
	}
	return b.forward(x, prefix, m), nil
}

func (b *Builder) forward(x *G.Node, name string, m nn.Module) *G.Node {
	switch m := m.(type) {
	case *srm.SRM:
		return b.srm(x, name, m)
	case *srm.SE:
		return b.se(x, name, m)
	case *srm.GE:
		return b.ge(x, name, m)
	case *nn.Conv2d:
		return b.conv(x, name, m)
	case *nn.Linear:
		return b.linear(x, name, m)
	case *nn.BatchNorm2d:
		return b.batchNorm(x, name, m)
	case nn.Sequential:
		for i, l := range m {
			x = b.forward(x, join(name, strconv.Itoa(i)), l)
		}
		return x
	case nn.ReLU:
		return must(G.Rectify(x))
	case nn.Sigmoid:
		return must(G.Sigmoid(x))
	case nn.Identity:
		return x
	case nn.Flatten:
		s := x.Shape()
		return reshape(x, s[0], s.TotalSize()/s[0])
	case *nn.AvgPool2d:
		if m.Pad != 0 || m.Stride != m.Kernel {
			fail("%s: only average pooling with stride equal to the kernel and no padding can be built (got kernel %d, stride %d, pad %d)", name, m.Kernel, m.Stride, m.Pad)
		}
		return windowMean(x, m.Kernel, m.Kernel, name)
	case *nn.AdaptiveAvgPool2d:
		// Adaptive pooling to a size that divides the map is plain
		// pooling with fixed windows.
		_, _, h, w := dims4(x, name)
		if h%m.OutH != 0 || w%m.OutW != 0 {
			fail("%s: adaptive pooling of %dx%d to %dx%d, which does not divide it, has no gorgonia form here", name, h, w, m.OutH, m.OutW)
		}
		return windowMean(x, h/m.OutH, w/m.OutW, name)
	}
	fail("%s: no gorgonia form for %T", name, m)
	return nil
}

// join is a state_dict key below prefix.
func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// param returns the learnable node of t, making it on first use.
func (b *Builder) param(name string, t *tensor.Tensor) *G.Node {
	return b.mirror(name, t, true)
}

// mirror returns the node that holds t's value in the Builder's type.
func (b *Builder) mirror(name string, t *tensor.Tensor, learnable bool) *G.Node {
	if n, ok := b.byTensor[t]; ok {
		return n
	}
	for _, m := range b.mirrors {
		if m.Name == name {
			fail("two tensors named %q: give the modules distinct prefixes", name)
		}
	}
	v := ToDenseAs(t, b.dt)
	n := G.NewTensor(b.g, gorgoniaType(b.dt), t.Rank(), G.WithShape(t.Shape()...), G.WithValue(v), G.WithName(name))
	b.byTensor[t] = n
	b.mirrors = append(b.mirrors, mirror{Param{name, n, t}, learnable})
	return n
}

// Params lists the learnable nodes in the order they were made.
func (b *Builder) Params() []Param {
	var ps []Param
	for _, m := range b.mirrors {
		if m.learnable {
			ps = append(ps, m.Param)
		}
	}
	return ps
}

// Learnables is the nodes of Params, for G.Grad and a gorgonia solver.
func (b *Builder) Learnables() G.Nodes {
	var ns G.Nodes
	for _, p := range b.Params() {
		ns = append(ns, p.Node)
	}
	return ns
}

// WriteBack copies every learnable node's value into the srmlab tensor it
// came from, converting the type, so that weights.Save writes what the
// gorgonia solver trained. (Running statistics need no copy: training
// graphs update the srmlab tensors themselves.)
func (b *Builder) WriteBack() error {
	for _, p := range b.Params() {
		t, err := FromValue(p.Node.Value())
		if err != nil {
			return fmt.Errorf("ggraph: %s: %w", p.Name, err)
		}
		p.Src.CopyFrom(t)
	}
	return nil
}

// Reload copies the srmlab tensors back into the nodes made from them, in
// place, for weights loaded into the srmlab modules after the graph was
// built; a machine already made from the graph sees the new values.
func (b *Builder) Reload() error {
	for _, m := range b.mirrors {
		src := ToDenseAs(m.Src, b.dt)
		dst, ok := m.Node.Value().(interface{ Data() any })
		if !ok || !m.Node.Shape().Eq(src.Shape()) {
			return fmt.Errorf("ggraph: %s: node value %v no longer holds a %v tensor", m.Name, m.Node.Value(), src.Shape())
		}
		switch d := dst.Data().(type) {
		case []float64:
			copy(d, src.Data().([]float64))
		case []float32:
			copy(d, src.Data().([]float32))
		}
	}
	return nil
}

// buildError carries an error out of the graph-building helpers, which
// would otherwise check one after every node; exported methods recover it.
type buildError struct{ err error }

func must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(buildError{fmt.Errorf("ggraph: %w", err)})
	}
	return n
}

func fail(format string, args ...any) {
	panic(buildError{fmt.Errorf("ggraph: "+format, args...)})
}

// catch turns a buildError panic into *err, leaving other panics alone.
func catch(err *error) {
	if r := recover(); r != nil {
		be, ok := r.(buildError)
		if !ok {
			panic(r)
		}
		*err = be.err
	}
}
