package op

import (
	"fmt"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/tensor"
)

// Every operation runs where its inputs live: on the host through the
// float32/float64 code beside it, on a GPU through package cuda's kernels
// (the *_cuda.go files), float32 only. The device paths record the same
// gradients with the same accumulate-or-overwrite rules as the host paths.

// DeviceOf returns the GPU the tensors live on, nil when all are in host
// memory; tensors split between places are a programming error.
func DeviceOf(op string, ts ...*tensor.Tensor) *cuda.Device {
	var dev tensor.Device
	seen := false
	for _, t := range ts {
		if t == nil {
			continue
		}
		d := t.Device()
		if seen && d != dev {
			tensor.Panicf("%s: inputs on %s and %s", op, where(dev), where(d))
		}
		dev, seen = d, true
	}
	if dev == nil {
		return nil
	}
	cd, ok := dev.(*cuda.Device)
	if !ok {
		panic(&tensor.DeviceError{Op: op, Err: fmt.Errorf("no kernels for device %v", dev)})
	}
	return cd
}

func where(d tensor.Device) string {
	if d == nil {
		return "the host"
	}
	return d.String()
}

// GPU is one operation's device path: the device and the operation's
// name, which every failure carries. Packages with operations of their own
// (srm's style pooling) build their device paths from it.
type GPU struct {
	D  *cuda.Device
	Op string
}

// Must panics with a *tensor.DeviceError naming the operation.
func (g GPU) Must(err error) { tensor.MustDevice(g.Op, err) }

// Buf returns t's device memory (nil for a nil tensor).
func (g GPU) Buf(t *tensor.Tensor) *cuda.Buffer {
	if t == nil {
		return nil
	}
	a, err := g.D.ArrayOf(t)
	g.Must(err)
	return a.Buffer()
}

// Empty returns a device tensor whose values a kernel is about to write in
// full, skipping the zero fill tensor.NewOn does.
func (g GPU) Empty(shape ...int) *tensor.Tensor {
	a, err := g.D.NewArray(tensor.Numel(shape))
	g.Must(err)
	return tensor.FromStorage(a, shape...)
}

// Grad returns where t's gradient goes and whether to add to it: a first
// gradient is written over fresh memory rather than added to zeros.
func (g GPU) Grad(t *tensor.Tensor) (*cuda.Buffer, bool) {
	if t.Grad == nil {
		t.Grad = g.Empty(t.Shape()...)
		return g.Buf(t.Grad), false
	}
	return g.Buf(t.Grad), true
}

// Grads is Grad for parameters one kernel writes the gradients of with one
// accumulate flag: all fresh, or all added to (zeros made where some were
// missing). When none needs a gradient the kernel writes scratch.
func (g GPU) Grads(ts ...*tensor.Tensor) ([]*cuda.Buffer, bool) {
	out := make([]*cuda.Buffer, len(ts))
	fresh, needed := true, false
	for _, t := range ts {
		fresh, needed = fresh && t.Grad == nil, needed || t.NeedsGrad()
	}
	for i, t := range ts {
		switch {
		case !needed:
			out[i] = g.Buf(g.Empty(t.Shape()...))
		case fresh:
			out[i], _ = g.Grad(t)
		default:
			out[i] = g.Buf(tensor.GradOf(t))
		}
	}
	return out, needed && !fresh
}

// Bufs is Buf for several tensors.
func (g GPU) Bufs(ts ...*tensor.Tensor) []*cuda.Buffer {
	out := make([]*cuda.Buffer, len(ts))
	for i, t := range ts {
		out[i] = g.Buf(t)
	}
	return out
}

// Map is a one-input operation: y, of the given shape, written by
// forward, and x's gradient by backward(y, dy, dx, accumulate).
func (g GPU) Map(x *tensor.Tensor, shape []int, forward func(y *cuda.Buffer) error,
	backward func(y, dy, dx *cuda.Buffer, accumulate bool) error) *tensor.Tensor {
	y := g.Empty(shape...)
	g.Must(forward(g.Buf(y)))
	tensor.Record(y, func(grad *tensor.Tensor) {
		dx, acc := g.Grad(x)
		g.Must(backward(g.Buf(y), g.Buf(grad), dx, acc))
	}, x)
	return y
}

// Pass adds src into t's gradient; with take, a t without one adopts src
// itself (src must then not be written again: the caller's own buffer, or a
// gradient no one else holds).
func (g GPU) Pass(t, src *tensor.Tensor, take bool) {
	switch {
	case t.Grad == nil && take:
		t.Grad = src.View(t.Shape()...)
	case t.Grad == nil:
		t.Grad = g.Empty(t.Shape()...)
		g.Must(g.D.Copy(g.Buf(t.Grad), g.Buf(src), src.Len()))
	default:
		g.Must(g.D.AddInto(g.Buf(t.Grad), g.Buf(src), src.Len()))
	}
}

// FirstNonFinite returns the index of the first tensor holding a NaN or an
// infinity, or −1; nil tensors are skipped. On a GPU it costs one copy to
// the host for all of them, which is why the training loop checks every
// gradient through it rather than one by one.
func FirstNonFinite(ts []*tensor.Tensor) int {
	var onDev []*tensor.Tensor
	var at []int
	for i, t := range ts {
		if t == nil {
			continue
		}
		if t.Device() == nil {
			if !hostFinite(t) {
				return i
			}
			continue
		}
		onDev, at = append(onDev, t), append(at, i)
	}
	if len(onDev) == 0 {
		return -1
	}
	g := GPU{DeviceOf("FirstNonFinite", onDev...), "FirstNonFinite"}
	bufs, lens := make([]*cuda.Buffer, len(onDev)), make([]int, len(onDev))
	for i, t := range onDev {
		bufs[i], lens[i] = g.Buf(t), t.Len()
	}
	k, err := g.D.FirstNonFinite(bufs, lens)
	g.Must(err)
	if k < 0 {
		return -1
	}
	return at[k]
}

// hostFinite checks a host tensor in one pass that is much cheaper than
// CheckFinite's per-element accessor: x−x is 0 for finite x and NaN for
// NaN and ±Inf.
func hostFinite(t *tensor.Tensor) bool {
	if t.DType() != tensor.Float32 {
		return t.CheckFinite("") == nil
	}
	var acc float32
	for _, v := range t.F32() {
		acc += v - v
	}
	return acc == 0
}
