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
	x := New(Float32, 2048).SetRequiresGrad(true)
	mid := chain(x, false)
	mid2 := chain(mid, false)
	mid2.BackwardWith(New(Float32, 2048))
	// mid2's and mid's gradients were released; x's is kept.
	a, b := Empty(Float32, 2048), Empty(Float32, 2048)
	if sharesArray(a, x.Grad.F32()) || sharesArray(b, x.Grad.F32()) {
		t.Fatalf("a leaf's gradient was handed out")
	}
	recycled.Lock()
	left := len(recycled.bufs[2048])
	recycled.Unlock()
	if left != 0 {
		t.Errorf("%d buffers still held after taking two", left)
	}
	if c := Empty(Float32, 2048); c.Len() != 2048 {
		t.Errorf("Empty with nothing to reuse: %d elements", c.Len())
	}
}

func TestBackwardKeepsAdoptedGradients(t *testing.T) {
	FreeRecycled()
	x := New(Float32, 2048).SetRequiresGrad(true)
	mid := chain(x, true) // x adopts mid's gradient, the seed's copy
	mid.BackwardWith(New(Float32, 2048))
	for range 4 {
		if e := Empty(Float32, 2048); sharesArray(e, x.Grad.F32()) {
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
	bufs := make([]*Tensor, 4)
	for i := range bufs {
		bufs[i] = New(Float32, n)
	}
	for _, b := range bufs {
		recycleGrad(b, nil)
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
	x := New(Float32, 2048).SetRequiresGrad(true)
	mid := chain(x, false)
	midCopy := &Tensor{data: mid.data} // to find its array after release
	kept := chain(mid, false)
	view := kept.View(32, 64) // shares kept's array: kept must survive
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
	// mid's array went to the recycler (viewed's too, unless a gradient
	// took it back).
	recycled.Lock()
	inPool := false
	for _, b := range recycled.bufs[2048] {
		inPool = inPool || sharesArray(midCopy, b)
	}
	recycled.Unlock()
	if !inPool {
		t.Errorf("a released result's array is not in the recycler")
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
	x := New(Float32, 2048).SetRequiresGrad(true)
	mid := chain(x, false)
	mid.Set(3, 7)
	kept := mid.Detach()
	chain(mid, false).BackwardReleasing()
	if kept.At(3) != 7 || mid.At(3) != 7 {
		t.Errorf("a detached result was released")
	}
}

// However many steps run, the recycler keeps one step's worth: what a step
// asked for.
func TestReleasingKeepsOneStep(t *testing.T) {
	FreeRecycled()
	defer FreeRecycled()
	step := func() {
		x := New(Float32, 4096).SetRequiresGrad(true)
		y := chain(chain(chain(x, false), false), false)
		y.BackwardReleasing()
	}
	step()
	recycled.Lock()
	first := recycled.bytes
	recycled.Unlock()
	for range 5 {
		step()
	}
	recycled.Lock()
	defer recycled.Unlock()
	if first == 0 || recycled.bytes != first {
		t.Errorf("recycler held %d bytes after one step, %d after six", first, recycled.bytes)
	}
}

func TestSmallBuffersAreNotRecycled(t *testing.T) {
	FreeRecycled()
	defer FreeRecycled()
	recycleGrad(New(Float32, minRecycled-1), nil)
	recycled.Lock()
	defer recycled.Unlock()
	if recycled.bytes != 0 {
		t.Errorf("a %d-value buffer was recycled", minRecycled-1)
	}
}
