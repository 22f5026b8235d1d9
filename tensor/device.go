package tensor

import (
	"fmt"
	"math"
)

// Device is memory other than the host's that tensors can live in: a GPU.
// Package cuda implements it; package op runs each operation on the device
// its inputs live on. Only float32 is kept on devices.
//
// The methods return errors rather than panic so that an implementation
// stays an ordinary library; Tensor's methods turn them into *DeviceError
// panics, as they turn misuse into *ShapeError panics, and srm.Model.Forward
// and the training loop recover both into errors.
type Device interface {
	// String names the device, e.g. "cuda:0 (NVIDIA H200)".
	String() string
	// NewStorage returns zeroed storage for n values of dt.
	NewStorage(dt DType, n int) (Storage, error)
	// Write copies host values ([]float32) into s; Read copies s into dst.
	Write(s Storage, src any) error
	Read(s Storage, dst any) error
	// FillStorage sets every value of s to v; CopyStorage copies src into
	// dst (same device, same length).
	FillStorage(s Storage, v float64) error
	CopyStorage(dst, src Storage) error
}

// Storage is a device's memory for one tensor's values.
type Storage interface {
	Device() Device
	Len() int
}

// DeviceError is a failed device operation (out of memory, a kernel
// error, a host accessor used on device data).
type DeviceError struct {
	Op  string
	Err error
}

func (e *DeviceError) Error() string { return "tensor: " + e.Op + ": " + e.Err.Error() }
func (e *DeviceError) Unwrap() error { return e.Err }

// MustDevice panics with a *DeviceError when err is not nil; device
// operations use it where a failure cannot be returned.
func MustDevice(op string, err error) {
	if err != nil {
		panic(&DeviceError{Op: op, Err: err})
	}
}

// Device returns the device t's values live on, nil for host memory.
func (t *Tensor) Device() Device {
	if s, ok := t.data.(Storage); ok {
		return s.Device()
	}
	return nil
}

// Storage returns t's device storage, nil for host memory.
func (t *Tensor) Storage() Storage {
	s, _ := t.data.(Storage)
	return s
}

// FromStorage wraps device storage (not copied) in a float32 tensor.
func FromStorage(s Storage, shape ...int) *Tensor {
	checkShape(shape)
	if Numel(shape) != s.Len() {
		Panicf("FromStorage: %d values do not fill shape %v", s.Len(), shape)
	}
	return &Tensor{shape: append([]int(nil), shape...), data: s}
}

// NewOn returns a zero float32 tensor on dev (the host when dev is nil).
func NewOn(dev Device, shape ...int) *Tensor {
	if dev == nil {
		return New(Float32, shape...)
	}
	checkShape(shape)
	s, err := dev.NewStorage(Float32, Numel(shape))
	MustDevice("NewOn "+dev.String(), err)
	return &Tensor{shape: append([]int(nil), shape...), data: s}
}

// To returns a copy of t's values on dev (the host when dev is nil),
// outside any autograd graph. Errors name the device.
func (t *Tensor) To(dev Device) (out *Tensor, err error) {
	defer RecoverTo(&err)
	if dev == nil {
		if t.Device() == nil {
			return t.Clone(), nil
		}
		return t.hostCopy(), nil
	}
	if t.DType() != Float32 {
		return nil, fmt.Errorf("tensor: only float32 tensors go to %v, this one is %v", dev, t.DType())
	}
	out = NewOn(dev, t.shape...)
	out.CopyFrom(t)
	return out, nil
}

// MoveTo moves t's values to dev (the host when dev is nil) in place,
// keeping the tensor's identity, so a model's layers keep pointing at their
// parameters; its gradient is dropped.
func (t *Tensor) MoveTo(dev Device) error {
	if t.Device() == dev {
		return nil
	}
	moved, err := t.To(dev)
	if err != nil {
		return err
	}
	t.data, t.Grad = moved.data, nil
	return nil
}

// Recover runs f and returns the *DeviceError or *ShapeError it panicked
// with, for callers of operations that cannot return one (Backward, an
// optimiser's step); other panics go on.
func Recover(f func()) (err error) {
	defer RecoverTo(&err)
	f()
	return nil
}

// RecoverTo, deferred, turns a *DeviceError or *ShapeError panic into
// *err; other panics go on.
func RecoverTo(err *error) {
	if r := recover(); r != nil {
		switch e := r.(type) {
		case *DeviceError:
			*err = e
		case *ShapeError:
			*err = e
		default:
			panic(r)
		}
	}
}

// hostCopy reads a device tensor's values into a new host tensor.
func (t *Tensor) hostCopy() *Tensor {
	s := t.Storage()
	out := New(Float32, t.shape...)
	MustDevice("read from "+s.Device().String(), s.Device().Read(s, out.data))
	return out
}

// host returns t itself when it is in host memory, else a host copy:
// the slow path of the element accessors.
func (t *Tensor) host() *Tensor {
	if t.Device() == nil {
		return t
	}
	return t.hostCopy()
}

// mustBeHost panics for the accessors that hand out host memory.
func (t *Tensor) mustBeHost(op string) {
	if _, gone := t.data.(released); gone {
		Panicf("%s: the values of this %v intermediate result were released by BackwardReleasing; read them before the backward pass", op, t.shape)
	}
	if d := t.Device(); d != nil {
		panic(&DeviceError{Op: op, Err: fmt.Errorf("the tensor %v is on %v; copy it to the host with To(nil)", t.shape, d)})
	}
}

// deviceFinite is CheckFinite for device tensors: one copy to the host.
func (t *Tensor) deviceFinite(what string) error {
	h := t.hostCopy()
	for i, v := range h.F32() {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%s: element %d of %v is %v", what, i, t.shape, v)
		}
	}
	return nil
}

// copyDevice is CopyFrom where either side is on a device.
func (t *Tensor) copyDevice(src *Tensor) {
	dst, from := t.Storage(), src.Storage()
	switch {
	case dst != nil && from != nil && dst.Device() == from.Device():
		MustDevice("copy on "+dst.Device().String(), dst.Device().CopyStorage(dst, from))
	case dst != nil && from != nil: // between devices, through the host
		t.copyDevice(src.hostCopy())
	case dst != nil:
		MustDevice("write to "+dst.Device().String(), dst.Device().Write(dst, src.Float32s()))
	default:
		h := src.hostCopy()
		for i, n := 0, t.Len(); i < n; i++ {
			t.Set(i, h.At(i))
		}
	}
}
