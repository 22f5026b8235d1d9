package op

import (
	"sync"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/tensor"
)

// Conv2d is the 2-D cross-correlation of PyTorch's nn.Conv2d.
// x is (N, Cin, H, W); w is (Cout, Cin/groups, KH, KW); b is (Cout) or nil.
// stride and pad apply to both spatial axes. The result is
// (N, Cout, (H+2·pad−KH)/stride+1, (W+2·pad−KW)/stride+1).
//
// Batch items are spread over the cores; the weight and bias gradients are
// summed per core and then in a fixed order, so equal inputs give equal bits
// for a given GOMAXPROCS.
func Conv2d(x, w, b *tensor.Tensor, stride, pad, groups int) *tensor.Tensor {
	g := newConvGeom(x, w, b, stride, pad, groups)
	if d := DeviceOf("Conv2d", x, w, b); d != nil {
		return conv2dDevice(d, g, x, w, b, pad)
	}
	if out, ok := conv2dOneDNN(&g, x, w, b, pad); ok {
		return out
	}
	if x.DType() == tensor.Float64 {
		return conv2d[float64](g, x, w, b)
	}
	return conv2d[float32](g, x, w, b)
}

// convGeom is the geometry of one Conv2d call, checked once and shared by
// the forward and backward passes.
type convGeom struct {
	n, cin, h, w, hw     int
	cout, kh, kw, kk     int
	oh, ow, ohw          int
	stride, groups       int
	cg, coutg, k         int // input and output channels per group; k = cg·kk, the im2col rows
	pointwise, depthwise bool
	runs                 []convRun
	// back is the convolution that maps the output gradient to the input
	// gradient when that is a plain stride-1 convolution (of flipped,
	// transposed weights, padded by kernel−1−pad), nil otherwise. Its im2col
	// is a gather, which is cheaper than col2im's scattered additions.
	back *convGeom
}

// convRun is a stretch of output positions that one kernel tap reads from
// inside the input: out0+j of an output plane reads in0+j·stride of an input
// plane, for j < n. Padding lies outside every run except for gaps: when a
// stride-1 convolution keeps the row width, the input and output rows have
// one pitch, so a tap's rows join into a single run, and the gaps-many
// stretches of ow−width positions after each row's width valid ones read
// across a row boundary instead of padding. Whole-plane runs turn im2col and
// col2im into a few long copies instead of one short one per output row.
type convRun struct{ tap, out0, in0, n, width, gaps int }

func newConvGeom(x, w, b *tensor.Tensor, stride, pad, groups int) convGeom {
	kern.SameType("Conv2d", x, w, b)
	if x.Rank() != 4 || w.Rank() != 4 {
		tensor.Panicf("Conv2d: input %v and weight %v must both be 4-D", x.Shape(), w.Shape())
	}
	if stride < 1 || pad < 0 || groups < 1 {
		tensor.Panicf("Conv2d: stride %d, pad %d, groups %d", stride, pad, groups)
	}
	cin, h, wd, cout, kh, kw := x.Dim(1), x.Dim(2), x.Dim(3), w.Dim(0), w.Dim(2), w.Dim(3)
	if cin%groups != 0 || cout%groups != 0 || w.Dim(1)*groups != cin {
		tensor.Panicf("Conv2d: weight %v with %d groups does not fit input %v", w.Shape(), groups, x.Shape())
	}
	if b != nil && (b.Rank() != 1 || b.Dim(0) != cout) {
		tensor.Panicf("Conv2d: bias %v for %d output channels", b.Shape(), cout)
	}
	if h+2*pad < kh || wd+2*pad < kw || kh < 1 || kw < 1 {
		tensor.Panicf("Conv2d: kernel %dx%d does not fit input %v padded by %d", kh, kw, x.Shape(), pad)
	}
	g := makeConvGeom(x.Dim(0), cin, h, wd, cout, kh, kw, stride, pad, pad, groups)
	if stride == 1 && pad < kh && pad < kw && !g.pointwise && !g.depthwise {
		back := makeConvGeom(g.n, cout, g.oh, g.ow, cin, kh, kw, 1, kh-1-pad, kw-1-pad, groups)
		g.back = &back
	}
	return g
}

// makeConvGeom lays out a convolution whose shapes have been checked.
func makeConvGeom(n, cin, h, w, cout, kh, kw, stride, padH, padW, groups int) convGeom {
	g := convGeom{
		n: n, cin: cin, h: h, w: w, hw: h * w,
		cout: cout, kh: kh, kw: kw, kk: kh * kw,
		oh: (h+2*padH-kh)/stride + 1, ow: (w+2*padW-kw)/stride + 1,
		stride: stride, groups: groups,
		cg: cin / groups, coutg: cout / groups,
	}
	g.ohw, g.k = g.oh*g.ow, g.cg*g.kk
	// A 1x1 stride-1 unpadded kernel reads the input planes as they are, so
	// they serve as the im2col matrix.
	g.pointwise = g.kk == 1 && stride == 1 && padH == 0 && padW == 0
	// With one input channel per group, each group's product would be a
	// tiny gemm of inner size kk; a direct loop does the same arithmetic
	// without the im2col copy or per-call overhead.
	g.depthwise = g.cg == 1 && groups > 1
	// The direct depthwise loops accumulate into the output, where a gap's
	// stray terms would land, so only the im2col path joins rows.
	join := stride == 1 && g.ow == g.w && !g.depthwise
	for ky := range kh {
		oy0, oy1 := convSpan(ky, padH, stride, h, g.oh)
		for kx := range kw {
			ox0, ox1 := convSpan(kx, padW, stride, w, g.ow)
			if oy0 == oy1 || ox0 == ox1 {
				continue
			}
			r := convRun{tap: ky*kw + kx, width: ox1 - ox0, n: ox1 - ox0}
			for oy := oy0; oy < oy1; oy++ {
				r.out0, r.in0 = oy*g.ow+ox0, (oy*stride-padH+ky)*w+ox0*stride-padW+kx
				if join {
					r.gaps = oy1 - oy0 - 1
					r.n += r.gaps * g.ow
					g.runs = append(g.runs, r)
					break
				}
				g.runs = append(g.runs, r)
			}
		}
	}
	return g
}

// convSpan returns the output positions [lo, hi) whose kernel tap k reads
// inside an input axis of length in: 0 ≤ o·stride − pad + k < in.
func convSpan(k, pad, stride, in, out int) (lo, hi int) {
	if d := pad - k; d > 0 {
		lo = min((d+stride-1)/stride, out)
	}
	if d := in - 1 + pad - k; d >= 0 {
		hi = min(d/stride+1, out)
	}
	return lo, max(lo, hi)
}

// cost estimates one batch item's multiply-adds for parallel.For.
func (g *convGeom) cost() int { return g.cout*g.ohw*g.k + g.cin*g.hw }

func conv2d[T kern.Float](g convGeom, x, w, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.New(x.DType(), g.n, g.cout, g.oh, g.ow)
	xd, wd, od := kern.Vals[T](x), kern.Vals[T](w), kern.Vals[T](out)
	var bd []T
	if b != nil {
		bd = kern.Vals[T](b)
	}
	parallel.For(g.n, g.cost(), func(lo, hi int) {
		var col []T
		if !g.pointwise && !g.depthwise {
			buf := getScratch[T](g.k * g.ohw)
			defer putScratch(buf)
			col = *buf
			clear(col) // the padding entries stay zero from here on
		}
		for i := lo; i < hi; i++ {
			convForwardItem(&g, xd[i*g.cin*g.hw:][:g.cin*g.hw], wd, bd, col, od[i*g.cout*g.ohw:][:g.cout*g.ohw])
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) { conv2dBackward(&g, x, w, b, kern.Vals[T](grad)) }, x, w, b)
	return out
}

// convForwardItem computes one batch item's output y (Cout·OH·OW) from its
// input x (Cin·H·W) and the bias b (nil for none), using col as im2col
// space.
func convForwardItem[T kern.Float](g *convGeom, x, w, b, col, y []T) {
	if g.depthwise {
		for oc := range g.cout {
			dst, src, wk := y[oc*g.ohw:][:g.ohw], x[oc/g.coutg*g.hw:][:g.hw], w[oc*g.kk:][:g.kk]
			for _, r := range g.runs {
				axpyRun(dst[r.out0:][:r.n], wk[r.tap], src[r.in0:], g.stride)
			}
		}
	} else {
		for gi := range g.groups {
			xg := x[gi*g.cg*g.hw:][:g.cg*g.hw]
			src, ld := xg, g.hw
			if !g.pointwise {
				convCols(g, xg, col, true)
				src, ld = col, g.ohw
			}
			gemm(false, false, g.coutg, g.ohw, g.k, w[gi*g.coutg*g.k:], g.k, src, ld, 0, y[gi*g.coutg*g.ohw:], g.ohw)
		}
	}
	for oc, v := range b {
		row := y[oc*g.ohw:][:g.ohw]
		for j := range row {
			row[j] += v
		}
	}
}

// convCols moves data between the cg channel planes of one group, x, and
// their im2col matrix col (cg·kk rows of OH·OW): gather copies the input
// under each tap into col; otherwise col is added back onto x (col2im, for
// the input gradient), and its gap entries are zeroed on the way. Entries of
// col that read padding are neither written nor read.
func convCols[T kern.Float](g *convGeom, x, col []T, gather bool) {
	for c := range g.cg {
		plane, rows := x[c*g.hw:][:g.hw], col[c*g.kk*g.ohw:][:g.kk*g.ohw]
		for i := range g.runs {
			r := &g.runs[i]
			seg, src := rows[r.tap*g.ohw+r.out0:][:r.n], plane[r.in0:]
			if gather {
				gatherRun(seg, src, g.stride)
				clearGaps(seg, r, g.ow)
			} else {
				clearGaps(seg, r, g.ow)
				scatterRun(src, seg, g.stride)
			}
		}
	}
}

// clearGaps zeroes the entries of a run's segment that lie in its gaps.
// Every 3x3 (or 3-wide) stride-1 convolution has gaps of one entry, the
// column a tap reads across a row boundary, thousands per im2col, so that
// case is a single strided loop of stores; a memclr call or an inner loop
// per gap cost several times the store.
func clearGaps[T kern.Float](seg []T, r *convRun, ow int) {
	w, end := ow-r.width, r.width+r.gaps*ow
	if w == 1 {
		for i := r.width; i < end; i += ow {
			seg[i] = 0
		}
		return
	}
	for i := r.width; i < end; i += ow {
		for j := i; j < i+w; j++ {
			seg[j] = 0
		}
	}
}

func conv2dBackward[T kern.Float](g *convGeom, x, w, b *tensor.Tensor, dy []T) {
	needX, needW, needB := x.NeedsGrad(), w.NeedsGrad(), b != nil && b.NeedsGrad()
	var dx []T
	if needX {
		dx = kern.Vals[T](tensor.GradOf(x))
	}
	xd, wd := kern.Vals[T](x), kern.Vals[T](w)
	var wt []T
	if needX && g.back != nil {
		wt = make([]T, len(wd))
		flipKernels(g, wd, wt)
	}
	nw, nb := 0, 0
	if needW {
		nw = len(wd)
	}
	if needB {
		nb = g.cout
	}
	// Each worker sums its items' weight and bias gradients into its own
	// buffer, filed under the first item of its range; the weight
	// gradient in addWeightGrad's layout.
	partial := make([]*[]T, g.n)
	parallel.For(g.n, 2*g.cost(), func(lo, hi int) {
		var col, dcol []T
		if !g.pointwise && !g.depthwise {
			if needW {
				buf := getScratch[T](g.k * g.ohw)
				defer putScratch(buf)
				col = *buf
				clear(col)
			}
			if needX {
				cols := g
				if g.back != nil {
					cols = g.back
				}
				buf := getScratch[T](cols.k * cols.ohw)
				defer putScratch(buf)
				dcol = *buf
				clear(dcol)
			}
		}
		var dw, db []T
		if nw+nb > 0 {
			buf := getScratch[T](nw + nb)
			partial[lo] = buf
			clear(*buf)
			dw, db = (*buf)[:nw], (*buf)[nw:]
		}
		for i := lo; i < hi; i++ {
			var dxi []T
			if needX {
				dxi = dx[i*g.cin*g.hw:][:g.cin*g.hw]
			}
			convBackwardItem(g, xd[i*g.cin*g.hw:][:g.cin*g.hw], wd, wt, dy[i*g.cout*g.ohw:][:g.cout*g.ohw], dxi, dw, db, col, dcol)
		}
	})
	var gw, gb []T
	if needW {
		gw = kern.Vals[T](tensor.GradOf(w))
	}
	if needB {
		gb = kern.Vals[T](tensor.GradOf(b))
	}
	for _, buf := range partial {
		if buf == nil {
			continue
		}
		if needW {
			addWeightGrad(g, gw, (*buf)[:nw])
		}
		for i, v := range (*buf)[nw:] {
			gb[i] += v
		}
		putScratch(buf)
	}
}

// addWeightGrad adds dw, one worker's weight gradient, to gw. The direct
// depthwise loops sum dw in gw's layout; the gemm paths sum its transpose,
// (Cin/groups·KH·KW, Cout/groups) per group, as col·dyᵀ: with the long
// side as rows, OpenBLAS computes that product half again as fast as
// dy·colᵀ at ResNet widths, and the transpose costs one pass over a few
// thousand weights per worker.
func addWeightGrad[T kern.Float](g *convGeom, gw, dw []T) {
	if g.depthwise {
		for i, v := range dw {
			gw[i] += v
		}
		return
	}
	for gi := range g.groups {
		dwg := dw[gi*g.k*g.coutg:][:g.k*g.coutg]
		for co := range g.coutg {
			row := gw[(gi*g.coutg+co)*g.k:][:g.k]
			for i := range row {
				row[i] += dwg[i*g.coutg+co]
			}
		}
	}
}

// flipKernels writes into wt the weight of g.back: w's (Cout, Cin/groups)
// kernels regrouped as (Cin, Cout/groups) and each turned by 180°.
func flipKernels[T kern.Float](g *convGeom, w, wt []T) {
	for oc := range g.cout {
		gi, co := oc/g.coutg, oc%g.coutg
		for ci := range g.cg {
			src, dst := w[(oc*g.cg+ci)*g.kk:][:g.kk], wt[((gi*g.cg+ci)*g.coutg+co)*g.kk:][:g.kk]
			for t, v := range src {
				dst[g.kk-1-t] = v
			}
		}
	}
}

// convBackwardItem adds one batch item's share of the gradients: dx (nil
// when not wanted) gets the input gradient, dw and db (empty when not
// wanted) the weight and bias gradients, dw in addWeightGrad's layout, from
// the output gradient dy. wt is g.back's weight, and dcol im2col space for
// the input gradient.
func convBackwardItem[T kern.Float](g *convGeom, x, w, wt, dy, dx, dw, db, col, dcol []T) {
	for oc := range db {
		s := T(0)
		for _, v := range dy[oc*g.ohw:][:g.ohw] {
			s += v
		}
		db[oc] += s
	}
	if g.depthwise {
		for oc := range g.cout {
			dyc, off, wk := dy[oc*g.ohw:][:g.ohw], oc/g.coutg*g.hw, w[oc*g.kk:][:g.kk]
			for _, r := range g.runs {
				seg := dyc[r.out0:][:r.n]
				if len(dw) > 0 {
					dw[oc*g.kk+r.tap] += dotRun(seg, x[off+r.in0:], g.stride)
				}
				if dx != nil {
					scatterAxpyRun(dx[off+r.in0:], wk[r.tap], seg, g.stride)
				}
			}
		}
		return
	}
	for gi := range g.groups {
		xg, dyg, wg := x[gi*g.cg*g.hw:][:g.cg*g.hw], dy[gi*g.coutg*g.ohw:], w[gi*g.coutg*g.k:]
		if len(dw) > 0 {
			src, ld := xg, g.hw
			if !g.pointwise {
				convCols(g, xg, col, true)
				src, ld = col, g.ohw
			}
			gemm(false, true, g.k, g.coutg, g.ohw, src, ld, dyg, g.ohw, 1, dw[gi*g.k*g.coutg:], g.coutg)
		}
		if dx != nil {
			dxg := dx[gi*g.cg*g.hw:][:g.cg*g.hw]
			switch {
			case g.pointwise:
				gemm(true, false, g.cg, g.hw, g.coutg, wg, g.k, dyg, g.ohw, 1, dxg, g.hw)
			case g.back != nil:
				b := g.back
				convCols(b, dyg[:b.cg*b.hw], dcol, true)
				gemm(false, false, g.cg, g.hw, b.k, wt[gi*g.cg*b.k:], b.k, dcol, b.ohw, 1, dxg, g.hw)
			default:
				gemm(true, false, g.k, g.ohw, g.coutg, wg, g.k, dyg, g.ohw, 0, dcol, g.ohw)
				convCols(g, dxg, dcol, false)
			}
		}
	}
}

// gatherRun sets dst[j] = src[j·stride].
func gatherRun[T kern.Float](dst, src []T, stride int) {
	if stride == 1 {
		copy(dst, src[:len(dst)])
		return
	}
	for j := range dst {
		dst[j] = src[j*stride]
	}
}

// scatterRun adds src[j] to dst[j·stride].
func scatterRun[T kern.Float](dst, src []T, stride int) {
	scatterAxpyRun(dst, 1, src, stride)
}

// scatterAxpyRun adds a·src[j] to dst[j·stride].
func scatterAxpyRun[T kern.Float](dst []T, a T, src []T, stride int) {
	if stride == 1 {
		dst = dst[:len(src)]
		for j, v := range src {
			dst[j] += a * v
		}
		return
	}
	for j, v := range src {
		dst[j*stride] += a * v
	}
}

// axpyRun adds a·src[j·stride] to dst[j].
func axpyRun[T kern.Float](dst []T, a T, src []T, stride int) {
	if stride == 1 {
		src = src[:len(dst)]
		for j, v := range src {
			dst[j] += a * v
		}
		return
	}
	for j := range dst {
		dst[j] += a * src[j*stride]
	}
}

// dotRun returns Σ a[j]·b[j·stride].
func dotRun[T kern.Float](a, b []T, stride int) T {
	s := T(0)
	if stride == 1 {
		b = b[:len(a)]
		for j, v := range a {
			s += v * b[j]
		}
		return s
	}
	for j, v := range a {
		s += v * b[j*stride]
	}
	return s
}

// Scratch buffers outlive a call, so that a training step does not ask the
// allocator (and the collector) for megabytes of im2col space per layer.
var scratch32, scratch64 sync.Pool

func scratchPool[T kern.Float]() *sync.Pool {
	if _, ok := any(T(0)).(float32); ok {
		return &scratch32
	}
	return &scratch64
}

// getScratch returns a buffer of n elements with arbitrary contents.
func getScratch[T kern.Float](n int) *[]T {
	if buf, ok := scratchPool[T]().Get().(*[]T); ok && cap(*buf) >= n {
		*buf = (*buf)[:n]
		return buf
	}
	buf := make([]T, n)
	return &buf
}

func putScratch[T kern.Float](buf *[]T) { scratchPool[T]().Put(buf) }
