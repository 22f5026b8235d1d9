package cuda

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/srmlab/srmlab/tensor"
)

func TestArrayIsTensorStorage(t *testing.T) {
	d, _, _ := openFake(t)
	h := tensor.FromFloat32([]float32{1, -2, 3, 4.5, 5}, 5)
	x, err := h.To(d)
	if err != nil {
		t.Fatal(err)
	}
	if x.Device() != d || !strings.HasPrefix(x.String(), "Tensor(float32, [5], cuda:0") {
		t.Fatalf("x is %v", x)
	}
	if got := fmt.Sprint(x.Float32s()); got != "[1 -2 3 4.5 5]" {
		t.Fatalf("round trip %s", got)
	}
	z := tensor.ZerosLike(x)
	if got := fmt.Sprint(z.Float32s()); got != "[0 0 0 0 0]" {
		t.Fatalf("zeros %s", got)
	}
	z.CopyFrom(x)
	x.Fill(-0.5)
	if got := fmt.Sprint(z.Float32s(), x.Float32s()); got != "[1 -2 3 4.5 5] [-0.5 -0.5 -0.5 -0.5 -0.5]" {
		t.Fatalf("copy then fill: %s", got)
	}
	a, err := d.ArrayOf(z)
	if err != nil || a.Len() != 5 || a.Buffer().Len() < 5 {
		t.Fatalf("ArrayOf: %v %v", a, err)
	}
	if _, err := d.ArrayOf(h); err == nil || !strings.Contains(err.Error(), "host") {
		t.Fatalf("ArrayOf a host tensor: %v", err)
	}
	if _, err := d.NewStorage(tensor.Float64, 3); err == nil {
		t.Fatal("float64 storage accepted")
	}
}

// Arrays the garbage collector finds unreachable give their blocks back to
// the cache, so a loop allocating the same shapes reuses memory.
func TestCollectedArraysAreReused(t *testing.T) {
	d, _, _ := openFake(t)
	for range 3 {
		if _, err := d.NewArray(1000); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		runtime.GC()
		d.freeMu.Lock()
		n := len(d.pendingFree)
		d.freeMu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	keep, err := d.NewArray(1000)
	if err != nil {
		t.Fatal(err)
	}
	s := d.MemStats()
	if s.Reuses != 1 || s.Allocs != 3 {
		t.Fatalf("allocator after collection: %+v", s)
	}
	runtime.KeepAlive(keep)
}

// A buffer taken from an array keeps the array, and its memory, alive:
// kernels are handed buffers, and the tensors may be gone by then.
func TestBufferKeepsArray(t *testing.T) {
	d, _, _ := openFake(t)
	a, err := d.NewArray(100)
	if err != nil {
		t.Fatal(err)
	}
	b := a.Buffer()
	a = nil
	for range 5 {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	d.freeMu.Lock()
	pending := len(d.pendingFree)
	d.freeMu.Unlock()
	if pending != 0 {
		t.Fatalf("the array was collected while its buffer was held")
	}
	runtime.KeepAlive(b)
}
