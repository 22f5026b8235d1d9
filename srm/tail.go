package srm

import (
	"math"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// The fused tail of an SRM residual block in training mode,
//
//	out = ReLU(SRM(BN(x)) + short),
//
// x the block's last convolution output. A plain block ends in one
// BatchNorm pass that adds the shortcut (op.BatchNormAddReLU), while the
// composed SRM block wrote the normalised map y = BN(x), read it for style
// pooling and read it again for the gated addition (op.ScaleAddReLU), and
// did the like backwards: SRM added 10-16 % to a ResNet-20 training step.
// Since y = a·x + b per channel, y's style follows from x's plane moments,
// so the tail reads x twice and writes out once, and never writes y: about
// the passes of the plain block.
//
// x is N×C×H×W; plane p = (n, c) holds L = H·W values. γ, β are BN's
// affine parameters, w0, w1 the CFC's, γ2, β2 and ε2 SRM's BatchNorm's.
//
// Forward:
//
//	per plane (one pass over x):  m_p = (1/L) Σ_i x_pi,  q_p = Σ_i (x_pi − m_p)²
//	per channel, BN's batch statistics from the plane moments, exactly:
//	  μ_c = (1/N) Σ_n m_p,  var_c = (Σ_n q_p + L Σ_n (m_p − μ_c)²) / (N L)
//	  r_c = 1/√(var_c + ε),  a_c = γ_c r_c,  b_c = β_c − a_c μ_c   (y = a x + b)
//	  style of y:  u_p = a_c m_p + b_c,  s_p = √(a_c² q_p/(L−1) + StyleEps)
//	  CFC:  z_p = w0_c u_p + w1_c s_p
//	  SRM's BN over the batch:  ẑ_p = (z_p − mean_n z) r2_c,
//	    r2_c = 1/√(var_n z + ε2),  g_p = sigmoid(γ2_c ẑ_p + β2_c)
//	per plane (one pass):  out_pi = max(S_p x_pi + B_p + short_pi, 0),
//	  S_p = a_c g_p,  B_p = b_c g_p
//
// Backward, D = dout:
//
//	per plane (one pass):  dr_pi = D_pi [out_pi > 0]  (short's gradient),
//	  P_p = Σ_i dr_pi,  Q'_p = Σ_i dr_pi (x_pi − m_p)
//	per channel (sums over n):
//	  dg_p = a_c Q'_p + u_p P_p,  dh_p = dg_p g_p (1 − g_p)
//	  dγ2_c = Σ dh_p ẑ_p,  dβ2_c = Σ dh_p
//	  dz_p = γ2_c r2_c (dh_p − mean_n dh − ẑ_p mean_n(dh ẑ))
//	  dw0_c = Σ dz_p u_p,  dw1_c = Σ dz_p s_p,  du_p = w0_c dz_p,  ds_p = w1_c dz_p
//	  db_c = Σ (g_p P_p + du_p)
//	  dA_c = Σ (g_p (Q'_p + (m_p − μ_c) P_p) + du_p (m_p − μ_c) + ds_p a_c q_p/((L−1) s_p))
//	    (dA = da − db μ: a's gradient with b's share through μ, centred
//	    so that a large mean does not cancel)
//	  dγ_c = dA_c r_c,  dβ_c = db_c,  dvar_c = −½ dA_c γ_c r_c³
//	  dm_p = a_c du_p − a_c db_c/N + dvar_c 2 (m_p − μ_c)/N
//	  dq_p = ds_p a_c²/(2 (L−1) s_p) + dvar_c/(N L)
//	per plane (one pass):  dx_pi = S_p dr_pi + 2 dq_p (x_pi − m_p) + dm_p/L
//
// (Σ_i (x_pi − m_p) = 0 removes m's own dependence on x from q, and
// Σ_n (m_p − μ_c) = 0 removes μ's from var.)

// tail is ReLU(m(bn(x)) + short) for the official SRM (m.fused()) with bn
// and m.BN in training mode, as one operation (see above): on the host
// here, on a GPU as package cuda's fused block tail (tailDevice).
// It updates both BatchNorms' running statistics and batch counts as their
// Forward would and keeps the gates for Gates. short has x's shape; the
// SRM's batch statistics need N ≥ 2 and its unbiased std H·W ≥ 2.
func (m *SRM) tail(x *tensor.Tensor, bn *nn.BatchNorm2d, short *tensor.Tensor) *tensor.Tensor {
	mustFit(m, x)
	if !tensor.SameShape(x, short) {
		tensor.Panicf("SRM tail: shortcut %v for input %v", short.Shape(), x.Shape())
	}
	if x.Dim(0) < 2 {
		tensor.Panicf("SRM tail: SRM's BatchNorm trains on batch statistics and needs at least 2 images, input %v", x.Shape())
	}
	c := x.Dim(1)
	for _, p := range []*tensor.Tensor{bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar, m.BN.Weight, m.BN.Bias, m.BN.RunningMean, m.BN.RunningVar} {
		if p.Rank() != 1 || p.Dim(0) != c {
			tensor.Panicf("SRM tail: parameter %v for input %v, want (%d)", p.Shape(), x.Shape(), c)
		}
	}
	if m.CFC.Len() != 2*c || m.CFC.Dim(0) != c {
		tensor.Panicf("SRM tail: cfc %v for input %v, want (%d, 2)", m.CFC.Shape(), x.Shape(), c)
	}
	if d := op.DeviceOf("SRM tail", x, short, bn.Weight, m.CFC); d != nil {
		return m.tailDevice(d, bn, x, short)
	}
	kern.SameType("SRM tail", x, short, bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar,
		m.CFC, m.BN.Weight, m.BN.Bias, m.BN.RunningMean, m.BN.RunningVar)
	var out, gates *tensor.Tensor
	if x.DType() == tensor.Float64 {
		out, gates = srmTail[float64](m, x, bn, short)
	} else {
		out, gates = srmTail[float32](m, x, bn, short)
	}
	bn.CountBatch()
	m.BN.CountBatch()
	m.keep(gates)
	return out
}

// tailStats holds the forward pass's float64 values that the backward pass
// reuses: per plane p = n·C + c and per channel.
type tailStats struct {
	mean, q     []float64 // x's plane mean and Σ(x − mean)²
	u, s, zh, g []float64 // y's style mean and std, normalised z, gate
	mu, r, a, b []float64 // BN's batch mean and 1/std; y = a·x + b
	rz          []float64 // 1/std of z over the batch
}

func newTailStats(n, c int) *tailStats {
	p, ch := float64s(6, n*c), float64s(5, c)
	return &tailStats{
		mean: p[0], q: p[1], u: p[2], s: p[3], zh: p[4], g: p[5],
		mu: ch[0], r: ch[1], a: ch[2], b: ch[3], rz: ch[4],
	}
}

// float64s returns count slices of k zeros, cut from one allocation.
func float64s(count, k int) [][]float64 {
	buf, s := make([]float64, count*k), make([][]float64, count)
	for i := range s {
		s[i] = buf[i*k : (i+1)*k : (i+1)*k]
	}
	return s
}

// tailVals reads a tensor's values in the layout the tail runs in:
// blocked where bl is set.
func tailVals[T kern.Float](bl *blockedPlanes) func(*tensor.Tensor) []T {
	if bl != nil {
		return blockedVals[T]
	}
	return kern.Vals[T]
}

func srmTail[T kern.Float](m *SRM, x *tensor.Tensor, bn *nn.BatchNorm2d, short *tensor.Tensor) (out, gates *tensor.Tensor) {
	n, c, hw := x.Dim(0), x.Dim(1), x.Dim(2)*x.Dim(3)
	nf, lf := float64(n), float64(hw)
	bl := blockedTail(x, short)
	gates = tensor.New(x.DType(), n, c, 1, 1)
	gs := kern.Vals[T](gates)
	if bl != nil {
		out = tensor.EmptyBlocked16(x.Shape()...)
	} else {
		out = tensor.EmptyLike(x)
	}
	vals := tailVals[T](bl)
	xs, ss, ys := vals(x), vals(short), vals(out)
	bw, bb, brm, brv := kern.Vals[T](bn.Weight), kern.Vals[T](bn.Bias), kern.Vals[T](bn.RunningMean), kern.Vals[T](bn.RunningVar)
	cw := kern.Vals[T](m.CFC)
	zw, zb, zrm, zrv := kern.Vals[T](m.BN.Weight), kern.Vals[T](m.BN.Bias), kern.Vals[T](m.BN.RunningMean), kern.Vals[T](m.BN.RunningVar)
	st := newTailStats(n, c)
	if bl != nil {
		bl.moments(f32s(xs), st.mean, st.q)
	} else {
		parallel.For(n*c, 3*hw, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				// Sums around the plane's first value, in float64, as
				// StylePool and BatchNorm take them: one pass, and no
				// cancellation when the mean is large against the spread.
				v := xs[p*hw : (p+1)*hw]
				k := float64(v[0])
				s1, s2 := simd.ShiftedSums(v, k)
				st.mean[p], st.q[p] = simd.Moments(k, s1, s2, lf)
			}
		})
	}
	parallel.For(c, 40*n, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			sm := 0.0
			for i := range n {
				sm += st.mean[i*c+ch]
			}
			mu := sm / nf
			sq := 0.0 // Σ(x − μ)² over the channel
			for i := range n {
				p := i*c + ch
				d := st.mean[p] - mu
				sq += st.q[p] + lf*d*d
			}
			kern.UpdateRunning(&brm[ch], &brv[ch], mu, sq, nf*lf, bn.Momentum)
			r := 1 / math.Sqrt(sq/(nf*lf)+bn.Eps)
			a := float64(bw[ch]) * r
			b := float64(bb[ch]) - a*mu
			st.mu[ch], st.r[ch], st.a[ch], st.b[ch] = mu, r, a, b

			w0, w1 := float64(cw[2*ch]), float64(cw[2*ch+1])
			sz := 0.0
			for i := range n {
				p := i*c + ch
				st.u[p] = a*st.mean[p] + b
				st.s[p] = math.Sqrt(a*a*st.q[p]/(lf-1) + StyleEps)
				st.zh[p] = w0*st.u[p] + w1*st.s[p] // z until normalised below
				sz += st.zh[p]
			}
			mz := sz / nf
			vz := 0.0 // Σ(z − mean z)²
			for i := range n {
				d := st.zh[i*c+ch] - mz
				vz += d * d
			}
			kern.UpdateRunning(&zrm[ch], &zrv[ch], mz, vz, nf, m.BN.Momentum)
			rz := 1 / math.Sqrt(vz/nf+m.BN.Eps)
			st.rz[ch] = rz
			for i := range n {
				p := i*c + ch
				st.zh[p] = (st.zh[p] - mz) * rz
				st.g[p] = sigmoid(float64(zw[ch])*st.zh[p] + float64(zb[ch]))
				gs[p] = T(st.g[p])
			}
		}
	})
	if bl != nil {
		bl.forward(f32s(ys), f32s(xs), f32s(ss), func(p int) (float32, float32) {
			return float32(st.a[p%c] * st.g[p]), float32(st.b[p%c] * st.g[p])
		})
	} else {
		parallel.For(n*c, 3*hw, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				ch, at := p%c, p*hw
				g := st.g[p]
				simd.AffineAddTo(ys[at:at+hw], xs[at:at+hw], ss[at:at+hw], T(st.a[ch]*g), T(st.b[ch]*g), true)
			}
		})
	}
	tensor.Record(out, func(grad *tensor.Tensor) {
		tailBackward[T](m, x, bn, short, out, grad, st, bl)
	}, x, short, bn.Weight, bn.Bias, m.CFC, m.BN.Weight, m.BN.Bias)
	return out, gates
}

// sigmoid takes exp of a non-positive argument only, as op.Sigmoid, so
// that a large |v| saturates instead of overflowing.
func sigmoid(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}

// gradVals returns t's gradient buffer to accumulate into, or nil when t
// needs none; it allocates, so it runs before the parallel loops.
func gradVals[T kern.Float](t *tensor.Tensor) []T {
	if !t.NeedsGrad() {
		return nil
	}
	return kern.Vals[T](tensor.GradOf(t))
}

func tailBackward[T kern.Float](m *SRM, x *tensor.Tensor, bn *nn.BatchNorm2d, short, out, grad *tensor.Tensor, st *tailStats, bl *blockedPlanes) {
	n, c, hw := x.Dim(0), x.Dim(1), x.Dim(2)*x.Dim(3)
	nf, lf := float64(n), float64(hw)
	vals := tailVals[T](bl)
	xs, ys, ds := vals(x), vals(out), vals(grad)
	// dr, the gradient past the ReLU, is the shortcut's gradient; it goes
	// where grad is when this function owns grad (nothing else reads it
	// after the call, and in the blocked layout it was converted in
	// place), as in op.ScaleAddReLU.
	dr := grad
	if !tensor.OwnsGrad(out) || (bl != nil && !tensor.IsBlocked16(grad)) {
		dr = tensor.EmptyLayoutLike(out)
	}
	rs := vals(dr)
	// Per plane: P and Q' (see above), then dh; dm and dq for the dx pass.
	pl := float64s(5, n*c)
	sumP, sumQ, dh, dm, dq := pl[0], pl[1], pl[2], pl[3], pl[4]
	if bl != nil {
		bl.gradSums(f32s(rs), f32s(ds), f32s(xs), f32s(ys), st.mean, sumP, sumQ)
	} else {
		parallel.For(n*c, 3*hw, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				at := p * hw
				simd.Mask(rs[at:at+hw], ds[at:at+hw], ys[at:at+hw])
				sumP[p], sumQ[p] = simd.GradSums(rs[at:at+hw], xs[at:at+hw], nil, st.mean[p])
			}
		})
	}
	gw, gb, gcfc, gzw, gzb := gradVals[T](bn.Weight), gradVals[T](bn.Bias), gradVals[T](m.CFC), gradVals[T](m.BN.Weight), gradVals[T](m.BN.Bias)
	bw, cw, zw := kern.Vals[T](bn.Weight), kern.Vals[T](m.CFC), kern.Vals[T](m.BN.Weight)
	parallel.For(c, 60*n, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			a, mu, r := st.a[ch], st.mu[ch], st.r[ch]
			sh, shz := 0.0, 0.0 // Σ dh and Σ dh·ẑ
			for i := range n {
				p := i*c + ch
				g := st.g[p]
				dh[p] = (a*sumQ[p] + st.u[p]*sumP[p]) * g * (1 - g)
				sh += dh[p]
				shz += dh[p] * st.zh[p]
			}
			k := float64(zw[ch]) * st.rz[ch]
			w0, w1 := float64(cw[2*ch]), float64(cw[2*ch+1])
			var dw0, dw1, dA, db float64
			for i := range n {
				p := i*c + ch
				dz := k * (dh[p] - sh/nf - st.zh[p]*shz/nf)
				dw0 += dz * st.u[p]
				dw1 += dz * st.s[p]
				du, dsd := w0*dz, w1*dz
				dev := st.mean[p] - mu
				g := st.g[p]
				dA += g*(sumQ[p]+dev*sumP[p]) + du*dev + dsd*a*st.q[p]/((lf-1)*st.s[p])
				db += g*sumP[p] + du
				dm[p] = a * du
				dq[p] = dsd * a * a / (2 * (lf - 1) * st.s[p])
			}
			gamma := float64(bw[ch])
			dvar := -0.5 * dA * gamma * r * r * r
			for i := range n {
				p := i*c + ch
				dm[p] += (-a*db + 2*dvar*(st.mean[p]-mu)) / nf
				dq[p] += dvar / (nf * lf)
			}
			if gw != nil {
				gw[ch] += T(dA * r)
			}
			if gb != nil {
				gb[ch] += T(db)
			}
			if gcfc != nil {
				gcfc[2*ch] += T(dw0)
				gcfc[2*ch+1] += T(dw1)
			}
			if gzw != nil {
				gzw[ch] += T(shz)
			}
			if gzb != nil {
				gzb[ch] += T(sh)
			}
		}
	})
	switch {
	case !x.NeedsGrad():
	case bl != nil:
		bl.dx(x, f32s(xs), f32s(rs), func(p int) (k, off, s float32) {
			k2 := 2 * dq[p]
			return float32(k2), float32(dm[p]/lf - k2*st.mean[p]), float32(st.a[p%c] * st.g[p])
		})
	default:
		gx, first := tensor.GradFor(x)
		dx := kern.Vals[T](gx)
		nz := simd.NegZero[T]()
		parallel.For(n*c, 4*hw, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				ch, at := p%c, p*hw
				d, xp := dx[at:at+hw], xs[at:at+hw]
				// 2dq·(x − m) + dm/L as x·2dq + (dm/L − 2dq·m), the
				// offset in float64 and rounded once, then S·dr added
				// while the plane is still in cache.
				k := 2 * dq[p]
				off := T(dm[p]/lf - k*st.mean[p])
				if first {
					simd.Affine(d, xp, T(k), off, false)
				} else {
					simd.AffineAdd(d, xp, T(k), off)
				}
				simd.AffineAdd(d, rs[at:at+hw], T(st.a[ch]*st.g[p]), nz)
			}
		})
	}
	switch {
	case !short.NeedsGrad():
	case bl != nil:
		tensor.PassGrad16(short, dr, true)
	case short.Grad == nil:
		short.Grad = dr
	default:
		sg := kern.Vals[T](short.Grad)
		parallel.For(len(rs), 1, func(lo, hi int) { simd.AddTo(sg[lo:hi], rs[lo:hi]) })
	}
}
