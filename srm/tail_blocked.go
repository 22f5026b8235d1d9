package srm

import (
	"unsafe"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/tensor"
)

// blockedPlanes runs the tail's passes over the feature maps on maps in
// the blocked layout a convolution left them in (see tensor.Blocked16), so
// that the block's output goes on to the next convolution without a
// reorder: plane p = n·C + c is then lane c%16 of the run of batch item n
// and channel block c/16 (tensor.Runs), and a plane's scalars are a
// lane's. The arithmetic per plane is the NCHW passes' in srmTail and
// tailBackward.
type blockedPlanes struct{ tensor.Runs }

// blockedTail says whether the tail runs in the blocked layout: x is in
// it, and short can join it.
func blockedTail(x, short *tensor.Tensor) *blockedPlanes {
	if !tensor.IsBlocked16(x) || !tensor.CanBlock16(short) {
		return nil
	}
	return newBlockedPlanes(x)
}

// newBlockedPlanes describes the planes of x, (N, 16k, H, W).
func newBlockedPlanes(x *tensor.Tensor) *blockedPlanes { return &blockedPlanes{tensor.RunsOf(x)} }

// blockedVals is t's values in the blocked layout, as []T: T is float32
// wherever blockedTail said yes.
func blockedVals[T kern.Float](t *tensor.Tensor) []T {
	b := tensor.Blocked16(t)
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
}

// f32s is s as []float32, where blockedTail has said that T is float32.
func f32s[T kern.Float](s []T) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// each calls f on every run r in parallel, with the run's first plane,
// 16r.
func (b *blockedPlanes) each(f func(r, p0 int)) {
	b.Each(3*b.Len(), func(r int) { f(r, r*simd.Lanes) })
}

// moments sets each plane's mean and Σ(x − mean)², as srmTail's first pass.
func (b *blockedPlanes) moments(xs []float32, mean, q []float64) {
	b.each(func(r, p0 int) {
		x := b.Run(xs, r)
		var k, s1, s2 [simd.Lanes]float64
		for l := range k {
			k[l] = float64(x[l]) // each plane's first value
		}
		simd.LaneShiftedSums(x, &k, &s1, &s2)
		for l := range k {
			mean[p0+l], q[p0+l] = simd.Moments(k[l], s1[l], s2[l], float64(b.HW))
		}
	})
}

// forward sets ys = ReLU(xs·S_p + B_p + ss) with S_p, B_p = sb(p).
func (b *blockedPlanes) forward(ys, xs, ss []float32, sb func(p int) (float32, float32)) {
	b.each(func(r, p0 int) {
		var s, o [simd.Lanes]float32
		for l := range s {
			s[l], o[l] = sb(p0 + l)
		}
		simd.LaneAffineAdd(b.Run(ys, r), b.Run(xs, r), b.Run(ss, r), &s, &o, true)
	})
}

// gradSums sets rs to ds past the ReLU whose output is ys, and P and Q'
// per plane (see tail.go), as tailBackward's first pass.
func (b *blockedPlanes) gradSums(rs, ds, xs, ys []float32, mean, sumP, sumQ []float64) {
	b.each(func(r, p0 int) {
		var mu, sp, sq [simd.Lanes]float64
		copy(mu[:], mean[p0:])
		simd.LaneGradSums(b.Run(ds, r), b.Run(xs, r), b.Run(ys, r), b.Run(rs, r), &mu, &sp, &sq)
		copy(sumP[p0:p0+simd.Lanes], sp[:])
		copy(sumQ[p0:p0+simd.Lanes], sq[:])
	})
}

// dx adds x's gradient, x·k_p + off_p + rs·S_p with (k, off, S) = f(p),
// into x's gradient, which it makes, in the blocked layout, when there is
// none.
func (b *blockedPlanes) dx(x *tensor.Tensor, xs, rs []float32, f func(p int) (k, off, s float32)) {
	dx, first, done := tensor.GradBlocked16(x)
	negZero := simd.Splat(simd.NegZero[float32]())
	b.each(func(r, p0 int) {
		var k, off, s [simd.Lanes]float32
		for l := range k {
			k[l], off[l], s[l] = f(p0 + l)
		}
		d := b.Run(dx, r)
		simd.LaneAffineAcc(d, b.Run(xs, r), &k, &off, !first)
		simd.LaneAffineAdd(d, b.Run(rs, r), d, &s, negZero, false)
	})
	done()
}

// cfcBlocked is cfc for a map in the blocked layout, GE-θ's global gather
// of a convolution's output: the weight goes into the layout too (as one
// (1, C, H, W) map), so that each run's dot products are lane by lane.
func cfcBlocked(t, w, b *tensor.Tensor, n, c, k int) *tensor.Tensor {
	rs := tensor.RunsOf(t)
	ts := tensor.Blocked16(t)
	ws := tensor.Blocked16(tensor.FromFloat32(w.F32(), 1, c, t.Dim(2), t.Dim(3))) // a copy: w stays NCHW
	wRuns := tensor.Runs{N: 1, C: c, HW: k}
	weight := func(r int) []float32 { return wRuns.Run(ws, r%rs.Blocks()) } // run r's block's weights
	out := tensor.New(tensor.Float32, n, c, 1, 1)
	zs := out.F32()
	var bs []float32
	if b != nil {
		bs = b.F32()
	}
	rs.Each(rs.Len(), func(r int) {
		var zero, sum, dot [simd.Lanes]float64
		simd.LaneGradSums(weight(r), rs.Run(ts, r), nil, nil, &zero, &sum, &dot)
		z := rs.Lanes(zs, r)
		for l, v := range dot {
			if bs != nil {
				v += float64(bs[r%rs.Blocks()*simd.Lanes+l])
			}
			z[l] = float32(v)
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gz := grad.F32()
		negZero := simd.Splat(simd.NegZero[float32]())
		if t.NeedsGrad() {
			gt, first, done := tensor.GradBlocked16(t)
			rs.Each(rs.Len(), func(r int) {
				simd.LaneAffineAcc(rs.Run(gt, r), weight(r), rs.Lanes(gz, r), negZero, !first)
			})
			done()
		}
		if w.NeedsGrad() {
			// Per block, over the batch in order: the same bits each run.
			dw := tensor.EmptyBlocked16(1, c, t.Dim(2), t.Dim(3))
			dws := tensor.Blocked16(dw)
			clear(dws)
			wRuns.Each(n*rs.Len(), func(cb int) {
				d := wRuns.Run(dws, cb)
				for i := range n {
					r := i*rs.Blocks() + cb
					simd.LaneAffineAdd(d, rs.Run(ts, r), d, rs.Lanes(gz, r), negZero, false)
				}
			})
			simd.AddTo(tensor.GradOf(w).F32(), dw.F32())
		}
		if b != nil && b.NeedsGrad() {
			gb := tensor.GradOf(b).F32()
			for i := range n {
				for ch := range c {
					gb[ch] += gz[i*c+ch]
				}
			}
		}
	}, t, w, b)
	return out
}

// stylePoolBlocked is stylePool, mean and std only, for a map in the
// blocked layout: the SRM module outside the fused tail (evaluation,
// the MLP variant) reads its block's map as the convolution left it.
func stylePoolBlocked(x *tensor.Tensor, p Pooling, biased bool) *tensor.Tensor {
	b := newBlockedPlanes(x)
	k := p.Len()
	out := tensor.New(tensor.Float32, b.N, b.C, k)
	xs, ts := tensor.Blocked16(x), out.F32()
	den := float64(b.HW - 1)
	if biased {
		den = float64(b.HW)
	}
	mean, q := make([]float64, b.N*b.C), make([]float64, b.N*b.C)
	b.moments(xs, mean, q)
	std := make([]float64, b.N*b.C)
	for pl := range mean {
		std[pl], _ = styleRow(ts[pl*k:(pl+1)*k], p, mean[pl], q[pl], den)
	}
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs := grad.F32()
		dx, first, done := tensor.GradBlocked16(x)
		b.each(func(r, p0 int) {
			// dx += gAvg + gStd·(x − mean), as x·gStd + (gAvg − gStd·mean).
			var a, off [simd.Lanes]float32
			for l := range a {
				pl := p0 + l
				gAvg, gStd, _ := styleGrads(gs[pl*k:(pl+1)*k], p, float64(b.HW), den, std[pl])
				a[l], off[l] = float32(gStd), float32(gAvg-gStd*mean[pl])
			}
			simd.LaneAffineAcc(b.Run(dx, r), b.Run(xs, r), &a, &off, !first)
		})
		done()
	}, x)
	return out
}
