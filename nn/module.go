package nn

import (
	"fmt"
	"strconv"

	"github.com/srmlab/srmlab/tensor"
)

// Var is one named tensor of a module's state, as in a PyTorch state_dict.
type Var struct {
	Name  string // dotted key relative to the module, e.g. "bn1.running_mean"
	Value *tensor.Tensor
	// Buffer marks state that is not trained (BatchNorm running statistics).
	Buffer bool
	// NoDecay marks parameters excluded from weight decay (SRM's cfc and its
	// BatchNorm, following the official code).
	NoDecay bool
	// Host keeps the value in host memory when the module moves to a
	// device: a counter the host updates every step (BatchNorm's
	// num_batches_tracked), which on a GPU would cost a round trip each time.
	Host bool
}

// Module is a layer or a network of layers.
type Module interface {
	// Forward computes the module's output; it panics with a
	// *tensor.ShapeError on misuse.
	Forward(x *tensor.Tensor) *tensor.Tensor
	// Vars lists every parameter and buffer in state_dict order.
	Vars() []Var
	// SetTraining switches between training (batch statistics) and
	// evaluation (running statistics) behaviour, recursively.
	SetTraining(on bool)
}

// Prefixed returns vars with "prefix." put before each name.
func Prefixed(prefix string, vars []Var) []Var {
	out := make([]Var, len(vars))
	for i, v := range vars {
		v.Name = prefix + "." + v.Name
		out[i] = v
	}
	return out
}

// Params returns the trainable tensors of m.
func Params(m Module) []*tensor.Tensor {
	var ps []*tensor.Tensor
	for _, v := range m.Vars() {
		if !v.Buffer {
			ps = append(ps, v.Value)
		}
	}
	return ps
}

// CountParams returns the number of trainable scalars of m.
func CountParams(m Module) int {
	n := 0
	for _, p := range Params(m) {
		n += p.Len()
	}
	return n
}

// Cast converts every parameter and buffer of m to dt in place.
func Cast(m Module, dt tensor.DType) {
	for _, v := range m.Vars() {
		v.Value.SetDType(dt)
	}
}

// To moves every parameter and buffer of m to dev (the host when dev is
// nil) in place, except those marked Host; layers keep their tensors, so
// optimisers built before the move still hold the right ones.
func To(m Module, dev tensor.Device) error {
	for _, v := range m.Vars() {
		if v.Host {
			continue
		}
		if err := v.Value.MoveTo(dev); err != nil {
			return fmt.Errorf("nn: moving %s: %w", v.Name, err)
		}
	}
	return nil
}

// ZeroGrad drops the accumulated gradients of m's parameters.
func ZeroGrad(m Module) {
	for _, p := range Params(m) {
		p.ZeroGrad()
	}
}

// Sequential applies its layers in order; in state_dict names each layer is
// its index, as in torch.nn.Sequential.
type Sequential []Module

func (s Sequential) Forward(x *tensor.Tensor) *tensor.Tensor {
	for _, l := range s {
		x = l.Forward(x)
	}
	return x
}

func (s Sequential) Vars() []Var {
	var vs []Var
	for i, l := range s {
		vs = append(vs, Prefixed(strconv.Itoa(i), l.Vars())...)
	}
	return vs
}

func (s Sequential) SetTraining(on bool) {
	for _, l := range s {
		l.SetTraining(on)
	}
}
