package tensor

import (
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/onednn"
)

// oneDNN's convolutions compute on feature maps whose channels lie in
// blocks of 16, a position's 16 values of a block side by side (nChw16c,
// onednn.Blocked16). Converting every convolution's input and output to
// and from NCHW cost about a fifth of a CIFAR training step, so a
// convolution may leave its output in the blocked layout, and the
// operations that know it (convolutions, BatchNorm, the residual and gated
// additions, the pools, SRM's passes) read and write it as it is. Every
// other reader sees NCHW: the accessors (F32, Raw, At, View, ...) convert a
// blocked tensor in place the first time, so code that knows nothing of
// layouts stays correct. The array a conversion replaces stays valid in its
// layout for the backward functions that may hold it, and goes back to the
// recycler when BackwardReleasing releases the tensor (stale).
// A tensor is converted by the goroutine that reads it, which is safe
// because, as for its values, no goroutine changes a tensor while others
// read it.

// blocked16 is the data of a float32 (N, C, H, W) tensor in Blocked16.
type blocked16 []float32

// CanBlock16 reports whether t's values may lie in the blocked layout: a
// float32 (N, C, H, W) tensor in host memory with C a multiple of 16.
func CanBlock16(t *Tensor) bool {
	switch t.data.(type) {
	case []float32, blocked16:
		return len(t.shape) == 4 && t.shape[1]%16 == 0 && t.Len() > 0
	}
	return false
}

// EmptyBlocked16 is Empty(Float32, shape...) in the blocked layout; shape
// must be (N, C, H, W) with C a multiple of 16.
func EmptyBlocked16(shape ...int) *Tensor {
	t := Empty(Float32, shape...)
	if !CanBlock16(t) {
		Panicf("EmptyBlocked16: shape %v is not (N, 16k, H, W)", shape)
	}
	t.data = blocked16(t.data.([]float32))
	return t
}

// EmptyLayoutLike is EmptyLike(t) in t's layout.
func EmptyLayoutLike(t *Tensor) *Tensor {
	if IsBlocked16(t) {
		return EmptyBlocked16(t.shape...)
	}
	return EmptyLike(t)
}

// IsBlocked16 reports whether t's values lie in the blocked layout now.
func IsBlocked16(t *Tensor) bool {
	_, ok := t.data.(blocked16)
	return ok
}

// Blocked16 returns t's values in the blocked layout (shared, not copied),
// converting t in place if they are in NCHW and t's array is its own (no
// View shares it); otherwise a blocked copy, which writes do not reach.
// t must satisfy CanBlock16.
func Blocked16(t *Tensor) []float32 {
	if b, ok := t.data.(blocked16); ok {
		return b
	}
	if !CanBlock16(t) {
		t.mustBeHost("Blocked16")
		Panicf("Blocked16 of a %v %v tensor", t.DType(), t.shape)
	}
	src := t.data.([]float32)
	if !t.own { // a copy, which no one returns to the recycler
		dst := make([]float32, len(src))
		reorder16(dst, src, t.shape, true)
		return dst
	}
	dst := Empty(Float32, t.shape...).data.([]float32)
	reorder16(dst, src, t.shape, true)
	t.data, t.stale = blocked16(dst), append(t.stale, src)
	return dst
}

// Runs describes an (N, C, H, W) map in the blocked layout as its N·C/16
// runs of 16·H·W values: run r is batch item r/(C/16)'s block of channels
// r%(C/16), position after position, the block's 16 channels side by side.
// Its lanes are planes (n·C + c) 16r to 16r+15, so per-plane arrays are
// read 16 at a time with Lanes.
type Runs struct{ N, C, HW int }

// RunsOf describes t's map, (N, 16k, H, W).
func RunsOf(t *Tensor) Runs { return runsOfShape(t.shape) }

func runsOfShape(shape []int) Runs { return Runs{shape[0], shape[1], shape[2] * shape[3]} }

// Count is the number of runs, N·C/16.
func (rs Runs) Count() int { return rs.N * rs.Blocks() }

// Blocks is the number of runs of a batch item, C/16; run r's channels are
// block r % Blocks().
func (rs Runs) Blocks() int { return rs.C / simd.Lanes }

// Len is the values of a run, 16·H·W.
func (rs Runs) Len() int { return rs.HW * simd.Lanes }

// Run is run r of d, a map's values in the blocked layout.
func (rs Runs) Run(d []float32, r int) []float32 { return d[r*rs.Len():][:rs.Len()] }

// Lanes is the values of run r's 16 planes in v, a per-plane array.
func (rs Runs) Lanes(v []float32, r int) *[simd.Lanes]float32 {
	return (*[simd.Lanes]float32)(v[r*simd.Lanes:])
}

// Each calls f on every run, in parallel; cost is one run's work in
// values touched (parallel.For's).
func (rs Runs) Each(cost int, f func(r int)) {
	parallel.For(rs.Count(), cost, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			f(r)
		}
	})
}

// plain converts a blocked t to NCHW in place; the accessors call it.
func (t *Tensor) plain() {
	b, ok := t.data.(blocked16)
	if !ok {
		return
	}
	dst := Empty(Float32, t.shape...).data.([]float32)
	reorder16(dst, b, t.shape, false)
	t.data, t.stale = dst, append(t.stale, b) // blocked tensors are their arrays' owners
}

// reorder16 converts an (N, C, H, W) map between NCHW and the blocked
// layout through oneDNN, which the blocked layout comes from, or by
// loops where oneDNN is absent (tests).
func reorder16(dst, src []float32, shape []int, toBlocked bool) {
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	if onednn.Reorder16(dst, src, n, c, h, w, toBlocked) != nil {
		reorder16Loops(dst, src, shape, toBlocked)
	}
}

func reorder16Loops(dst, src []float32, shape []int, toBlocked bool) {
	rs := runsOfShape(shape)
	blocked, planar := dst, src
	if !toBlocked {
		blocked, planar = src, dst
	}
	for r := range rs.Count() {
		run := rs.Run(blocked, r)
		for l := range simd.Lanes {
			plane := planar[(r*simd.Lanes+l)*rs.HW:][:rs.HW] // run r's lane l is plane 16r + l
			for p := range plane {
				if toBlocked {
					run[p*simd.Lanes+l] = plane[p]
				} else {
					plane[p] = run[p*simd.Lanes+l]
				}
			}
		}
	}
}

// array is t's float32 array in whatever layout, for the recycler.
func (t *Tensor) array() ([]float32, bool) {
	switch d := t.data.(type) {
	case []float32:
		return d, true
	case blocked16:
		return d, true
	}
	return nil, false
}

// GradBlocked16 returns t's gradient in the blocked layout for a backward
// function to store its share into (first: the gradient is new, with
// arbitrary contents) or add it to, and a function to call once it has:
// where t's gradient is in NCHW in an array a View shares, the share goes
// to a temporary that done adds in. t must satisfy CanBlock16.
func GradBlocked16(t *Tensor) (g []float32, first bool, done func()) {
	gt, first := GradFor16(t, true)
	if first || IsBlocked16(gt) || gt.own {
		return Blocked16(gt), first, func() {}
	}
	tmp := EmptyBlocked16(t.shape...)
	return Blocked16(tmp), true, func() { addArray(gt.F32(), tmp.F32()) }
}

// PassGrad16 adds g, a gradient in the blocked layout, into t's gradient.
// Where t has none yet and give is set, t takes g itself, and PassGrad16
// reports that it did: the caller must then not hand g to another tensor.
func PassGrad16(t, g *Tensor, give bool) (given bool) {
	if t.Grad == nil && give {
		t.Grad = g
		return true
	}
	dst, first, done := GradBlocked16(t)
	src := Blocked16(g)
	if first {
		copy(dst, src)
	} else {
		addArray(dst, src)
	}
	done()
	return false
}

// addArray adds src into dst, a feature map's worth: vector code, split
// over the CPUs.
func addArray(dst, src []float32) {
	parallel.For(len(dst), 1, func(lo, hi int) { simd.AddTo(dst[lo:hi], src[lo:hi]) })
}
