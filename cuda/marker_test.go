package cuda

import (
	"testing"
	"time"
)

func TestMarkers(t *testing.T) {
	d, drv, _ := openFake(t)
	a, err := d.Mark()
	if err != nil {
		t.Fatal(err)
	}
	buf, err := d.AllocFloat32(8)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Fill(buf, 8, 1); err != nil {
		t.Fatal(err)
	}
	b, err := d.Mark()
	if err != nil {
		t.Fatal(err)
	}
	// The stand-in's clock counts a millisecond a launch.
	dt, err := b.Since(a)
	if err != nil || dt != time.Millisecond {
		t.Fatalf("between two markers: %v, %v", dt, err)
	}
	if err := a.Free(); err != nil {
		t.Fatal(err)
	}
	if err := b.Free(); err != nil {
		t.Fatal(err)
	}
	if len(drv.events) != 0 {
		t.Errorf("%d events left", len(drv.events))
	}
}
