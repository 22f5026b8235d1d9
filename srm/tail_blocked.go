package srm

import (
	"unsafe"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/tensor"
)

// blockedPlanes runs the tail's passes over the feature maps on maps in
// the blocked layout a convolution left them in (see tensor.Blocked16), so
// that the block's output goes on to the next convolution without a
// reorder: plane p = n·C + c is then lane c%16 of the run of batch item n
// and channel block c/16, and a plane's scalars are a lane's. The
// arithmetic per plane is the NCHW passes' in srmTail and tailBackward.
type blockedPlanes struct{ n, c, hw, nb, run int }

// blockedTail says whether the tail runs in the blocked layout: x is in
// it, and short can join it.
func blockedTail(x, short *tensor.Tensor) *blockedPlanes {
	if !tensor.IsBlocked16(x) || !tensor.CanBlock16(short) {
		return nil
	}
	s := x.Shape()
	hw := s[2] * s[3]
	return &blockedPlanes{n: s[0], c: s[1], hw: hw, nb: s[1] / simd.Lanes, run: hw * simd.Lanes}
}

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

// each calls f on every run (batch item i, block cb) in parallel, with the
// first plane of the run.
func (b *blockedPlanes) each(f func(at, p0 int)) {
	parallel.For(b.n*b.nb, 3*b.run, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			f(r*b.run, r/b.nb*b.c+r%b.nb*simd.Lanes)
		}
	})
}

// moments sets each plane's mean and Σ(x − mean)², as srmTail's first pass.
func (b *blockedPlanes) moments(xs []float32, mean, q []float64) {
	b.each(func(at, p0 int) {
		var k, s1, s2 [simd.Lanes]float64
		for l := range k {
			k[l] = float64(xs[at+l]) // each plane's first value
		}
		simd.LaneShiftedSums(xs[at:at+b.run], &k, &s1, &s2)
		for l := range k {
			mean[p0+l], q[p0+l] = planeMoments(k[l], s1[l], s2[l], float64(b.hw))
		}
	})
}

// forward sets ys = ReLU(xs·S_p + B_p + ss) with S_p, B_p = sb(p).
func (b *blockedPlanes) forward(ys, xs, ss []float32, sb func(p int) (float32, float32)) {
	b.each(func(at, p0 int) {
		var s, o [simd.Lanes]float32
		for l := range s {
			s[l], o[l] = sb(p0 + l)
		}
		simd.LaneAffineAdd(ys[at:at+b.run], xs[at:at+b.run], ss[at:at+b.run], &s, &o, true)
	})
}

// gradSums sets rs to ds past the ReLU whose output is ys, and P and Q'
// per plane (see tail.go), as tailBackward's first pass.
func (b *blockedPlanes) gradSums(rs, ds, xs, ys []float32, mean, sumP, sumQ []float64) {
	b.each(func(at, p0 int) {
		var mu, sp, sq [simd.Lanes]float64
		copy(mu[:], mean[p0:])
		simd.LaneGradSums(ds[at:at+b.run], xs[at:at+b.run], ys[at:at+b.run], rs[at:at+b.run], &mu, &sp, &sq)
		copy(sumP[p0:p0+simd.Lanes], sp[:])
		copy(sumQ[p0:p0+simd.Lanes], sq[:])
	})
}

// dx adds x's gradient, x·k_p + off_p + rs·S_p with (k, off, S) = f(p),
// into x's gradient, which it makes, in the blocked layout, when there is
// none.
func (b *blockedPlanes) dx(x *tensor.Tensor, xs, rs []float32, f func(p int) (k, off, s float32)) {
	gx, first := tensor.GradFor16(x, true)
	dx := tensor.Blocked16(gx)
	var into *tensor.Tensor
	if !tensor.IsBlocked16(gx) { // shared: computed apart, added in NCHW
		into, first = gx, true
		gx = tensor.EmptyBlocked16(x.Shape()...)
		dx = tensor.Blocked16(gx)
	}
	nz := simd.NegZero[float32]()
	b.each(func(at, p0 int) {
		var k, off, s, zero [simd.Lanes]float32
		for l := range k {
			k[l], off[l], s[l] = f(p0 + l)
			zero[l] = nz
		}
		d := dx[at : at+b.run]
		if first {
			simd.LaneAffine(d, xs[at:at+b.run], &k, &off, false)
		} else {
			simd.LaneAffineAdd(d, xs[at:at+b.run], d, &k, &off, false)
		}
		simd.LaneAffineAdd(d, rs[at:at+b.run], d, &s, &zero, false)
	})
	if into != nil {
		sum := into.F32()
		add := gx.F32()
		parallel.For(len(sum), 1, func(lo, hi int) { simd.AddTo(sum[lo:hi], add[lo:hi]) })
	}
}
