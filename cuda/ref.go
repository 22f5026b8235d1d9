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
