package cuda

import "testing"

// Small uploads are queued from the page-locked ring without waiting for
// the device; large ones copy directly; the ring starts over only after
// the device has caught up.
func TestStagedUploads(t *testing.T) {
	d, drv, _ := openFake(t)
	small, err := d.AllocFloat32(1000)
	if err != nil {
		t.Fatal(err)
	}
	laps := stagingBytes/4000 + 1
	for i := range laps {
		v := make([]float32, 1000)
		v[999] = float32(i)
		if err := small.CopyFrom(v); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, 1000)
		if err := small.CopyTo(got); err != nil || got[999] != float32(i) {
			t.Fatalf("upload %d: got %v, %v", i, got[999], err)
		}
	}
	if n := drv.count("cuMemcpyHtoDAsync"); n != laps {
		t.Errorf("%d staged copies for %d uploads", n, laps)
	}
	if n := drv.count("cuCtxSynchronize"); n != 1 {
		t.Errorf("the ring started over after %d synchronisations, want 1", n)
	}
	big, err := d.AllocFloat32(stagedMax)
	if err != nil {
		t.Fatal(err)
	}
	if err := big.CopyFrom(make([]float32, stagedMax)); err != nil {
		t.Fatal(err)
	}
	if n := drv.count("cuMemcpyHtoD"); n != 1 {
		t.Errorf("%d direct copies for one upload of %d bytes", n, 4*stagedMax)
	}
	if err := small.CopyFrom(make([]float32, 1001)); err == nil {
		t.Error("an upload larger than the buffer was accepted")
	}
}
