package ggraph

import (
	G "gorgonia.org/gorgonia"
	gt "gorgonia.org/tensor"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/tensor"
)

// The helpers below build on the gorgonia operations whose forward and
// backward passes the tests check against srmlab: element-wise arithmetic,
// Transpose, Slice, Concat, matrix products and Conv2d, reductions over the
// LAST axis only (Sum over a middle axis of a 4-D tensor reads the wrong
// elements), never gorgonia's pooling (GlobalAveragePool2D has no gradient,
// AveragePool2D a wrong one), broadcasting (its gradients lose an axis) or
// Reshape (its views get overwritten in place): see defects_test.go. Where
// an in-place operation could overwrite a node the caller owns, that node
// is the second operand; gorgonia overwrites the first.

func sumLast(x *G.Node) *G.Node  { return must(G.Sum(x, x.Dims()-1)) }
func meanLast(x *G.Node) *G.Node { return must(G.Mean(x, x.Dims()-1)) }

// dims4 returns the sizes of an (N, C, H, W) node.
func dims4(x *G.Node, name string) (n, c, h, w int) {
	s := x.Shape()
	if len(s) != 4 {
		fail("%s: input %v is not (N, C, H, W)", name, s)
	}
	return s[0], s[1], s[2], s[3]
}

// scalar is a constant of the Builder's element type; gorgonia refuses to
// mix float32 and float64 operands.
func (b *Builder) scalar(v float64) *G.Node {
	if b.dt == tensor.Float64 {
		return G.NewConstant(v)
	}
	return G.NewConstant(float32(v))
}

// planes views x, (N, C, H, W), as (N, C, H·W), so that statistics of a
// channel plane are last-axis reductions.
func planes(x *G.Node, name string) *G.Node {
	n, c, h, w := dims4(x, name)
	return reshape(x, n, c, h*w)
}

// windows views x, (N, C, H, W), as (N, C, h·w, kh·kw): its h×w
// non-overlapping kh×kw windows (h = H/kh, w = W/kw; rows and columns past
// the last whole window are left out, as a convolution of that stride
// does), each window's values along the last axis. A reshape and a
// transpose do this, so every window reduction is a last-axis one and
// gorgonia's pooling is never needed.
func windows(x *G.Node, kh, kw int, name string) *G.Node {
	n, c, hh, ww := dims4(x, name)
	h, w := hh/kh, ww/kw
	if h < 1 || w < 1 {
		fail("%s: %dx%d windows do not fit a %dx%d map", name, kh, kw, hh, ww)
	}
	if h*kh != hh || w*kw != ww {
		x = must(G.Slice(x, nil, nil, G.S(0, h*kh), G.S(0, w*kw)))
	}
	if w > 1 {
		// Row r of window (i, j) is row i·kh+r; bring each window's rows
		// together: (N·C·h, kh, w, kw) → (N·C·h, w, kh, kw).
		x = must(G.Transpose(reshape(x, n*c*h, kh, w, kw), 0, 2, 1, 3))
	}
	return reshape(x, n, c, h*w, kh*kw)
}

// windowMean is average pooling with window and stride k×k (the whole map
// for kh, kw = H, W), GE-θ⁻'s gather.
func windowMean(x *G.Node, kh, kw int, name string) *G.Node {
	n, c, hh, ww := dims4(x, name)
	return reshape(meanLast(windows(x, kh, kw, name)), n, c, hh/kh, ww/kw)
}

// conv is nn.Conv2d: gorgonia's Conv2d when ungrouped; a depthwise one with
// non-overlapping windows (GE-θ's gather, which gorgonia's Conv2d cannot
// do, having no groups) as a per-channel dot product over each window.
func (b *Builder) conv(x *G.Node, name string, c *nn.Conv2d) *G.Node {
	n, in, h, w := dims4(x, name)
	if in != c.In {
		fail("%s: %d input channels for a convolution of %d", name, in, c.In)
	}
	wt := b.param(join(name, "weight"), c.Weight)
	var y *G.Node
	switch {
	case c.Groups == 1:
		y = must(G.Conv2d(x, wt, gt.Shape{c.KernelH, c.KernelW}, []int{c.Pad, c.Pad}, []int{c.Stride, c.Stride}, nil))
	case c.Groups == c.In && c.Out == c.In && c.Pad == 0 && c.KernelH == c.Stride && c.KernelW == c.Stride:
		k := c.Stride
		oh, ow := h/k, w/k
		// The (C, k·k) kernel tiled over the windows: (C, k·k, windows),
		// transposed to (C, windows, k·k), then over the batch.
		kt := b.tile(wt, 1, oh*ow, in, k*k, oh*ow)
		kt = b.tile(must(G.Transpose(kt, 0, 2, 1)), n, 1, n, in, oh*ow, k*k)
		y = sumLast(must(G.HadamardProd(kt, windows(x, k, k, name))))
		y = reshape(y, n, in, oh, ow)
	default:
		fail("%s: gorgonia has no grouped convolution; only ungrouped ones and depthwise ones whose stride equals the kernel, without padding, can be built (got %d groups, kernel %dx%d, stride %d, pad %d)",
			name, c.Groups, c.KernelH, c.KernelW, c.Stride, c.Pad)
	}
	if c.Bias != nil {
		s := y.Shape()
		y = must(G.Add(b.tile(b.param(join(name, "bias"), c.Bias), s[0], s[2]*s[3], s...), y))
	}
	return y
}

// linear is nn.Linear on (N, In).
func (b *Builder) linear(x *G.Node, name string, l *nn.Linear) *G.Node {
	if s := x.Shape(); len(s) != 2 || s[1] != l.In {
		fail("%s: input %v for a linear layer of %d inputs", name, s, l.In)
	}
	wt := must(G.Transpose(b.param(join(name, "weight"), l.Weight), 1, 0))
	y := must(G.Mul(x, wt))
	if l.Bias != nil {
		y = must(G.Add(b.tile(b.param(join(name, "bias"), l.Bias), x.Shape()[0], 1, x.Shape()[0], l.Out), y))
	}
	return y
}

// upsample is srmlab's nearest-neighbour upsampling of gates (N, C, h, w)
// to (N, C, H, W), as products with constant 0/1 matrices, first along
// the rows, then along the columns: exact, differentiable, and free of
// gorgonia's pooling code.
func (b *Builder) upsample(s *G.Node, hh, ww int) *G.Node {
	n, c, h, w := dims4(s, "upsample")
	y := must(G.Mul(reshape(s, n*c*h, w), b.nearest(w, ww)))
	y = must(G.Transpose(reshape(y, n*c, h, ww), 0, 2, 1))
	y = must(G.Mul(reshape(y, n*c*ww, h), b.nearest(h, hh)))
	y = must(G.Transpose(reshape(y, n*c, ww, hh), 0, 2, 1))
	return reshape(y, n, c, hh, ww)
}

// nearest is the (in, out) matrix whose column i picks the input index
// output i reads: min(floor(i·s), in−1) with s = in/out, the product taken
// in float32 as PyTorch's interpolate and srmlab's op.UpsampleNearest do.
func (b *Builder) nearest(in, out int) *G.Node {
	m := make([]float64, in*out)
	scale := float32(in) / float32(out)
	for i := 0; i < out; i++ {
		m[min(int(float32(i)*scale), in-1)*out+i] = 1
	}
	return G.NewConstant(ToDenseAs(tensor.FromFloat64(m, in, out), b.dt))
}

// tile repeats v, of any shape, n times before its elements and l times
// after each, and gives the result the given shape: a (C) vector tiled
// (N, H·W) becomes (N, C, H, W). The products with matrices of ones that do
// it are exact and differentiate correctly, where gorgonia's own
// broadcasting loses the broadcast axis in the gradient of an operand that
// has another consumer (and then fails to add the two gradients).
func (b *Builder) tile(v *G.Node, n, l int, shape ...int) *G.Node {
	size := v.Shape().TotalSize()
	if n > 1 {
		v = must(G.Mul(b.ones(n, 1), reshape(v, 1, size)))
		size *= n
	}
	if l > 1 {
		v = must(G.Mul(reshape(v, size, 1), b.ones(1, l)))
	}
	return reshape(v, shape...)
}

// ones is a constant (r, c) matrix of ones.
func (b *Builder) ones(r, c int) *G.Node {
	t := tensor.New(b.dt, r, c)
	t.Fill(1)
	return G.NewConstant(ToDense(t))
}
