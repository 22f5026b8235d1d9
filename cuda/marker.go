package cuda

import (
	"errors"
	"time"
)

// Marker is a point in the device's queue of work, for timing what is
// queued between two of them on the device's own clock (CUDA events), the
// way PyTorch's benchmarks time steps queued back to back.
type Marker struct {
	d  *Device
	ev uintptr
}

// Mark queues a marker after the work queued so far.
func (d *Device) Mark() (*Marker, error) {
	m := &Marker{d: d}
	err := d.exec.do(func() error {
		ev, r := d.drv.EventCreate(0)
		if err := check(d.drv, "cuEventCreate", r); err != nil {
			return err
		}
		m.ev = ev
		if err := check(d.drv, "cuEventRecord", d.drv.EventRecord(ev, 0)); err != nil {
			return errors.Join(err, check(d.drv, "cuEventDestroy_v2", d.drv.EventDestroy(ev)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Since waits until the device has passed m and returns the device time
// between earlier and m.
func (m *Marker) Since(earlier *Marker) (time.Duration, error) {
	var ms float32
	err := m.d.exec.do(func() error {
		if err := check(m.d.drv, "cuEventSynchronize", m.d.drv.EventSynchronize(m.ev)); err != nil {
			return err
		}
		var r cuResult
		ms, r = m.d.drv.EventElapsedTime(earlier.ev, m.ev)
		return check(m.d.drv, "cuEventElapsedTime", r)
	})
	return time.Duration(float64(ms) * float64(time.Millisecond)), err
}

// Free releases the marker's event.
func (m *Marker) Free() error {
	return m.d.exec.do(func() error { return check(m.d.drv, "cuEventDestroy_v2", m.d.drv.EventDestroy(m.ev)) })
}
