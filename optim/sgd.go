package optim

import (
	"fmt"

	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// Group is a PyTorch param_group: parameters that share a learning rate
// and a weight decay.
type Group struct {
	LR, WeightDecay float64
	Params          []nn.Var
}

// SGD is torch.optim.SGD with dampening 0: for each parameter p with
// gradient g,
//
//	d = g + weight_decay·p
//	buf = d on the first step, momentum·buf + d after
//	d = d + momentum·buf with Nesterov, buf without
//	p = p − lr·d
//
// Parameters without a gradient are skipped and their buffers kept, as in
// PyTorch after zero_grad(set_to_none=True).
type SGD struct {
	// Groups are in PyTorch's order; the learning rate of each may be
	// changed between steps.
	Groups []Group
	// Momentum and Nesterov apply to every group: PyTorch allows them per
	// group, but no recipe here varies them.
	Momentum float64
	Nesterov bool
	// bufs holds each parameter's momentum buffer by name, absent until
	// its first step as in PyTorch's optimizer state.
	bufs map[string]*tensor.Tensor
}

// NewSGD sets up SGD over the trainable vars in the official SRM code's two
// groups: the parameters that take weight decay, then those marked NoDecay,
// whose weight decay is 0. Buffers are left out. Invalid settings, which
// PyTorch rejects too, panic.
func NewSGD(vars []nn.Var, lr, momentum, weightDecay float64, nesterov bool) *SGD {
	if lr < 0 || momentum < 0 || weightDecay < 0 || (nesterov && momentum == 0) {
		panic(fmt.Sprintf("optim: SGD with lr %g, momentum %g, weight decay %g, nesterov %v", lr, momentum, weightDecay, nesterov))
	}
	decay, noDecay := Group{LR: lr, WeightDecay: weightDecay}, Group{LR: lr}
	for _, v := range vars {
		switch {
		case v.Buffer: // not trained
		case v.NoDecay:
			noDecay.Params = append(noDecay.Params, v)
		default:
			decay.Params = append(decay.Params, v)
		}
	}
	return &SGD{Groups: []Group{decay, noDecay}, Momentum: momentum, Nesterov: nesterov, bufs: map[string]*tensor.Tensor{}}
}

// SetLR sets every group's learning rate, the step a schedule takes.
func (s *SGD) SetLR(lr float64) {
	for i := range s.Groups {
		s.Groups[i].LR = lr
	}
}

// ZeroGrad drops every parameter's gradient, so that the next Backward
// starts afresh and parameters it does not reach are skipped by Step.
func (s *SGD) ZeroGrad() {
	for _, g := range s.Groups {
		for _, v := range g.Params {
			v.Value.ZeroGrad()
		}
	}
}

// Step updates every parameter that has a gradient.
func (s *SGD) Step() {
	for _, g := range s.Groups {
		for _, v := range g.Params {
			p := v.Value
			if p.Grad == nil {
				continue
			}
			buf, first := s.bufs[v.Name], false
			if s.Momentum != 0 && buf == nil {
				buf, first = tensor.ZerosLike(p), true
				s.bufs[v.Name] = buf
			}
			if buf != nil && buf.DType() != p.DType() {
				buf.SetDType(p.DType()) // the model was cast since
			}
			if buf != nil && buf.Device() != p.Device() {
				// moved since, or restored from a checkpoint on the host
				tensor.MustDevice("SGD", buf.MoveTo(p.Device()))
			}
			if d := op.DeviceOf("SGD", p, p.Grad, buf); d != nil {
				k := op.GPU{D: d, Op: "SGD"}
				k.Must(d.SGDStep(k.Buf(p), k.Buf(p.Grad), k.Buf(buf), p.Len(),
					float32(g.LR), float32(g.WeightDecay), float32(s.Momentum), s.Nesterov, first))
				continue
			}
			if p.DType() == tensor.Float64 {
				step[float64](p, buf, first, g.LR, g.WeightDecay, s.Momentum, s.Nesterov)
			} else {
				step[float32](p, buf, first, g.LR, g.WeightDecay, s.Momentum, s.Nesterov)
			}
		}
	}
}

// step updates one parameter in its own element type, as PyTorch does;
// buf is nil without momentum, and first marks a fresh buffer.
func step[T float32 | float64](p, buf *tensor.Tensor, first bool, lr, wd, momentum float64, nesterov bool) {
	ps, gs := p.Raw().([]T), p.Grad.Raw().([]T)
	var bs []T
	if buf != nil {
		bs = buf.Raw().([]T)
	}
	lrT, wdT, mT := T(lr), T(wd), T(momentum)
	parallel.For(len(ps), 8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d := gs[i]
			if wd != 0 {
				d += wdT * ps[i]
			}
			if bs != nil {
				if first {
					bs[i] = d
				} else {
					bs[i] = mT*bs[i] + d
				}
				if nesterov {
					d += mT * bs[i]
				} else {
					d = bs[i]
				}
			}
			ps[i] -= lrT * d
		}
	})
}

// param returns the trainable tensor called name, or nil.
func (s *SGD) param(name string) *tensor.Tensor {
	for _, g := range s.Groups {
		for _, v := range g.Params {
			if v.Name == name {
				return v.Value
			}
		}
	}
	return nil
}

// MomentumBuffer returns the momentum buffer of the parameter called name
// (shared, not copied) for a checkpoint to save, or nil before its first
// step or without momentum.
func (s *SGD) MomentumBuffer(name string) *tensor.Tensor { return s.bufs[name] }

// SetMomentumBuffer restores the momentum buffer of the parameter called
// name from a checkpoint, so that training resumes as if uninterrupted; buf
// is copied in the parameter's element type.
func (s *SGD) SetMomentumBuffer(name string, buf *tensor.Tensor) error {
	p := s.param(name)
	if p == nil {
		return fmt.Errorf("optim: no parameter %q", name)
	}
	if buf.Len() != p.Len() {
		return fmt.Errorf("optim: momentum buffer %v for parameter %q of shape %v", buf.Shape(), name, p.Shape())
	}
	s.bufs[name] = buf.As(p.DType()).View(p.Shape()...)
	return nil
}
