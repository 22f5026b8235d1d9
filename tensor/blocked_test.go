package tensor

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/srmlab/srmlab/onednn"
)

func randomMap(shape ...int) *Tensor {
	t := New(Float32, shape...)
	t.FillNormal(rand.New(rand.NewPCG(1, 2)), 0, 1)
	return t
}

// blockedAt is the index of NCHW element (i, c, p) in the blocked layout.
func blockedAt(shape []int, i, c, p int) int {
	hw := shape[2] * shape[3]
	return ((i*shape[1]+c)/16*hw+p)*16 + c%16
}

func TestBlocked16ConvertsInPlaceAndBack(t *testing.T) {
	shape := []int{2, 32, 3, 5}
	x := randomMap(shape...)
	want := slices.Clone(x.F32())
	b := Blocked16(x)
	if !IsBlocked16(x) {
		t.Fatal("an own tensor was not converted in place")
	}
	hw := shape[2] * shape[3]
	for i := range shape[0] {
		for c := range shape[1] {
			for p := range hw {
				if got, w := b[blockedAt(shape, i, c, p)], want[(i*shape[1]+c)*hw+p]; got != w {
					t.Fatalf("blocked (%d, %d, %d) = %v, want %v", i, c, p, got, w)
				}
			}
		}
	}
	if got := x.At(7); got != float64(want[7]) || IsBlocked16(x) {
		t.Fatalf("At(7) = %v (blocked after: %v), want %v", got, IsBlocked16(x), want[7])
	}
	if !slices.Equal(x.F32(), want) {
		t.Fatal("NCHW values changed by the round trip")
	}
}

// The loops that stand in for oneDNN write its layout, both ways.
func TestReorderLoopsMatchOneDNN(t *testing.T) {
	shape := []int{3, 48, 4, 7}
	src := randomMap(shape...).F32()
	loops, lib := make([]float32, len(src)), make([]float32, len(src))
	if err := onednn.Reorder16(lib, src, shape[0], shape[1], shape[2], shape[3], true); err != nil {
		t.Skip(err)
	}
	reorder16Loops(loops, src, shape, true)
	if !slices.Equal(loops, lib) {
		t.Fatal("oneDNN's nChw16c differs from the layout the loops write")
	}
	hw := shape[2] * shape[3]
	if i, c, p := 2, 37, 11; loops[blockedAt(shape, i, c, p)] != src[(i*shape[1]+c)*hw+p] {
		t.Fatal("the loops' layout is not nChw16c")
	}
	back, backLoops := make([]float32, len(src)), make([]float32, len(src))
	reorder16Loops(backLoops, lib, shape, false)
	if err := onednn.Reorder16(back, lib, shape[0], shape[1], shape[2], shape[3], false); err != nil || !slices.Equal(back, src) || !slices.Equal(backLoops, src) {
		t.Fatalf("back to NCHW: %v, oneDNN equal %v, loops equal %v", err, slices.Equal(back, src), slices.Equal(backLoops, src))
	}
}

// Runs describes the layout Blocked16 writes: run r of a map holds planes
// 16r to 16r+15 as its lanes, position by position, and Lanes reads a
// per-plane array's values for those planes.
func TestRuns(t *testing.T) {
	shape := []int{2, 32, 3, 5}
	x := randomMap(shape...)
	want := slices.Clone(x.F32())
	rs := RunsOf(x)
	if rs.Count() != 4 || rs.Blocks() != 2 || rs.Len() != 16*15 {
		t.Fatalf("runs %+v: count %d, blocks %d, length %d", rs, rs.Count(), rs.Blocks(), rs.Len())
	}
	b := Blocked16(x)
	perPlane := make([]float32, shape[0]*shape[1])
	for i := range perPlane {
		perPlane[i] = float32(i)
	}
	var seen atomic.Int32
	rs.Each(1, func(r int) {
		run, lanes := rs.Run(b, r), rs.Lanes(perPlane, r)
		for l := range 16 {
			plane := r*16 + l
			if lanes[l] != float32(plane) {
				t.Errorf("run %d lane %d: per-plane value %v, want %d", r, l, lanes[l], plane)
			}
			for p := range rs.HW {
				if run[p*16+l] != want[plane*rs.HW+p] {
					// Errorf, not Fatalf: Each runs f on other goroutines.
					t.Errorf("run %d lane %d position %d: %v, want plane %d's %v", r, l, p, run[p*16+l], plane, want[plane*rs.HW+p])
					return
				}
			}
		}
		seen.Add(1)
	})
	if int(seen.Load()) != rs.Count() {
		t.Errorf("Each visited %d runs of %d", seen.Load(), rs.Count())
	}
}

func TestSharedArraysStayPlain(t *testing.T) {
	x := randomMap(1, 16, 2, 2)
	v := x.View(16, 4)
	b := Blocked16(x)
	if IsBlocked16(x) {
		t.Fatal("a tensor whose array a View shares was converted in place")
	}
	b[0] = 42 // a copy: writes do not reach x
	if x.At(0) == 42 || v.At(0) == 42 {
		t.Fatal("a write to the blocked copy reached the tensor")
	}
}

func TestViewAndDetachOfBlockedReadNCHW(t *testing.T) {
	x := randomMap(2, 16, 3, 3)
	want := slices.Clone(x.F32())
	Blocked16(x)
	if got := x.View(2, 144).F32(); !slices.Equal(got, want) {
		t.Fatal("View of a blocked tensor does not read NCHW")
	}
	y := randomMap(2, 16, 3, 3)
	want = slices.Clone(y.F32())
	Blocked16(y)
	if got := y.Detach().F32(); !slices.Equal(got, want) {
		t.Fatal("Detach of a blocked tensor does not read NCHW")
	}
}

func TestCanBlock16(t *testing.T) {
	for _, c := range []struct {
		t    *Tensor
		want bool
	}{
		{New(Float32, 2, 16, 3, 3), true},
		{New(Float32, 2, 24, 3, 3), false},
		{New(Float64, 2, 16, 3, 3), false},
		{New(Float32, 2, 16), false},
	} {
		if got := CanBlock16(c.t); got != c.want {
			t.Errorf("CanBlock16(%v) = %v, want %v", c.t, got, c.want)
		}
	}
}

// The array a conversion replaces goes back to the recycler when a
// releasing backward pass releases the tensor, with the tensor's own.
func TestReleasingRecyclesConvertedArrays(t *testing.T) {
	FreeRecycled()
	defer FreeRecycled()
	x := New(Float32, 2, 16, 8, 8).SetRequiresGrad(true)
	mid := chain(x, false)
	old := mid.F32()
	Blocked16(mid) // a reader converts it
	if !IsBlocked16(mid) {
		t.Fatal("not converted")
	}
	out := chain(mid, false)
	out.BackwardReleasing()
	recycled.Lock()
	held := recycled.bufs[mid.Len()]
	recycled.Unlock()
	found := false
	for _, b := range held {
		found = found || &b[0] == &old[0]
	}
	if !found {
		t.Fatalf("the replaced array was not recycled (%d buffers held)", len(held))
	}
}

// PassGrad16 hands g over, or adds it to a gradient in either layout; a
// gradient whose array a View shares gets the sum there, in NCHW.
func TestPassGrad16(t *testing.T) {
	shape := []int{2, 16, 3, 3}
	want := randomMap(shape...).F32() // g's values in NCHW
	g := func() *Tensor {
		b := FromFloat32(slices.Clone(want), shape...)
		c := New(Float32, shape...)
		c.CopyFrom(b)
		Blocked16(c)
		return c
	}
	for _, c := range []struct {
		name string
		// grad sets x's gradient to ones, or not, and returns what
		// should read the sum (nil: x.Grad, which g should become).
		grad func(x *Tensor) (check *Tensor)
		ones bool
	}{
		{"none: taken over", func(x *Tensor) *Tensor { return nil }, false},
		{"NCHW, own", func(x *Tensor) *Tensor { x.Grad = New(Float32, shape...); x.Grad.Fill(1); return x.Grad }, true},
		{"blocked", func(x *Tensor) *Tensor {
			x.Grad = New(Float32, shape...)
			x.Grad.Fill(1)
			Blocked16(x.Grad)
			return x.Grad
		}, true},
		{"NCHW, shared with a View", func(x *Tensor) *Tensor {
			x.Grad = New(Float32, shape...)
			x.Grad.Fill(1)
			return x.Grad.View(2, 144)
		}, true},
	} {
		x := New(Float32, shape...)
		check := c.grad(x)
		gi := g()
		given := PassGrad16(x, gi, true)
		if given != (check == nil) {
			t.Fatalf("%s: given %v", c.name, given)
		}
		if check == nil {
			check = x.Grad
		}
		for i, v := range check.F32() {
			w := want[i]
			if c.ones {
				w++
			}
			if v != w {
				t.Fatalf("%s: [%d] = %v, want %v", c.name, i, v, w)
			}
		}
	}
}
