package srm

import (
	"errors"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// The device paths of srm's own operations, beside their host code's
// checks: style pooling, CFC, the option-A shortcut, and the official SRM
// as package cuda's fused kernels, alone or with its block's last
// BatchNorm, shortcut and ReLU (the block tail).

func stylePoolDevice(d *cuda.Device, x *tensor.Tensor, p Pooling, biased bool) *tensor.Tensor {
	g := op.GPU{D: d, Op: "StylePool"}
	n, c, hw := x.Dim(0), x.Dim(1), x.Dim(2)*x.Dim(3)
	avg, std, mx := p&PoolAvg != 0, p&PoolStd != 0, p&PoolMax != 0
	return g.Map(x, []int{n, c, p.Len()},
		func(t *cuda.Buffer) error { return d.StylePool(g.Buf(x), t, n*c, hw, avg, std, mx, biased) },
		func(_, dt, dx *cuda.Buffer, acc bool) error {
			return d.StylePoolBackward(g.Buf(x), dt, dx, n*c, hw, avg, std, mx, biased, acc)
		})
}

func cfcDevice(d *cuda.Device, t, w, b *tensor.Tensor, n, c, k int) *tensor.Tensor {
	g := op.GPU{D: d, Op: "CFC"}
	z := g.Empty(n, c, 1, 1)
	g.Must(d.CFC(g.Buf(t), g.Buf(w), g.Buf(b), g.Buf(z), n, c, k))
	tensor.Record(z, func(grad *tensor.Tensor) {
		var dt, dw, db *cuda.Buffer
		var accT, accP bool
		if t.NeedsGrad() {
			dt, accT = g.Grad(t)
		}
		switch {
		case b != nil && (w.NeedsGrad() || b.NeedsGrad()):
			var dp []*cuda.Buffer
			dp, accP = g.Grads(w, b)
			dw, db = dp[0], dp[1]
		case w.NeedsGrad():
			dw, accP = g.Grad(w)
		}
		g.Must(d.CFCBackward(g.Buf(t), g.Buf(w), g.Buf(grad), dt, dw, db, n, c, k, accT, accP))
	}, t, w, b)
	return z
}

func subsamplePadDevice(d *cuda.Device, x *tensor.Tensor, stride, cout int) *tensor.Tensor {
	g := op.GPU{D: d, Op: "shortcut A"}
	n, cin, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	return g.Map(x, []int{n, cout, (h-1)/stride + 1, (w-1)/stride + 1},
		func(y *cuda.Buffer) error { return d.SubsamplePad(g.Buf(x), y, n, cin, h, w, stride, cout) },
		func(_, dy, dx *cuda.Buffer, acc bool) error {
			return d.SubsamplePadBackward(dy, dx, n, cin, h, w, stride, cout, acc)
		})
}

// fused reports whether m is the official SRM (mean and unbiased std, CFC,
// BatchNorm), the form package cuda's fused kernels compute.
func (m *SRM) fused() bool {
	return m.MLP == nil && m.Pooling == PoolAvg|PoolStd && !m.Biased
}

// forwardFused runs the official SRM as cuda's fused kernels: in training
// three passes (statistics, per-channel gates, scaling) and a three-pass
// backward; in evaluation one read and one write of x (and the gates, for
// Gates).
func (m *SRM) forwardFused(d *cuda.Device, x *tensor.Tensor) *tensor.Tensor {
	g := op.GPU{D: d, Op: "SRM"}
	bn := m.BN
	s := cuda.Shape{N: x.Dim(0), C: x.Dim(1), H: x.Dim(2), W: x.Dim(3)}
	layer, err := d.SRMWith(s.C, g.Buf(m.CFC), g.Buf(bn.Weight), g.Buf(bn.Bias), g.Buf(bn.RunningMean), g.Buf(bn.RunningVar),
		float32(bn.Eps), float32(bn.Momentum))
	g.Must(err)
	out := g.Empty(x.Shape()...)
	if !bn.Training {
		gates := g.Empty(s.N, s.C, 1, 1)
		plan, err := layer.ForwardEval(g.Buf(x), g.Buf(out), g.Buf(gates), s)
		g.Must(err)
		g.Must(d.Run(plan))
		m.last = gates
		tensor.Record(out, func(*tensor.Tensor) {
			g.Must(errEvalGrad)
		}, x, m.CFC, bn.Weight, bn.Bias)
		return out
	}
	ws, err := layer.NewCollectedWorkspace(s)
	g.Must(err)
	plan, err := layer.ForwardTrain(g.Buf(x), g.Buf(out), ws)
	g.Must(err)
	g.Must(d.Run(plan))
	bn.CountBatch()
	m.last = tensor.FromStorage(ws.Gates(), s.N, s.C, 1, 1)
	tensor.Record(out, func(grad *tensor.Tensor) {
		// The kernels overwrite their outputs: a first gradient is written
		// in place, an existing one gets scratch added to it afterwards.
		ts := []*tensor.Tensor{x, m.CFC, bn.Weight, bn.Bias}
		dst, add := make([]*cuda.Buffer, len(ts)), make([]bool, len(ts))
		for i, t := range ts {
			acc := false
			if t.NeedsGrad() {
				dst[i], acc = g.Grad(t)
			}
			if !t.NeedsGrad() || acc {
				dst[i], add[i] = g.Buf(g.Empty(t.Shape()...)), acc
			}
		}
		plan, err := layer.Backward(g.Buf(x), g.Buf(grad), dst[0], ws, &cuda.SRMGrads{CFC: dst[1], Gamma: dst[2], Beta: dst[3]})
		g.Must(err)
		g.Must(d.Run(plan))
		for i, t := range ts {
			if add[i] {
				g.Must(d.AddInto(g.Buf(t.Grad), dst[i], t.Len()))
			}
		}
	}, x, m.CFC, bn.Weight, bn.Bias)
	return out
}

// tailDevice ends an official SRM block in training mode (m.fused(), bn and
// m.BN training) as cuda's fused block tail: out = ReLU(m(bn(x)) + short),
// x the block's last convolution's output. bn's output is never written:
// forward is a statistics pass over x and one pass that reads x and short
// and writes out, backward two passes, which is what the plain block's
// tail costs. Both BatchNorms' running statistics are updated and their
// batches counted, and the gates kept for Gates; the backward pass fills
// the gradients of x, short, bn's and m's parameters.
func (m *SRM) tailDevice(d *cuda.Device, bn *nn.BatchNorm2d, x, short *tensor.Tensor) *tensor.Tensor {
	g := op.GPU{D: d, Op: "SRM block tail"}
	if !m.fused() || !bn.Training || !m.BN.Training {
		g.Must(errors.New("the fused block tail takes the official SRM and BatchNorms in training mode"))
	}
	s := cuda.Shape{N: x.Dim(0), C: x.Dim(1), H: x.Dim(2), W: x.Dim(3)}
	sb := m.BN
	layer, err := d.SRMWith(s.C, g.Buf(m.CFC), g.Buf(sb.Weight), g.Buf(sb.Bias), g.Buf(sb.RunningMean), g.Buf(sb.RunningVar),
		float32(sb.Eps), float32(sb.Momentum))
	g.Must(err)
	tail, err := d.BlockTail(s.C, cuda.BN{Gamma: g.Buf(bn.Weight), Beta: g.Buf(bn.Bias), RunningMean: g.Buf(bn.RunningMean),
		RunningVar: g.Buf(bn.RunningVar), Eps: float32(bn.Eps), Momentum: float32(bn.Momentum)}, layer)
	g.Must(err)
	out, ws := g.BlockTail(tail, s, x, short, bn.Weight, bn.Bias, m.CFC, sb.Weight, sb.Bias)
	bn.CountBatch()
	sb.CountBatch()
	m.last = tensor.FromStorage(ws.Gates(), s.N, s.C, 1, 1)
	return out
}

// errEvalGrad is what a backward pass through the fused evaluation kernel
// reports: it keeps nothing to differentiate with.
var errEvalGrad = errors.New("the gradient of the fused SRM in evaluation mode is not implemented on the GPU (train mode, or the CPU, has it)")

// forwardFused runs SE's excitation as one fused kernel each way
// (cuda.SEGate) between the pooling and the scaling, which are the only
// passes over the feature map; false when the bottleneck is not the
// Linear → ReLU → Linear with biases the kernel computes, or too wide.
func (m *SE) forwardFused(d *cuda.Device, x *tensor.Tensor) (*tensor.Tensor, bool) {
	seq, ok := m.FC.(nn.Sequential)
	if !ok || len(seq) != 3 {
		return nil, false
	}
	fc0, ok0 := seq[0].(*nn.Linear)
	_, okR := seq[1].(nn.ReLU)
	fc2, ok2 := seq[2].(*nn.Linear)
	if !ok0 || !okR || !ok2 || fc0.Bias == nil || fc2.Bias == nil || !cuda.SEGateFits(x.Dim(1), fc0.Weight.Dim(0)) {
		return nil, false
	}
	gate := seGateDevice(d, op.GlobalAvgPool(x), fc0, fc2)
	m.last = gate.Detach()
	return op.Mul(x, gate), true
}

// seGateDevice is the differentiable cuda.SEGate: pooled (N, C, 1, 1) to
// gates of the same shape.
func seGateDevice(d *cuda.Device, pooled *tensor.Tensor, fc0, fc2 *nn.Linear) *tensor.Tensor {
	g := op.GPU{D: d, Op: "SE gate"}
	n, c, h := pooled.Dim(0), pooled.Dim(1), fc0.Weight.Dim(0)
	hidden, gate := g.Empty(n, h), g.Empty(n, c, 1, 1)
	params := []*tensor.Tensor{fc0.Weight, fc0.Bias, fc2.Weight, fc2.Bias}
	p := g.Bufs(params...)
	g.Must(d.SEGate(g.Buf(pooled), p[0], p[1], p[2], p[3], g.Buf(hidden), g.Buf(gate), n, c, h))
	tensor.Record(gate, func(grad *tensor.Tensor) {
		var dp *cuda.Buffer
		accP := false
		if pooled.NeedsGrad() {
			dp, accP = g.Grad(pooled)
		}
		dw, accW := g.Grads(params...)
		g.Must(d.SEGateBackward(g.Buf(pooled), p[0], p[2], g.Buf(hidden), g.Buf(gate), g.Buf(grad), dp,
			dw[0], dw[1], dw[2], dw[3], n, c, h, accP, accW))
	}, append([]*tensor.Tensor{pooled}, params...)...)
	return gate
}

// geGateDevice is the differentiable cuda.GEGate: GE-θ's BatchNorm bn of
// the gathered map z and the sigmoid, as one kernel each way.
func geGateDevice(d *cuda.Device, z *tensor.Tensor, bn *nn.BatchNorm2d) *tensor.Tensor {
	g := op.GPU{D: d, Op: "GE gate"}
	s := cuda.BNShape{N: z.Dim(0), C: z.Dim(1), HW: z.Len() / (z.Dim(0) * z.Dim(1))}
	gate := g.Empty(z.Shape()...)
	b := g.Bufs(z, bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar, gate)
	if !bn.Training {
		g.Must(d.GEGate(s, b[0], b[1], b[2], b[3], b[4], b[5], nil, nil, float32(bn.Momentum), float32(bn.Eps), false))
		tensor.Record(gate, func(*tensor.Tensor) {
			g.Must(errors.New("the gradient of GE's gate in evaluation mode is not implemented on the GPU"))
		}, z, bn.Weight, bn.Bias)
		return gate
	}
	zhat, rstd := g.Empty(z.Len()), g.Empty(s.C)
	g.Must(d.GEGate(s, b[0], b[1], b[2], b[3], b[4], b[5], g.Buf(zhat), g.Buf(rstd), float32(bn.Momentum), float32(bn.Eps), true))
	bn.CountBatch()
	tensor.Record(gate, func(grad *tensor.Tensor) {
		var dz *cuda.Buffer
		accZ := false
		if z.NeedsGrad() {
			dz, accZ = g.Grad(z)
		}
		dp, accP := g.Grads(bn.Weight, bn.Bias)
		g.Must(d.GEGateBackward(s, g.Buf(gate), g.Buf(zhat), g.Buf(rstd), b[1], g.Buf(grad), dz, dp[0], dp[1], accZ, accP))
	}, z, bn.Weight, bn.Bias)
	return gate
}
