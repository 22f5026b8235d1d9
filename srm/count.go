package srm

import (
	"fmt"

	"github.com/srmlab/srmlab/nn"
)

// The MAC convention is documented in doc.go, under Size.

// dims is the size of one image's feature map.
type dims struct{ c, h, w int }

// tracer is implemented by the parts of a network defined in this package:
// for an input of size in it returns the output size and the MACs of one
// image, or why the part cannot take that size, so a Model can refuse an
// input before running any layer.
type tracer interface {
	trace(in dims) (dims, float64, error)
}

// trace sizes any layer of a network, the nn layers included.
func trace(m nn.Module, in dims) (dims, float64, error) {
	switch l := m.(type) {
	case tracer:
		return l.trace(in)
	case *nn.Conv2d:
		k := l.Weight.Shape() // (out, in/groups, kh, kw)
		if in.c != k[1]*l.Groups {
			return in, 0, fmt.Errorf("srm: convolution %v on %d channels", k, in.c)
		}
		oh := (in.h+2*l.Pad-k[2])/l.Stride + 1
		ow := (in.w+2*l.Pad-k[3])/l.Stride + 1
		if oh < 1 || ow < 1 {
			return in, 0, fmt.Errorf("srm: %dx%d kernel on a %dx%d map", k[2], k[3], in.h, in.w)
		}
		return dims{k[0], oh, ow}, float64(oh*ow*k[0]) * float64(k[1]*k[2]*k[3]), nil
	case *nn.Linear:
		out, n := l.Weight.Dim(0), l.Weight.Dim(1)
		if in.c*in.h*in.w != n {
			return in, 0, fmt.Errorf("srm: linear layer of %d inputs on %d", n, in.c*in.h*in.w)
		}
		return dims{out, 1, 1}, float64(n * out), nil
	case *nn.BatchNorm2d, nn.ReLU:
		return in, 0, nil
	case nn.Sequential:
		return traceChain(in, l...)
	}
	panic(fmt.Sprintf("srm: no size rule for %T", m))
}

// traceChain sizes layers applied one after the other.
func traceChain(in dims, layers ...nn.Module) (dims, float64, error) {
	total := 0.0
	for _, l := range layers {
		out, macs, err := trace(l, in)
		if err != nil {
			return in, 0, err
		}
		in, total = out, total+macs
	}
	return in, total, nil
}

// stem sizes conv1, bn1 and the ImageNet max pooling, which cannot fail
// for an input of at least one pixel.
func (n *resnet) stem(in dims) (dims, float64) {
	d, macs, _ := traceChain(in, n.conv1, n.bn1)
	if n.maxPool {
		d.h, d.w = (d.h-1)/2+1, (d.w-1)/2+1 // kernel 3, stride 2, padding 1
	}
	return d, macs
}

func (n *resnet) trace(in dims) (dims, float64, error) {
	if in.c != 3 || in.h < 1 || in.w < 1 {
		return in, 0, fmt.Errorf("srm: want 3-channel images of at least 1x1 pixels, got %d channels of %dx%d", in.c, in.h, in.w)
	}
	d, macs := n.stem(in)
	for i, l := range n.layers {
		for j, blk := range l {
			out, m, err := trace(blk, d)
			if err != nil {
				return in, 0, fmt.Errorf("layer%d.%d: %w", i+1, j, err)
			}
			d, macs = out, macs+m
		}
	}
	out, m, err := trace(n.fc, dims{d.c, 1, 1})
	return out, macs + m, err
}

// branch sizes the residual branch without its recalibration module.
func (blk *block) branch(in dims) (dims, float64, error) {
	layers := make([]nn.Module, 0, 2*len(blk.convs))
	for i, c := range blk.convs {
		layers = append(layers, c, blk.bns[i])
	}
	return traceChain(in, layers...)
}

func (blk *block) trace(in dims) (dims, float64, error) {
	out, macs, err := blk.branch(in)
	if err == nil && blk.rclb != nil {
		var m float64
		_, m, err = trace(blk.rclb, out)
		macs += m
	}
	if err == nil && blk.down != nil {
		var m float64
		_, m, err = trace(blk.down, in)
		macs += m
	}
	return out, macs, err
}

func (s shortcutA) trace(in dims) (dims, float64, error) {
	return dims{s.out, (in.h-1)/s.stride + 1, (in.w-1)/s.stride + 1}, 0, nil
}

// plane is the element count of one image's map, the cost of one pass.
func (d dims) plane() float64 { return float64(d.c * d.h * d.w) }
