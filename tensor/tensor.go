package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// DType names the element type of a Tensor.
type DType uint8

const (
	Float32 DType = iota
	Float64
)

func (d DType) String() string {
	if d == Float64 {
		return "float64"
	}
	return "float32"
}

// Tensor is a dense row-major array that may take part in automatic
// differentiation.
type Tensor struct {
	shape []int
	data  any // []float32 or []float64

	// Grad accumulates d(loss)/d(tensor) during Backward. It is kept for
	// tensors that require a gradient (parameters, inputs under test) and
	// released for intermediate results once they have been used.
	Grad *Tensor

	requiresGrad bool
	node         *node
	// own says the array is this tensor's alone (New or Empty made it and
	// no View or Detach shares it), so BackwardReleasing may recycle it.
	own bool
	// stale are the arrays that conversions between layouts replaced
	// (see Blocked16): readers that ran before may hold them, so they go
	// back to the recycler with the tensor's own array, not before.
	stale [][]float32
}

type node struct {
	inputs   []*Tensor
	backward func(grad *Tensor)
}

// ShapeError reports tensors whose shapes do not fit an operation.
type ShapeError struct{ Msg string }

func (e *ShapeError) Error() string { return "tensor: " + e.Msg }

// Panicf panics with a *ShapeError; operations use it for misuse that is a
// programming error.
func Panicf(format string, args ...any) { panic(&ShapeError{Msg: fmt.Sprintf(format, args...)}) }

// Numel returns the number of elements of a shape.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func checkShape(shape []int) {
	for _, d := range shape {
		if d < 0 {
			Panicf("negative dimension in shape %v", shape)
		}
	}
}

// New returns a zero tensor of the given type and shape.
func New(dt DType, shape ...int) *Tensor {
	checkShape(shape)
	n := Numel(shape)
	if dt == Float64 {
		return &Tensor{shape: append([]int(nil), shape...), data: make([]float64, n), own: true}
	}
	t := Empty(Float32, shape...)
	if t.pooled() {
		clear(t.F32())
	}
	return t
}

// Zeros returns a float32 zero tensor.
func Zeros(shape ...int) *Tensor { return New(Float32, shape...) }

// ZerosLike returns a zero tensor with t's type and shape.
func ZerosLike(t *Tensor) *Tensor {
	if d := t.Device(); d != nil {
		return NewOn(d, t.shape...)
	}
	return New(t.DType(), t.shape...)
}

// FromFloat32 wraps data (not copied) in a tensor of the given shape.
func FromFloat32(data []float32, shape ...int) *Tensor {
	checkShape(shape)
	if Numel(shape) != len(data) {
		Panicf("FromFloat32: %d values do not fill shape %v", len(data), shape)
	}
	return &Tensor{shape: append([]int(nil), shape...), data: data}
}

// FromFloat64 wraps data (not copied) in a tensor of the given shape.
func FromFloat64(data []float64, shape ...int) *Tensor {
	checkShape(shape)
	if Numel(shape) != len(data) {
		Panicf("FromFloat64: %d values do not fill shape %v", len(data), shape)
	}
	return &Tensor{shape: append([]int(nil), shape...), data: data}
}

// Scalar returns a 0-dimensional tensor of type dt holding v.
func Scalar(dt DType, v float64) *Tensor {
	t := New(dt)
	t.Set(0, v)
	return t
}

// Shape returns the tensor's dimensions. The slice must not be modified.
func (t *Tensor) Shape() []int { return t.shape }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Len returns the number of elements.
func (t *Tensor) Len() int { return Numel(t.shape) }

// DType returns the element type.
func (t *Tensor) DType() DType {
	if _, ok := t.data.([]float64); ok {
		return Float64
	}
	return Float32
}

// F32 returns the float32 data (shared, not copied); it panics for float64 tensors.
func (t *Tensor) F32() []float32 {
	t.plain()
	d, ok := t.data.([]float32)
	if !ok {
		t.mustBeHost("F32")
		Panicf("F32 of a %v tensor", t.DType())
	}
	return d
}

// F64 returns the float64 data (shared, not copied); it panics for float32 tensors.
func (t *Tensor) F64() []float64 {
	d, ok := t.data.([]float64)
	if !ok {
		t.mustBeHost("F64")
		Panicf("F64 of a %v tensor", t.DType())
	}
	return d
}

// Raw returns the data slice ([]float32 or []float64) for code generic over
// the element type; it panics for tensors on a device.
func (t *Tensor) Raw() any {
	t.mustBeHost("Raw")
	t.plain()
	return t.data
}

// At returns element i (flat index) as float64. On a device it copies the
// tensor to the host first: use Float32s for more than one element.
func (t *Tensor) At(i int) float64 {
	if t.Device() != nil {
		return t.hostCopy().At(i)
	}
	if d, ok := t.data.([]float64); ok {
		return d[i]
	}
	t.mustBeHost("At")
	t.plain()
	return float64(t.data.([]float32)[i])
}

// Set stores v at flat index i (on a device, through a copy of the whole
// tensor: meant for tests and set-up, not loops).
func (t *Tensor) Set(i int, v float64) {
	if t.Device() != nil {
		h := t.hostCopy()
		h.Set(i, v)
		t.CopyFrom(h)
		return
	}
	if d, ok := t.data.([]float64); ok {
		d[i] = v
		return
	}
	t.mustBeHost("Set")
	t.plain()
	t.data.([]float32)[i] = float32(v)
}

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() float64 {
	if t.Len() != 1 {
		Panicf("Item of a tensor of shape %v", t.shape)
	}
	return t.At(0)
}

// Float64s returns a float64 copy of the data.
func (t *Tensor) Float64s() []float64 {
	h := t.host()
	out := make([]float64, t.Len())
	for i := range out {
		out[i] = h.At(i)
	}
	return out
}

// Float32s returns a float32 copy of the data.
func (t *Tensor) Float32s() []float32 {
	t.plain()
	switch d := t.data.(type) {
	case Storage:
		return t.hostCopy().F32() // already a copy
	case []float32:
		return slices.Clone(d)
	}
	out := make([]float32, t.Len())
	for i := range out {
		out[i] = float32(t.At(i))
	}
	return out
}

// As returns a copy of t converted to dt, outside any autograd graph, on
// t's device (where dt must be Float32).
func (t *Tensor) As(dt DType) *Tensor {
	if dev := t.Device(); dev != nil {
		if dt != Float32 {
			panic(&DeviceError{Op: "As", Err: fmt.Errorf("%v tensors cannot live on %v", dt, dev)})
		}
		out := NewOn(dev, t.shape...)
		out.CopyFrom(t)
		return out
	}
	out := New(dt, t.shape...)
	for i, n := 0, t.Len(); i < n; i++ {
		out.Set(i, t.At(i))
	}
	return out
}

// Clone returns a copy of t's data and shape, outside any autograd graph.
func (t *Tensor) Clone() *Tensor { return t.As(t.DType()) }

// CopyFrom copies src's values into t; shapes must have equal sizes.
func (t *Tensor) CopyFrom(src *Tensor) {
	if src.Len() != t.Len() {
		Panicf("CopyFrom: %v into %v", src.shape, t.shape)
	}
	if t.Device() != nil || src.Device() != nil {
		t.copyDevice(src)
		return
	}
	t.plain()
	src.plain()
	switch d := t.data.(type) {
	case []float32:
		if s, ok := src.data.([]float32); ok {
			copy(d, s)
			return
		}
	case []float64:
		if s, ok := src.data.([]float64); ok {
			copy(d, s)
			return
		}
	}
	for i, n := 0, t.Len(); i < n; i++ {
		t.Set(i, src.At(i))
	}
}

// Fill sets every element to v.
func (t *Tensor) Fill(v float64) {
	if s := t.Storage(); s != nil {
		MustDevice("Fill", s.Device().FillStorage(s, v))
		return
	}
	for i, n := 0, t.Len(); i < n; i++ {
		t.Set(i, v)
	}
}

// FillNormal fills t with samples of N(mean, std²) drawn from r.
func (t *Tensor) FillNormal(r *rand.Rand, mean, std float64) {
	if t.Device() != nil {
		h := New(Float32, t.shape...)
		h.FillNormal(r, mean, std)
		t.CopyFrom(h)
		return
	}
	for i, n := 0, t.Len(); i < n; i++ {
		t.Set(i, mean+std*r.NormFloat64())
	}
}

// FillUniform fills t with samples of U[lo, hi) drawn from r.
func (t *Tensor) FillUniform(r *rand.Rand, lo, hi float64) {
	if t.Device() != nil {
		h := New(Float32, t.shape...)
		h.FillUniform(r, lo, hi)
		t.CopyFrom(h)
		return
	}
	for i, n := 0, t.Len(); i < n; i++ {
		t.Set(i, lo+(hi-lo)*r.Float64())
	}
}

// View returns a tensor sharing t's data with another shape of the same
// size, outside any autograd graph (nn.Reshape is the differentiable form).
func (t *Tensor) View(shape ...int) *Tensor {
	checkShape(shape)
	if Numel(shape) != t.Len() {
		Panicf("View: shape %v does not hold the %d elements of %v", shape, t.Len(), t.shape)
	}
	t.plain()
	t.own = false
	return &Tensor{shape: append([]int(nil), shape...), data: t.data}
}

// SameShape reports whether a and b have equal shapes.
func SameShape(a, b *Tensor) bool {
	if len(a.shape) != len(b.shape) {
		return false
	}
	for i := range a.shape {
		if a.shape[i] != b.shape[i] {
			return false
		}
	}
	return true
}

// CheckFinite returns an error naming the first NaN or Inf element, if any.
func (t *Tensor) CheckFinite(what string) error {
	if t.Device() != nil {
		return t.deviceFinite(what)
	}
	for i, n := 0, t.Len(); i < n; i++ {
		if v := t.At(i); math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: element %d of %v is %v", what, i, t.shape, v)
		}
	}
	return nil
}

func (t *Tensor) String() string {
	if d := t.Device(); d != nil {
		return fmt.Sprintf("Tensor(%v, %v, %v)", t.DType(), t.shape, d)
	}
	return fmt.Sprintf("Tensor(%v, %v)", t.DType(), t.shape)
}

// SetDType converts t's data to dt in place, keeping the tensor's identity,
// so a whole model can be switched to float64 for gradient checks.
func (t *Tensor) SetDType(dt DType) {
	if t.DType() == dt {
		return
	}
	if d := t.Device(); d != nil {
		panic(&DeviceError{Op: "SetDType", Err: fmt.Errorf("%v tensors cannot live on %v", dt, d)})
	}
	t.data = t.As(dt).data
	t.Grad = nil
}
