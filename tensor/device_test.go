package tensor

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// memDevice is a Device in host memory, standing in for a GPU so that the
// plumbing between host and device tensors is tested everywhere.
type memDevice struct{ name string }

type memStorage struct {
	dev  *memDevice
	vals []float32
}

func (s *memStorage) Device() Device { return s.dev }
func (s *memStorage) Len() int       { return len(s.vals) }

func (d *memDevice) String() string { return d.name }
func (d *memDevice) NewStorage(dt DType, n int) (Storage, error) {
	if dt != Float32 {
		return nil, errors.New("float32 only")
	}
	return &memStorage{dev: d, vals: make([]float32, n)}, nil
}
func (d *memDevice) Write(s Storage, src any) error {
	copy(s.(*memStorage).vals, src.([]float32))
	return nil
}
func (d *memDevice) Read(s Storage, dst any) error {
	copy(dst.([]float32), s.(*memStorage).vals)
	return nil
}
func (d *memDevice) FillStorage(s Storage, v float64) error {
	for i := range s.(*memStorage).vals {
		s.(*memStorage).vals[i] = float32(v)
	}
	return nil
}
func (d *memDevice) CopyStorage(dst, src Storage) error {
	copy(dst.(*memStorage).vals, src.(*memStorage).vals)
	return nil
}

func TestDeviceRoundTrip(t *testing.T) {
	dev := &memDevice{name: "mem:0"}
	h := FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	d, err := h.To(dev)
	if err != nil {
		t.Fatal(err)
	}
	if d.Device() != dev || h.Device() != nil {
		t.Fatalf("devices %v %v", d.Device(), h.Device())
	}
	if got := fmt.Sprint(d.Float32s()); got != "[1 2 3 4 5 6]" {
		t.Fatalf("round trip %s", got)
	}
	d.Set(4, 50)
	if d.At(4) != 50 || h.At(4) != 5 {
		t.Fatalf("Set on the device changed %v, host %v", d.At(4), h.At(4))
	}
	z := ZerosLike(d)
	z.CopyFrom(d)
	z.Fill(7)
	if z.Device() != dev || d.At(0) != 1 || z.At(5) != 7 {
		t.Fatal("ZerosLike/CopyFrom/Fill on the device")
	}
	back, err := d.To(nil)
	if err != nil || back.Device() != nil || back.F32()[4] != 50 {
		t.Fatalf("to host: %v %v", back, err)
	}
	if !strings.Contains(d.String(), "mem:0") {
		t.Fatalf("String %q does not name the device", d.String())
	}
}

func TestMoveToKeepsIdentity(t *testing.T) {
	dev := &memDevice{name: "mem:0"}
	p := FromFloat32([]float32{1, 2}, 2).SetRequiresGrad(true)
	p.Grad = FromFloat32([]float32{3, 4}, 2)
	if err := p.MoveTo(dev); err != nil {
		t.Fatal(err)
	}
	if p.Device() != dev || p.Grad != nil || !p.RequiresGrad() {
		t.Fatal("MoveTo must move values, drop the gradient and keep the flags")
	}
	if err := p.MoveTo(nil); err != nil || p.F32()[1] != 2 {
		t.Fatalf("back to the host: %v", err)
	}
	f64 := New(Float64, 2)
	if err := f64.MoveTo(dev); err == nil {
		t.Fatal("a float64 tensor moved to a float32-only device")
	}
}

func TestHostAccessorsRefuseDeviceData(t *testing.T) {
	dev := &memDevice{name: "mem:0"}
	d := NewOn(dev, 3)
	for name, f := range map[string]func(){
		"F32": func() { d.F32() }, "Raw": func() { d.Raw() }, "SetDType": func() { d.SetDType(Float64) },
	} {
		func() {
			defer func() {
				var de *DeviceError
				if r := recover(); r == nil {
					t.Errorf("%s: no panic", name)
				} else if e, ok := r.(error); !ok || !errors.As(e, &de) || !strings.Contains(e.Error(), "mem:0") {
					t.Errorf("%s: panic %v is not a DeviceError naming the device", name, r)
				}
			}()
			f()
		}()
	}
}

func TestBackwardSeedsOnTheDevice(t *testing.T) {
	dev := &memDevice{name: "mem:0"}
	x := NewOn(dev, 2).SetRequiresGrad(true)
	y := NewOn(dev, 2)
	Record(y, func(g *Tensor) { GradOf(x).CopyFrom(g) }, x)
	y.Backward()
	if x.Grad.Device() != dev || fmt.Sprint(x.Grad.Float32s()) != "[1 1]" {
		t.Fatalf("gradient %v", x.Grad)
	}
}
