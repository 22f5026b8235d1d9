package cuda

import "math"

// refSRM is a float64 CPU reference of exactly what srm.cu computes (the
// maths is written out at the top of that file), kept apart from package
// srm so that the kernels are checked against an independent, deliberately
// plain implementation. It is used by the tests and by Check.
type refSRM struct {
	c                       int
	cfc, gamma, beta        []float64
	runningMean, runningVar []float64
	eps, momentum           float64
}

// refForward is what the forward pass produces and saves.
type refForward struct {
	out                    []float64
	mean, std, gate, zhat  []float64 // per plane
	rstd                   []float64 // per channel
	runningMean, runningVr []float64 // after the update (training) or as used (eval)
}

const refStdEps = 1e-5

func (r *refSRM) forward(x []float64, s Shape, training bool) refForward {
	N, C, L := s.N, s.C, s.PlaneSize()
	P := N * C
	f := refForward{
		out:  make([]float64, len(x)),
		mean: make([]float64, P), std: make([]float64, P), gate: make([]float64, P), zhat: make([]float64, P),
		rstd:        make([]float64, C),
		runningMean: append([]float64(nil), r.runningMean...),
		runningVr:   append([]float64(nil), r.runningVar...),
	}
	z := make([]float64, P)
	for p := range P {
		xp := x[p*L : (p+1)*L]
		var sum float64
		for _, v := range xp {
			sum += v
		}
		mu := sum / float64(L)
		var sq float64
		for _, v := range xp {
			sq += (v - mu) * (v - mu)
		}
		f.mean[p] = mu
		f.std[p] = math.Sqrt(sq/float64(L-1) + refStdEps)
		c := p % C
		z[p] = r.cfc[2*c]*mu + r.cfc[2*c+1]*f.std[p]
	}
	for c := range C {
		m, v := r.runningMean[c], r.runningVar[c]
		if training {
			m = 0
			for n := range N {
				m += z[n*C+c]
			}
			m /= float64(N)
			v = 0
			for n := range N {
				v += (z[n*C+c] - m) * (z[n*C+c] - m)
			}
			v /= float64(N)
			f.runningMean[c] = (1-r.momentum)*r.runningMean[c] + r.momentum*m
			f.runningVr[c] = (1-r.momentum)*r.runningVar[c] + r.momentum*v*float64(N)/float64(N-1)
		}
		f.rstd[c] = 1 / math.Sqrt(v+r.eps)
		for n := range N {
			p := n*C + c
			f.zhat[p] = (z[p] - m) * f.rstd[c]
			f.gate[p] = 1 / (1 + math.Exp(-(r.gamma[c]*f.zhat[p] + r.beta[c])))
		}
	}
	for p := range P {
		for i := p * L; i < (p+1)*L; i++ {
			f.out[i] = x[i] * f.gate[p]
		}
	}
	return f
}

// refGrads are the gradients of a training forward pass.
type refGrads struct {
	dx, dcfc, dgamma, dbeta []float64
}

// backward differentiates forward(x, s, training=true), which produced f,
// given dout.
func (r *refSRM) backward(x, dout []float64, s Shape, f refForward) refGrads {
	N, C, L := s.N, s.C, s.PlaneSize()
	P := N * C
	g := refGrads{dx: make([]float64, len(x)), dcfc: make([]float64, 2*C), dgamma: make([]float64, C), dbeta: make([]float64, C)}
	dy := make([]float64, P)
	for p := range P {
		var S float64
		for i := p * L; i < (p+1)*L; i++ {
			S += dout[i] * x[i]
		}
		dy[p] = S * f.gate[p] * (1 - f.gate[p])
	}
	k0, k2 := make([]float64, P), make([]float64, P)
	for c := range C {
		var sdy, sdyz float64
		for n := range N {
			sdy += dy[n*C+c]
			sdyz += dy[n*C+c] * f.zhat[n*C+c]
		}
		g.dbeta[c], g.dgamma[c] = sdy, sdyz
		for n := range N {
			p := n*C + c
			dz := r.gamma[c] * f.rstd[c] * (dy[p] - sdy/float64(N) - f.zhat[p]*sdyz/float64(N))
			g.dcfc[2*c] += dz * f.mean[p]
			g.dcfc[2*c+1] += dz * f.std[p]
			k0[p] = r.cfc[2*c] * dz / float64(L)
			k2[p] = r.cfc[2*c+1] * dz / (float64(L-1) * f.std[p])
		}
	}
	for p := range P {
		for i := p * L; i < (p+1)*L; i++ {
			g.dx[i] = dout[i]*f.gate[p] + k2[p]*(x[i]-f.mean[p]) + k0[p]
		}
	}
	return g
}

// refBatchNorm is a float64 BatchNorm in training mode, as PyTorch's: each
// channel normalised with its batch mean and biased variance, the running
// statistics moved toward the batch's with the unbiased variance.
type refBatchNorm struct {
	gamma, beta, runningMean, runningVar []float64
	eps, momentum                        float64
}

// refBatchNormForward is what a training forward pass produces and keeps.
type refBatchNormForward struct {
	y, xhat                 []float64
	rstd                    []float64 // per channel
	runningMean, runningVar []float64 // after the update
}

func (b *refBatchNorm) forward(x []float64, s Shape) refBatchNormForward {
	N, C, L := s.N, s.C, s.PlaneSize()
	M := float64(N * L)
	f := refBatchNormForward{y: make([]float64, len(x)), xhat: make([]float64, len(x)), rstd: make([]float64, C),
		runningMean: make([]float64, C), runningVar: make([]float64, C)}
	for c := range C {
		var sum, sq float64
		for n := range N {
			for _, v := range x[(n*C+c)*L : (n*C+c+1)*L] {
				sum += v
			}
		}
		mu := sum / M
		for n := range N {
			for _, v := range x[(n*C+c)*L : (n*C+c+1)*L] {
				sq += (v - mu) * (v - mu)
			}
		}
		f.rstd[c] = 1 / math.Sqrt(sq/M+b.eps)
		f.runningMean[c] = (1-b.momentum)*b.runningMean[c] + b.momentum*mu
		f.runningVar[c] = (1-b.momentum)*b.runningVar[c] + b.momentum*sq/(M-1)
		for n := range N {
			for i := (n*C + c) * L; i < (n*C+c+1)*L; i++ {
				f.xhat[i] = (x[i] - mu) * f.rstd[c]
				f.y[i] = b.gamma[c]*f.xhat[i] + b.beta[c]
			}
		}
	}
	return f
}

// backward is the textbook gradient of forward, given dy:
// dx = gamma rstd (dy - mean(dy) - xhat mean(dy xhat)) over each channel.
func (b *refBatchNorm) backward(dy []float64, s Shape, f refBatchNormForward) (dx, dgamma, dbeta []float64) {
	N, C, L := s.N, s.C, s.PlaneSize()
	M := float64(N * L)
	dx, dgamma, dbeta = make([]float64, len(dy)), make([]float64, C), make([]float64, C)
	for c := range C {
		for n := range N {
			for i := (n*C + c) * L; i < (n*C+c+1)*L; i++ {
				dbeta[c] += dy[i]
				dgamma[c] += dy[i] * f.xhat[i]
			}
		}
		for n := range N {
			for i := (n*C + c) * L; i < (n*C+c+1)*L; i++ {
				dx[i] = b.gamma[c] * f.rstd[c] * (dy[i] - dbeta[c]/M - f.xhat[i]*dgamma[c]/M)
			}
		}
	}
	return dx, dgamma, dbeta
}

// refTail is the block tail as the operations the fused kernels replace,
// composed in float64: refBatchNorm, then refSRM on its output (none when srm is
// nil), the shortcut and the ReLU. It shares none of the fused maths (plane
// moments of x, the style of BN's output derived from them), so it checks
// that as well as the kernels.
type refTail struct {
	bn  refBatchNorm
	srm *refSRM
}

// refTailForward is what the tail's forward pass produces and keeps.
type refTailForward struct {
	out []float64
	bn  refBatchNormForward
	srm refForward // with an SRM
}

func (r *refTail) forward(x, short []float64, s Shape) refTailForward {
	f := refTailForward{bn: r.bn.forward(x, s)}
	z := f.bn.y
	if r.srm != nil {
		f.srm = r.srm.forward(f.bn.y, s, true)
		z = f.srm.out
	}
	f.out = make([]float64, len(x))
	for i := range z {
		f.out[i] = max(z[i]+short[i], 0)
	}
	return f
}

// refTailGrads are the gradients of a tail's forward pass: of x, of short,
// of the BatchNorm's gamma and beta, and with an SRM the SRM's (srm.dx is
// BN's output's).
type refTailGrads struct {
	dx, dshort, dgamma, dbeta []float64
	srm                       refGrads
}

// backward differentiates forward, which produced f, given dout. passed
// says where the ReLU passed its input; the callers take it from the
// device's output, since where the sum is within rounding of 0 the float32
// and float64 outputs may fall on either side, and the gradient jumps
// there.
func (r *refTail) backward(dout []float64, passed []bool, s Shape, f refTailForward) refTailGrads {
	var g refTailGrads
	g.dshort = make([]float64, len(dout))
	for i, p := range passed {
		if p {
			g.dshort[i] = dout[i]
		}
	}
	dy := g.dshort
	if r.srm != nil {
		g.srm = r.srm.backward(f.bn.y, g.dshort, s, f.srm)
		dy = g.srm.dx
	}
	g.dx, g.dgamma, g.dbeta = r.bn.backward(dy, s, f.bn)
	return g
}
