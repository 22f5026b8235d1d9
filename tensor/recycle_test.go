package tensor

import "testing"

// chain records y = f(x) whose backward hands grad on to x by adoption
// (x takes grad over as its gradient) or by addition.
func chain(x *Tensor, adopt bool) *Tensor {
	y := New(Float32, x.shape...)
	Record(y, func(grad *Tensor) {
		if adopt && x.Grad == nil {
			x.Grad = grad
			return
		}
		g := GradOf(x).F32()
		for i, v := range grad.F32() {
			g[i] += v
		}
	}, x)
	return y
}

func TestBackwardRecyclesIntermediateGradients(t *testing.T) {
	FreeRecycled()
	x := New(Float32, 1000).SetRequiresGrad(true)
	mid := chain(x, false)
	mid2 := chain(mid, false)
	mid2.BackwardWith(New(Float32, 1000))
	// mid2's and mid's gradients were released; x's is kept.
	a, b := Empty(Float32, 1000), Empty(Float32, 1000)
	if sharesArray(a, x.Grad.F32()) || sharesArray(b, x.Grad.F32()) {
		t.Fatalf("a leaf's gradient was handed out")
	}
	recycled.Lock()
	left := len(recycled.bufs[1000])
	recycled.Unlock()
	if left != 0 {
		t.Errorf("%d buffers still held after taking two", left)
	}
	if c := Empty(Float32, 1000); c.Len() != 1000 {
		t.Errorf("Empty with nothing to reuse: %d elements", c.Len())
	}
}

func TestBackwardKeepsAdoptedGradients(t *testing.T) {
	FreeRecycled()
	x := New(Float32, 64).SetRequiresGrad(true)
	mid := chain(x, true) // x adopts mid's gradient, the seed's copy
	mid.BackwardWith(New(Float32, 64))
	for range 4 {
		if e := Empty(Float32, 64); sharesArray(e, x.Grad.F32()) {
			t.Fatalf("a gradient an input took over was recycled")
		}
	}
}

func TestRecycleCap(t *testing.T) {
	FreeRecycled()
	defer FreeRecycled()
	defer func(c int) { recycleCap = c }(recycleCap)
	recycleCap = 1 << 20
	n := recycleCap/4/3 + 1
	for range 4 {
		recycleGrad(New(Float32, n), nil)
	}
	recycled.Lock()
	defer recycled.Unlock()
	if recycled.bytes > recycleCap || len(recycled.bufs[n]) != 2 {
		t.Errorf("held %d buffers, %d bytes; cap %d", len(recycled.bufs[n]), recycled.bytes, recycleCap)
	}
}

func TestGradFor(t *testing.T) {
	x := New(Float32, 3)
	g, first := GradFor(x)
	if !first || g != x.Grad || g.Len() != 3 {
		t.Fatalf("first GradFor: %v, %v", g, first)
	}
	if g2, first := GradFor(x); first || g2 != g {
		t.Errorf("second GradFor: a new buffer (%v) or first (%v)", g2 != g, first)
	}
}

func TestBackwardReleasing(t *testing.T) {
	FreeRecycled()
	defer FreeRecycled()
	x := New(Float32, 256).SetRequiresGrad(true)
	mid := chain(x, false)
	kept := chain(mid, false)
	view := kept.View(16, 16) // shares kept's array: kept must survive
	viewed := chain(kept, false)
	loss := chain(viewed, false)
	loss.BackwardReleasing()
	if _, gone := mid.data.(released); !gone {
		t.Errorf("an intermediate result was not released")
	}
	if _, gone := viewed.data.(released); !gone {
		t.Errorf("a result read by the root's backward was not released")
	}
	for name, k := range map[string]*Tensor{"viewed": kept, "the view": view, "root": loss, "leaf": x} {
		if _, gone := k.data.(released); gone {
			t.Errorf("%s was released", name)
		}
	}
	recycled.Lock()
	held := len(recycled.bufs[256])
	recycled.Unlock()
	// mid's and viewed's values, and the four intermediate gradients.
	if held != 6 {
		t.Errorf("%d buffers recycled, want 6", held)
	}
	defer func() {
		if _, ok := recover().(*ShapeError); !ok {
			t.Errorf("reading a released tensor did not panic with a *ShapeError")
		}
	}()
	mid.At(0)
}

func TestDetachKeepsValues(t *testing.T) {
	FreeRecycled()
	defer FreeRecycled()
	x := New(Float32, 8).SetRequiresGrad(true)
	mid := chain(x, false)
	mid.Set(3, 7)
	kept := mid.Detach()
	chain(mid, false).BackwardReleasing()
	if kept.At(3) != 7 || mid.At(3) != 7 {
		t.Errorf("a detached result was released")
	}
}
