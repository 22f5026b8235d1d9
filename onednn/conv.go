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

// sizes returns the element counts of input, weight and output.
func (g ConvGeom) sizes() (x, w, y int) {
	oh, ow := g.Out()
	return g.N * g.C * g.H * g.W, g.OC * g.C / g.Groups * g.KH * g.KW, g.N * g.OC * oh * ow
}

// descs returns the descriptors of input, weight, bias (nil without one)
// and output, plain or left for the primitive to choose (any); the bias is
// always plain.
func (l *library) descs(g ConvGeom, any bool) (x, w, b, y *md, err error) {
	oh, ow := g.Out()
	wd := []int{g.OC, g.C, g.KH, g.KW}
	if g.Groups > 1 {
		wd = []int{g.Groups, g.OC / g.Groups, g.C / g.Groups, g.KH, g.KW}
	}
	var xs, ws, bs, ys md
	for _, e := range []struct {
		m   *md
		any bool
		d   []int
	}{
		{&xs, any, []int{g.N, g.C, g.H, g.W}},
		{&ws, any, wd},
		{&bs, false, []int{g.OC}},
		{&ys, any, []int{g.N, g.OC, oh, ow}},
	} {
		if *e.m, err = l.plainMD(e.any, e.d...); err != nil {
			return
		}
	}
	if g.Bias {
		b = &bs
	}
	return &xs, &ws, b, &ys, nil
}

// convPlan holds one geometry's primitives and the layouts they chose.
// The backward primitives are made on the first backward pass.
type convPlan struct {
	g                  ConvGeom
	plainX, plainW     md
	plainY             md
	fwdPD              uintptr // kept: the backward primitives are made from it
	fwd                *primitive
	src, wei, dst      staged
	data, weights      *primitive
	dSrc, dWei, dDst   staged // backward data's operands
	wSrc, wDWei, wDDst staged // backward weights' operands
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

func (l *library) plan(g ConvGeom) (*convPlan, error) {
	if p, ok := l.convs[g]; ok {
		return p, nil
	}
	px, pw, pb, py, err := l.descs(g, false)
	if err != nil {
		return nil, err
	}
	ax, aw, _, ay, err := l.descs(g, true)
	if err != nil {
		return nil, err
	}
	p := &convPlan{g: g, plainX: *px, plainW: *pw, plainY: *py}
	s, padL, padR := g.strides()
	desc := make([]byte, opDescBytes)
	d := unsafe.Pointer(&desc[0])
	if err := l.check("convolution forward", l.convForwardInit(d, propForwardTraining, algConvDirect, ax, aw, pb, ay, &s, &padL, &padR)); err != nil {
		return nil, err
	}
	var attr uintptr
	if g.ReLU {
		if err := l.reluAttr(&attr); err != nil {
			return nil, err
		}
	}
	err = l.check("convolution forward", l.pdCreate(&p.fwdPD, d, attr, l.engine, 0))
	l.dropAttr(attr)
	if err != nil {
		return nil, err
	}
	args := []int32{argSrc, argWeights, argDst}
	if g.Bias {
		args = []int32{argSrc, argWeights, argBias, argDst}
	}
	if p.fwd, err = l.newPrimitive(p.fwdPD, args...); err != nil {
		return nil, err
	}
	p.src, p.wei, p.dst = l.stage(p.plainX, p.fwd, argSrc), l.stage(p.plainW, p.fwd, argWeights), l.stage(p.plainY, p.fwd, argDst)
	l.convs[g] = p
	return p, nil
}

// backward makes p's backward primitives.
func (l *library) backward(p *convPlan) error {
	if p.data != nil {
		return nil
	}
	ax, aw, _, ay, err := l.descs(p.g, true)
	if err != nil {
		return err
	}
	var bias *md
	if p.g.Bias {
		_, _, bias, _, _ = l.descs(p.g, false)
	}
	s, padL, padR := p.g.strides()
	desc := make([]byte, opDescBytes)
	d := unsafe.Pointer(&desc[0])
	var pd uintptr
	if err := l.check("convolution backward data", l.convBackDataInit(d, algConvDirect, ax, aw, ay, &s, &padL, &padR)); err != nil {
		return err
	}
	if err := l.check("convolution backward data", l.pdCreate(&pd, d, 0, l.engine, p.fwdPD)); err != nil {
		return err
	}
	data, err := l.newPrimitive(pd, argDiffDst, argWeights, argDiffSrc)
	l.pdDestroy(pd)
	if err != nil {
		return err
	}
	if err := l.check("convolution backward weights", l.convBackWeighInit(d, algConvDirect, ax, aw, bias, ay, &s, &padL, &padR)); err != nil {
		return err
	}
	if err := l.check("convolution backward weights", l.pdCreate(&pd, d, 0, l.engine, p.fwdPD)); err != nil {
		return err
	}
	args := []int32{argSrc, argDiffDst, argDiffWeight}
	if p.g.Bias {
		args = append(args, argDiffBias)
	}
	weights, err := l.newPrimitive(pd, args...)
	l.pdDestroy(pd)
	if err != nil {
		return err
	}
	p.data, p.weights = data, weights
	p.dDst, p.dWei, p.dSrc = l.stage(p.plainY, data, argDiffDst), l.stage(p.plainW, data, argWeights), l.stage(p.plainX, data, argDiffSrc)
	p.wSrc, p.wDDst, p.wDWei = l.stage(p.plainX, weights, argSrc), l.stage(p.plainY, weights, argDiffDst), l.stage(p.plainW, weights, argDiffWeight)
	return nil
}

// checkLens reports a slice whose length does not fit g.
func checkLens(g ConvGeom, what string, pairs ...any) error {
	for i := 0; i < len(pairs); i += 2 {
		s, want := pairs[i].([]float32), pairs[i+1].(int)
		if s != nil && len(s) != want {
			return fmt.Errorf("onednn: %s: operand %d has %d elements, geometry %+v wants %d", what, i/2, len(s), g, want)
		}
	}
	return nil
}

// ConvForward sets y to the convolution of x with w plus the bias b (nil
// when g has none).
func ConvForward(g ConvGeom, x, w, b, y []float32) error {
	l, err := load()
	if err != nil {
		return err
	}
	nx, nw, ny := g.sizes()
	nb := 0
	if g.Bias {
		nb = g.OC
	}
	if err := g.check(); err != nil {
		return err
	}
	if err := checkLens(g, "forward", x, nx, w, nw, b, nb, y, ny); err != nil {
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
		xs, err := l.in(&p.src, x)
		if err != nil {
			return err
		}
		ws, err := l.in(&p.wei, w)
		if err != nil {
			return err
		}
		ys := l.out(&p.dst, false, y)
		data := []unsafe.Pointer{xs, ws, ys}
		if g.Bias {
			data = []unsafe.Pointer{xs, ws, unsafe.Pointer(unsafe.SliceData(b)), ys}
		}
		if err := l.run(p.fwd, data...); err != nil {
			return err
		}
		return l.finish(&p.dst, false, ys, y)
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
// given the output's gradient dy.
func ConvBackward(g ConvGeom, x, w, dy []float32, d ConvGrads) error {
	l, err := load()
	if err != nil {
		return err
	}
	if err := g.check(); err != nil {
		return err
	}
	nx, nw, ny := g.sizes()
	nb := 0
	if g.Bias {
		nb = g.OC
	} else if d.B != nil {
		return fmt.Errorf("onednn: backward: bias gradient wanted of %+v, which has no bias", g)
	}
	if err := checkLens(g, "backward", x, nx, w, nw, dy, ny, d.X, nx, d.W, nw, d.B, nb); err != nil {
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
			if dys, err = l.in(&p.dDst, dy); err != nil {
				return err
			}
			ws, err := l.in(&p.dWei, w)
			if err != nil {
				return err
			}
			xs := l.out(&p.dSrc, !d.SetX, d.X)
			if err := l.run(p.data, dys, ws, xs); err != nil {
				return err
			}
			if err := l.finish(&p.dSrc, !d.SetX, xs, d.X); err != nil {
				return err
			}
		}
		if d.W == nil && d.B == nil {
			return nil
		}
		if dys == nil || l.mdEqual(&p.dDst.chosen, &p.wDDst.chosen) != 1 {
			if dys, err = l.in(&p.wDDst, dy); err != nil {
				return err
			}
		}
		xs, err := l.in(&p.wSrc, x)
		if err != nil {
			return err
		}
		dw := d.W
		if dw == nil {
			dw = make([]float32, nw)
		}
		ws := l.out(&p.wDWei, !d.SetW, dw)
		data := []unsafe.Pointer{xs, dys, ws}
		var bs unsafe.Pointer
		if g.Bias {
			bs = l.scratch(uintptr(4 * g.OC))
			data = append(data, bs)
		}
		if err := l.run(p.weights, data...); err != nil {
			return err
		}
		if err := l.finish(&p.wDWei, !d.SetW, ws, dw); err != nil {
			return err
		}
		for i, v := range unsafe.Slice((*float32)(bs), len(d.B)) {
			d.B[i] += v
		}
		return nil
	})
}
