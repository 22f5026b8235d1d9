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
