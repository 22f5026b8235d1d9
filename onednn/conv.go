package onednn

import (
	"fmt"
	"unsafe"
)

// ConvGeom is the geometry of a 2-D convolution, PyTorch's nn.Conv2d: input
// (N, C, H, W), weight (OC, C/Groups, KH, KW), optional bias (OC), the same
// stride and padding on both axes, output (N, OC, OH, OW), clamped at 0 by
// ConvForward when ReLU is set (ConvBackward takes the gradient past the
// ReLU).
type ConvGeom struct {
	N, C, H, W  int
	OC, KH, KW  int
	Stride, Pad int
	Groups      int
	Bias        bool
	ReLU        bool
}

// Out returns the output's spatial size.
func (g ConvGeom) Out() (oh, ow int) {
	return (g.H+2*g.Pad-g.KH)/g.Stride + 1, (g.W+2*g.Pad-g.KW)/g.Stride + 1
}

func (g ConvGeom) check() error {
	oh, ow := g.Out()
	if g.N < 1 || g.C < 1 || g.OC < 1 || g.KH < 1 || g.KW < 1 || g.Stride < 1 || g.Pad < 0 ||
		g.Groups < 1 || g.C%g.Groups != 0 || g.OC%g.Groups != 0 || oh < 1 || ow < 1 ||
		g.H+2*g.Pad < g.KH || g.W+2*g.Pad < g.KW {
		return fmt.Errorf("onednn: convolution geometry %+v", g)
	}
	return nil
}

// sizes returns the element counts of input, weight, bias (0 without one)
// and output.
func (g ConvGeom) sizes() (x, w, b, y int) {
	oh, ow := g.Out()
	if g.Bias {
		b = g.OC
	}
	return g.N * g.C * g.H * g.W, g.OC * g.C / g.Groups * g.KH * g.KW, b, g.N * g.OC * oh * ow
}

// convDescs are the descriptors of a convolution's operands: plain ones
// (NCHW, OIHW or GOIHW) where srmlab keeps them, and ones that leave the
// layout to the primitive. The bias, when there is one, is always plain.
type convDescs struct {
	x, w, y          md
	anyX, anyW, anyY md
	b                *md
	x16, y16         *md // Blocked16, where the channels allow it
}

func (l *library) convDescs(g ConvGeom) (d convDescs, err error) {
	oh, ow := g.Out()
	wd := []int{g.OC, g.C, g.KH, g.KW}
	if g.Groups > 1 {
		wd = []int{g.Groups, g.OC / g.Groups, g.C / g.Groups, g.KH, g.KW}
	}
	for _, e := range []struct {
		plain, any *md
		dims       []int
	}{
		{&d.x, &d.anyX, []int{g.N, g.C, g.H, g.W}},
		{&d.w, &d.anyW, wd},
		{&d.y, &d.anyY, []int{g.N, g.OC, oh, ow}},
	} {
		if *e.plain, err = l.plainMD(false, e.dims...); err != nil {
			return
		}
		if *e.any, err = l.plainMD(true, e.dims...); err != nil {
			return
		}
	}
	if g.Bias {
		var b md
		if b, err = l.plainMD(false, g.OC); err != nil {
			return
		}
		d.b = &b
	}
	if d.x16, err = l.blocked16(g.N, g.C, g.H, g.W); err != nil {
		return
	}
	d.y16, err = l.blocked16(g.N, g.OC, oh, ow)
	return d, err
}

// blocked16 is blockedMD for a feature map whose channels are a multiple
// of 16, else nil.
func (l *library) blocked16(n, c, h, w int) (*md, error) {
	if c%16 != 0 {
		return nil, nil
	}
	m, err := l.blockedMD(n, c, h, w)
	return &m, err
}

// convPlan holds one geometry's primitives and the layouts they chose.
// The backward primitives are made on the first backward pass.
type convPlan struct {
	g ConvGeom
	convDescs
	fwdPD              uintptr // kept: the backward primitives are made from it
	fwd                *primitive
	src, wei, dst      staged
	data, weights      *primitive
	dSrc, dWei, dDst   staged // backward data's operands
	wSrc, wDWei, wDDst staged // backward weights' operands
	// oneDDst says both backward primitives take the output gradient in
	// one layout, so one reorder serves them.
	oneDDst bool
}

// strides returns the stride and the left and right padding, the right
// one such that the last window ends where the output size says.
func (g ConvGeom) strides() (s, padL, padR dims) {
	oh, ow := g.Out()
	s[0], s[1] = int64(g.Stride), int64(g.Stride)
	padL[0], padL[1] = int64(g.Pad), int64(g.Pad)
	padR[0] = int64((oh-1)*g.Stride + g.KH - g.H - g.Pad)
	padR[1] = int64((ow-1)*g.Stride + g.KW - g.W - g.Pad)
	return
}

// opDesc is space for an operation descriptor, which the *_desc_init calls
// fill and primitive descriptors are created from.
func opDesc() unsafe.Pointer { return unsafe.Pointer(&make([]byte, opDescBytes)[0]) }

func (l *library) plan(g ConvGeom) (*convPlan, error) {
	if p, ok := l.convs.get(g); ok {
		return p, nil
	}
	ds, err := l.convDescs(g)
	if err != nil {
		return nil, err
	}
	p := &convPlan{g: g, convDescs: ds}
	s, padL, padR := g.strides()
	d := opDesc()
	if err := l.check("convolution forward", l.convForwardInit(d, propForwardTraining, algConvDirect, &p.anyX, &p.anyW, p.b, &p.anyY, &s, &padL, &padR)); err != nil {
		return nil, err
	}
	var attr uintptr
	if g.ReLU {
		if err := l.reluAttr(&attr); err != nil {
			return nil, err
		}
	}
	args := []int32{argSrc, argWeights, argDst}
	if g.Bias {
		args = []int32{argSrc, argWeights, argBias, argDst}
	}
	p.fwd, err = l.build("convolution forward", func(pd *uintptr) int32 { return l.pdCreate(pd, d, attr, l.engine, 0) }, &p.fwdPD, args...)
	l.dropAttr(attr)
	if err != nil {
		return nil, err
	}
	p.src, p.wei, p.dst = l.stage(p.x, p.x16, p.fwd, argSrc), l.stage(p.w, nil, p.fwd, argWeights), l.stage(p.y, p.y16, p.fwd, argDst)
	l.convs.put(g, p)
	return p, nil
}

// maxConvPlans caps the convolution geometries whose primitives are kept
// (a ResNet-50 has about 50; see cache).
var maxConvPlans = 256

// dropPlan destroys a plan's primitives and the forward descriptor kept
// for the backward ones.
func (l *library) dropPlan(p *convPlan) {
	for _, q := range []*primitive{p.fwd, p.data, p.weights} {
		l.free(q)
	}
	if p.fwdPD != 0 {
		l.pdDestroy(p.fwdPD)
	}
}

// backward makes p's backward primitives.
func (l *library) backward(p *convPlan) error {
	if p.data != nil {
		return nil
	}
	s, padL, padR := p.g.strides()
	fromFwd := func(d unsafe.Pointer) func(pd *uintptr) int32 {
		return func(pd *uintptr) int32 { return l.pdCreate(pd, d, 0, l.engine, p.fwdPD) }
	}
	d := opDesc()
	if err := l.check("convolution backward data", l.convBackDataInit(d, algConvDirect, &p.anyX, &p.anyW, &p.anyY, &s, &padL, &padR)); err != nil {
		return err
	}
	data, err := l.build("convolution backward data", fromFwd(d), nil, argDiffDst, argWeights, argDiffSrc)
	if err != nil {
		return err
	}
	d = opDesc()
	if err := l.check("convolution backward weights", l.convBackWeighInit(d, algConvDirect, &p.anyX, &p.anyW, p.b, &p.anyY, &s, &padL, &padR)); err != nil {
		return err
	}
	args := []int32{argSrc, argDiffDst, argDiffWeight}
	if p.g.Bias {
		args = append(args, argDiffBias)
	}
	weights, err := l.build("convolution backward weights", fromFwd(d), nil, args...)
	if err != nil {
		return err
	}
	p.data, p.weights = data, weights
	p.dDst, p.dWei, p.dSrc = l.stage(p.y, p.y16, data, argDiffDst), l.stage(p.w, nil, data, argWeights), l.stage(p.x, p.x16, data, argDiffSrc)
	p.wSrc, p.wDDst, p.wDWei = l.stage(p.x, p.x16, weights, argSrc), l.stage(p.y, p.y16, weights, argDiffDst), l.stage(p.w, nil, weights, argDiffWeight)
	p.oneDDst = l.mdEqual(&p.dDst.chosen, &p.wDDst.chosen) == 1
	return nil
}

// operand is a slice handed to ConvForward or ConvBackward and the length
// the geometry wants of it; a nil slice is not checked.
type operand struct {
	s    []float32
	want int
}

// checkLens reports a slice whose length does not fit g.
func checkLens(g ConvGeom, what string, ops ...operand) error {
	if err := g.check(); err != nil {
		return err
	}
	for i, o := range ops {
		if o.s != nil && len(o.s) != o.want {
			return fmt.Errorf("onednn: %s: operand %d has %d elements, geometry %+v wants %d", what, i, len(o.s), g, o.want)
		}
	}
	return nil
}

// ConvLayouts are the layouts of the feature maps handed to ConvForward
// (the input X and the output Y) and ConvBackward (X, and the gradients DX
// and DY). The zero value is NCHW for all.
type ConvLayouts struct{ X, Y, DX, DY Layout }

// ConvOutLayout is the layout in which the convolution of geometry g
// writes its output without a reorder.
func ConvOutLayout(g ConvGeom) (Layout, error) {
	return nativeLayout(g, false)
}

// ConvGradLayout is the layout in which g's backward pass writes the
// input's gradient without a reorder.
func ConvGradLayout(g ConvGeom) (Layout, error) {
	return nativeLayout(g, true)
}

func nativeLayout(g ConvGeom, grad bool) (Layout, error) {
	l, err := load()
	if err != nil {
		return NCHW, err
	}
	if err := g.check(); err != nil {
		return NCHW, err
	}
	var lay Layout
	return lay, l.do(func() error {
		p, err := l.plan(g)
		if err != nil {
			return err
		}
		if !grad {
			lay = p.dst.native()
			return nil
		}
		if err := l.backward(p); err != nil {
			return err
		}
		lay = p.dSrc.native()
		return nil
	})
}

// ConvForward sets y to the convolution of x with w plus the bias b (nil
// when g has none), x and y in the layouts io gives.
func ConvForward(g ConvGeom, x, w, b, y []float32, io ConvLayouts) error {
	l, err := load()
	if err != nil {
		return err
	}
	nx, nw, nb, ny := g.sizes()
	if err := checkLens(g, "forward", operand{x, nx}, operand{w, nw}, operand{b, nb}, operand{y, ny}); err != nil {
		return err
	}
	if g.Bias != (b != nil) || x == nil || w == nil || y == nil {
		return fmt.Errorf("onednn: forward: missing operand for %+v", g)
	}
	return l.do(func() error {
		p, err := l.plan(g)
		if err != nil {
			return err
		}
		xs, err := l.in(&p.src, x, io.X)
		if err != nil {
			return err
		}
		ws, err := l.in(&p.wei, w, NCHW)
		if err != nil {
			return err
		}
		ys := l.out(&p.dst, false, y, io.Y)
		data := []unsafe.Pointer{xs, ws, ys}
		if g.Bias {
			data = []unsafe.Pointer{xs, ws, unsafe.Pointer(unsafe.SliceData(b)), ys}
		}
		if err := l.run(p.fwd, data...); err != nil {
			return err
		}
		return l.finish(&p.dst, false, ys, y, io.Y)
	})
}

// ConvGrads are the gradients ConvBackward computes; a nil slice is not
// wanted. X and W are added to unless SetX or SetW says that they hold
// nothing yet, which saves reading them; B is always added to.
type ConvGrads struct {
	X, W, B    []float32
	SetX, SetW bool
}

// ConvBackward computes the gradients d of the convolution of x with w
// given the output's gradient dy, x, d.X and dy in the layouts io gives.
func ConvBackward(g ConvGeom, x, w, dy []float32, d ConvGrads, io ConvLayouts) error {
	l, err := load()
	if err != nil {
		return err
	}
	if !g.Bias && d.B != nil {
		return fmt.Errorf("onednn: backward: bias gradient wanted of %+v, which has no bias", g)
	}
	nx, nw, nb, ny := g.sizes()
	if err := checkLens(g, "backward", operand{x, nx}, operand{w, nw}, operand{dy, ny}, operand{d.X, nx}, operand{d.W, nw}, operand{d.B, nb}); err != nil {
		return err
	}
	return l.do(func() error {
		p, err := l.plan(g)
		if err != nil {
			return err
		}
		if err := l.backward(p); err != nil {
			return err
		}
		var dys unsafe.Pointer
		if d.X != nil {
			if dys, err = l.in(&p.dDst, dy, io.DY); err != nil {
				return err
			}
			ws, err := l.in(&p.dWei, w, NCHW)
			if err != nil {
				return err
			}
			xs := l.out(&p.dSrc, !d.SetX, d.X, io.DX)
			if err := l.run(p.data, dys, ws, xs); err != nil {
				return err
			}
			if err := l.finish(&p.dSrc, !d.SetX, xs, d.X, io.DX); err != nil {
				return err
			}
		}
		if d.W == nil && d.B == nil {
			return nil
		}
		if dys == nil || !p.oneDDst {
			if dys, err = l.in(&p.wDDst, dy, io.DY); err != nil {
				return err
			}
		}
		xs, err := l.in(&p.wSrc, x, io.X)
		if err != nil {
			return err
		}
		// The primitive computes the weight gradient even when only the
		// bias's is wanted; scratch takes it then.
		ws := l.scratch(p.wDWei.bytes)
		if d.W != nil {
			ws = l.out(&p.wDWei, !d.SetW, d.W, NCHW)
		}
		data := []unsafe.Pointer{xs, dys, ws}
		var bs unsafe.Pointer
		if g.Bias {
			bs = l.scratch(uintptr(4 * g.OC))
			data = append(data, bs)
		}
		if err := l.run(p.weights, data...); err != nil {
			return err
		}
		if d.W != nil {
			if err := l.finish(&p.wDWei, !d.SetW, ws, d.W, NCHW); err != nil {
				return err
			}
		}
		for i, v := range unsafe.Slice((*float32)(bs), len(d.B)) {
			d.B[i] += v
		}
		return nil
	})
}
