package op

import (
	"errors"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/tensor"
)

func batchNormDevice(d *cuda.Device, op string, x, gamma, beta, runMean, runVar *tensor.Tensor, training bool, momentum, eps float64, bn bnShape, relu bool) *tensor.Tensor {
	g := GPU{d, op}
	s := cuda.BNShape{N: bn.n, C: bn.c, HW: bn.hw}
	y := g.Empty(x.Shape()...)
	if !training {
		g.Must(d.BatchNormEval(s, g.Buf(x), g.Buf(gamma), g.Buf(beta), g.Buf(runMean), g.Buf(runVar), g.Buf(y), float32(eps), relu))
		tensor.Record(y, func(*tensor.Tensor) {
			g.Must(errors.New("the gradient of BatchNorm in evaluation mode is not implemented on the GPU"))
		}, x, gamma, beta)
		return y
	}
	mean, rstd := g.Empty(2*bn.c), g.Empty(bn.c) // mean as (float, remainder) pairs
	g.Must(d.BatchNormTrain(s, g.Buf(x), g.Buf(gamma), g.Buf(beta), g.Buf(runMean), g.Buf(runVar), g.Buf(y),
		g.Buf(mean), g.Buf(rstd), float32(momentum), float32(eps), relu))
	tensor.Record(y, func(grad *tensor.Tensor) {
		var dx *cuda.Buffer
		var accX bool
		if x.NeedsGrad() {
			dx, accX = g.Grad(x)
		}
		// The kernel computes the parameter gradients on the way to dx
		// anyway; frozen parameters get scratch (see Grads).
		dp, accP := g.Grads(gamma, beta)
		g.Must(d.BatchNormBackward(s, g.Buf(x), g.Buf(y), g.Buf(grad), g.Buf(gamma), g.Buf(mean), g.Buf(rstd),
			dx, dp[0], dp[1], relu, accX, accP))
	}, x, gamma, beta)
	return y
}

// batchNormAddReLUDevice is BatchNormAddReLU in training mode as cuda's
// plain block tail: one statistics pass over x and one pass that writes
// ReLU(BN(x) + short) forward, two passes backward, where BatchNormTrain
// and AddReLU make three and three.
func batchNormAddReLUDevice(d *cuda.Device, op string, x, gamma, beta, runMean, runVar, short *tensor.Tensor, momentum, eps float64, bn bnShape) *tensor.Tensor {
	g := GPU{d, op}
	t, err := d.BlockTail(bn.c, cuda.BN{Gamma: g.Buf(gamma), Beta: g.Buf(beta), RunningMean: g.Buf(runMean),
		RunningVar: g.Buf(runVar), Eps: float32(eps), Momentum: float32(momentum)}, nil)
	g.Must(err)
	out, _ := g.BlockTail(t, cuda.Shape{N: bn.n, C: bn.c, H: bn.hw, W: 1}, x, short, gamma, beta)
	return out
}

// BlockTail runs t, cuda's fused block tail in training mode, on x and
// short of shape s and records its backward pass, which fills the
// gradients of x, short and params with the accumulate rules of the other
// device paths. params are the tail's parameters in the order its kernels
// write their gradients: the BatchNorm's weight and bias, then an SRM's CFC,
// weight and bias. It returns the output and the workspace, whose gates an
// SRM keeps.
func (g GPU) BlockTail(t *cuda.Tail, s cuda.Shape, x, short *tensor.Tensor, params ...*tensor.Tensor) (*tensor.Tensor, *cuda.TailWorkspace) {
	ws, err := t.NewCollectedWorkspace(s)
	g.Must(err)
	out := g.Empty(x.Shape()...)
	plan, err := t.Forward(g.Buf(x), g.Buf(short), g.Buf(out), ws)
	g.Must(err)
	g.Must(g.D.Run(plan))
	tensor.Record(out, func(grad *tensor.Tensor) {
		var dx, dshort *cuda.Buffer
		var accX, accShort bool
		if x.NeedsGrad() {
			dx, accX = g.Grad(x)
		}
		// The kernels write x's and short's gradients into two buffers;
		// when short is x, short's share goes to scratch and is added after.
		var scratch *tensor.Tensor
		switch {
		case short == x && x.NeedsGrad():
			scratch = g.Empty(x.Shape()...)
			dshort = g.Buf(scratch)
		case short.NeedsGrad():
			dshort, accShort = g.Grad(short)
		}
		// The kernel computes the parameter gradients on the way to dx
		// anyway; frozen parameters get scratch (see Grads).
		dp, accP := g.Grads(params...)
		grads := &cuda.TailGrads{Gamma: dp[0], Beta: dp[1]}
		if len(dp) == 5 {
			grads.SRM = &cuda.SRMGrads{CFC: dp[2], Gamma: dp[3], Beta: dp[4]}
		}
		plan, err := t.Backward(g.Buf(x), g.Buf(out), g.Buf(grad), dx, dshort, ws, grads, accX, accShort, accP)
		g.Must(err)
		g.Must(g.D.Run(plan))
		if scratch != nil {
			g.Pass(x, scratch, false)
		}
	}, append([]*tensor.Tensor{x, short}, params...)...)
	return out, ws
}
