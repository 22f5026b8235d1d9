package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The pooling tests run pool.cu through the CPU emulator against float64
// references written here from the CPU engine's definitions (op/pool.go,
// srm/stylepool.go, srm/cfc.go, srm/shortcut.go), which cannot be imported:
// op imports cuda.

const poolTol = 1e-5

// poolDevice is a fake device whose launches run in the emulator; the test
// fails if a kernel does. With SRMLAB_CUDA_TESTS=1 it is GPU 0 instead, for
// running the same tests on a GPU machine (a test binary built with
// go test -c, as that machine has no Go toolchain).
func poolDevice(t *testing.T) *Device {
	t.Helper()
	if os.Getenv("SRMLAB_CUDA_TESTS") == "1" {
		return poolGPU(t)
	}
	emu := emulator(t)
	d, drv, _ := openFake(t)
	drv.emulator = emu
	t.Cleanup(func() {
		if drv.emuErr != nil {
			t.Error(drv.emuErr)
		}
	})
	return d
}

var poolGPUOnce struct {
	sync.Once
	d   *Device
	err error
}

// poolGPU opens GPU 0 once per test binary and keeps it open.
func poolGPU(t *testing.T) *Device {
	t.Helper()
	poolGPUOnce.Do(func() { poolGPUOnce.d, poolGPUOnce.err = Open(0) })
	if poolGPUOnce.err != nil {
		t.Fatal(poolGPUOnce.err)
	}
	return poolGPUOnce.d
}

func poolRand(rng *rand.Rand, n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return v
}

// poolTied draws from a few values, so that windows hold equal maxima.
func poolTied(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.IntN(3)) - 1
	}
	return v
}

func poolClose(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if e := relErr(got, want); !(e <= poolTol) {
		t.Errorf("%s: relative error %.3g > %.0e", what, e, poolTol)
	}
}

// poolGradBase is what a backward pass starts from: dx0 when accumulating,
// zeros otherwise.
func poolGradBase(dx0 []float32, accumulate bool) []float64 {
	g := make([]float64, len(dx0))
	if accumulate {
		for i, v := range dx0 {
			g[i] = float64(v)
		}
	}
	return g
}

// The span tables, as op/pool.go builds them.

func refStrideSpans(in, kernel, stride, pad int) []PoolSpan {
	s := make([]PoolSpan, (in+2*pad-kernel)/stride+1)
	for i := range s {
		lo := i*stride - pad
		s[i] = PoolSpan{Lo: int32(max(lo, 0)), Hi: int32(min(lo+kernel, in)), Div: int32(kernel)}
	}
	return s
}

func refAdaptiveSpans(in, out int) []PoolSpan {
	s := make([]PoolSpan, out)
	for i := range s {
		lo, hi := i*in/out, ((i+1)*in+out-1)/out
		s[i] = PoolSpan{Lo: int32(lo), Hi: int32(hi), Div: int32(hi - lo)}
	}
	return s
}

func refNearest(in, out int) []int32 {
	src := make([]int32, out)
	scale := float32(in) / float32(out)
	for i := range src {
		src[i] = int32(min(int(float32(i)*scale), in-1))
	}
	return src
}

// poolCase is a pooling over planes×h×w with the given windows.
type poolCase struct {
	name       string
	planes     int
	h, w       int
	rows, cols []PoolSpan
}

func strideCase(planes, h, w, k, s, p int) poolCase {
	return poolCase{fmt.Sprintf("%dx%dx%d k%d s%d p%d", planes, h, w, k, s, p), planes, h, w,
		refStrideSpans(h, k, s, p), refStrideSpans(w, k, s, p)}
}

func adaptiveCase(planes, h, w, oh, ow int) poolCase {
	return poolCase{fmt.Sprintf("%dx%dx%d to %dx%d", planes, h, w, oh, ow), planes, h, w,
		refAdaptiveSpans(h, oh), refAdaptiveSpans(w, ow)}
}

func (c poolCase) in() int  { return c.planes * c.h * c.w }
func (c poolCase) out() int { return c.planes * len(c.rows) * len(c.cols) }

// each calls f for every output (plane, output index in the plane) with its
// window.
func (c poolCase) each(f func(p, o int, r, s PoolSpan)) {
	for p := range c.planes {
		for i, r := range c.rows {
			for j, s := range c.cols {
				f(p, i*len(c.cols)+j, r, s)
			}
		}
	}
}

func refAvgPool(c poolCase, x []float32) []float64 {
	y := make([]float64, c.out())
	on := len(c.rows) * len(c.cols)
	c.each(func(p, o int, r, s PoolSpan) {
		var sum float64
		for i := r.Lo; i < r.Hi; i++ {
			for j := s.Lo; j < s.Hi; j++ {
				sum += float64(x[p*c.h*c.w+int(i)*c.w+int(j)])
			}
		}
		y[p*on+o] = sum / float64(r.Div*s.Div)
	})
	return y
}

func refAvgPoolBackward(c poolCase, dy, dx0 []float32, accumulate bool) []float64 {
	dx := poolGradBase(dx0, accumulate)
	on := len(c.rows) * len(c.cols)
	c.each(func(p, o int, r, s PoolSpan) {
		g := float64(dy[p*on+o]) / float64(r.Div*s.Div)
		for i := r.Lo; i < r.Hi; i++ {
			for j := s.Lo; j < s.Hi; j++ {
				dx[p*c.h*c.w+int(i)*c.w+int(j)] += g
			}
		}
	})
	return dx
}

// refMaxPool is op/pool.go's scan: greater or NaN replaces the best.
func refMaxPool(c poolCase, x []float32) ([]float64, []int32) {
	y, arg := make([]float64, c.out()), make([]int32, c.out())
	on := len(c.rows) * len(c.cols)
	c.each(func(p, o int, r, s PoolSpan) {
		best, at := math.Inf(-1), int(r.Lo)*c.w+int(s.Lo)
		for i := int(r.Lo); i < int(r.Hi); i++ {
			for j := i*c.w + int(s.Lo); j < i*c.w+int(s.Hi); j++ {
				if v := float64(x[p*c.h*c.w+j]); v > best || v != v {
					best, at = v, j
				}
			}
		}
		y[p*on+o], arg[p*on+o] = best, int32(at)
	})
	return y, arg
}

func refMaxPoolBackward(c poolCase, arg []int32, dy, dx0 []float32, accumulate bool) []float64 {
	dx := poolGradBase(dx0, accumulate)
	on := len(c.rows) * len(c.cols)
	for o, g := range dy {
		dx[o/on*c.h*c.w+int(arg[o])] += float64(g)
	}
	return dx
}

// poolInt32s reads int32 values downloaded as float32.
func poolInt32s(v []float32) []int32 {
	out := make([]int32, len(v))
	for i, f := range v {
		out[i] = int32(math.Float32bits(f))
	}
	return out
}

func poolCases() []poolCase {
	var cases []poolCase
	// op's pool test configurations, on an odd plane: windows overlapping
	// (k3 s1), padded (divisor beyond the window), leaving rows unread (k1
	// s2), and 10 planes (a partial block of warps).
	for _, k := range []struct{ k, s, p int }{{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {3, 3, 0}, {2, 1, 1}, {1, 2, 0}, {4, 3, 2}} {
		cases = append(cases, strideCase(3, 7, 6, k.k, k.s, k.p))
	}
	return append(cases,
		adaptiveCase(2, 7, 6, 3, 2),
		adaptiveCase(2, 7, 6, 5, 7),
		adaptiveCase(2, 7, 6, 9, 11),
		adaptiveCase(2, 2, 1, 3, 1),
		adaptiveCase(10, 5, 6, 1, 1),   // global, a thread per output
		adaptiveCase(10, 7, 7, 1, 1),   // global, a warp per output
		adaptiveCase(3, 40, 37, 3, 2),  // adaptive, warp (windows of 14×19)
		adaptiveCase(3, 33, 33, 1, 1),  // global, a block per output
		adaptiveCase(2, 50, 45, 1, 2),  // a block per output, two per plane
		strideCase(1, 1, 1, 1, 1, 0),   // one value
		strideCase(2, 4, 4, 3, 3, 0),   // one output whose window leaves a row and a column out
		strideCase(2, 11, 13, 7, 2, 3), // wide windows, a warp each
	)
}

func TestAvgPoolEmulated(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range poolCases() {
		t.Run(c.name, func(t *testing.T) {
			d := poolDevice(t)
			x := poolRand(rng, c.in(), -1, 2)
			xb, yb := devFloats(t, d, x), devFloats(t, d, make([]float32, c.out()))
			if err := d.AvgPool(xb, yb, c.planes, c.h, c.w, c.rows, c.cols); err != nil {
				t.Fatal(err)
			}
			poolClose(t, "y", hostFloats(t, yb, c.out()), refAvgPool(c, x))
			for _, acc := range []bool{false, true} {
				dy, dx0 := poolRand(rng, c.out(), -1, 1), poolRand(rng, c.in(), -1, 1)
				dyb, dxb := devFloats(t, d, dy), devFloats(t, d, dx0)
				if err := d.AvgPoolBackward(dyb, dxb, c.planes, c.h, c.w, c.rows, c.cols, acc); err != nil {
					t.Fatal(err)
				}
				poolClose(t, fmt.Sprintf("dx accumulate=%v", acc), hostFloats(t, dxb, c.in()), refAvgPoolBackward(c, dy, dx0, acc))
			}
		})
	}
}

func TestMaxPoolEmulated(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range poolCases() {
		if c.w*c.h > 100 {
			continue // max pooling has a thread per output whatever the window
		}
		for _, ties := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s ties=%v", c.name, ties), func(t *testing.T) {
				d := poolDevice(t)
				x := poolRand(rng, c.in(), -3, 3)
				if ties {
					x = poolTied(rng, c.in())
				}
				xb, yb, ab := devFloats(t, d, x), devFloats(t, d, make([]float32, c.out())), devFloats(t, d, make([]float32, c.out()))
				if err := d.MaxPool(xb, yb, ab, c.planes, c.h, c.w, c.rows, c.cols); err != nil {
					t.Fatal(err)
				}
				wantY, wantArg := refMaxPool(c, x)
				poolClose(t, "y", hostFloats(t, yb, c.out()), wantY)
				arg := poolInt32s(hostFloats(t, ab, c.out()))
				if !slices.Equal(arg, wantArg) {
					t.Fatalf("argmax %v, want %v", arg, wantArg)
				}
				for _, acc := range []bool{false, true} {
					dy, dx0 := poolRand(rng, c.out(), -1, 1), poolRand(rng, c.in(), -1, 1)
					dyb, dxb := devFloats(t, d, dy), devFloats(t, d, dx0)
					if err := d.MaxPoolBackward(dyb, ab, dxb, c.planes, c.h, c.w, len(c.rows), len(c.cols), acc); err != nil {
						t.Fatal(err)
					}
					poolClose(t, fmt.Sprintf("dx accumulate=%v", acc), hostFloats(t, dxb, c.in()), refMaxPoolBackward(c, wantArg, dy, dx0, acc))
				}
			})
		}
	}
}

// TestMaxPoolNaN: NaN beats every value and the last NaN of a window wins,
// as op/pool.go scans; -Inf everywhere keeps the window's first index.
func TestMaxPoolNaN(t *testing.T) {
	d := poolDevice(t)
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	c := strideCase(3, 2, 2, 2, 2, 0)
	x := []float32{1, nan, 3, nan, inf, inf, inf, inf, 2, 5, 5, 1}
	xb, yb, ab := devFloats(t, d, x), devFloats(t, d, make([]float32, 3)), devFloats(t, d, make([]float32, 3))
	if err := d.MaxPool(xb, yb, ab, c.planes, c.h, c.w, c.rows, c.cols); err != nil {
		t.Fatal(err)
	}
	y, arg := hostFloats(t, yb, 3), poolInt32s(hostFloats(t, ab, 3))
	if !math.IsNaN(float64(y[0])) || y[1] != inf || y[2] != 5 || !slices.Equal(arg, []int32{3, 0, 1}) {
		t.Errorf("y %v argmax %v, want [NaN -Inf 5] [3 0 1]", y, arg)
	}
}

func TestUpsampleEmulated(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ planes, h, w, oh, ow int }{
		{2, 3, 4, 7, 9}, {3, 2, 2, 4, 4}, {1, 7, 9, 3, 4}, {2, 26, 3, 22, 5}, {1, 1, 1, 3, 2}, {10, 5, 5, 5, 5},
	} {
		t.Run(fmt.Sprintf("%dx%dx%d to %dx%d", c.planes, c.h, c.w, c.oh, c.ow), func(t *testing.T) {
			d := poolDevice(t)
			rows, cols := refNearest(c.h, c.oh), refNearest(c.w, c.ow)
			in, out := c.planes*c.h*c.w, c.planes*c.oh*c.ow
			x := poolRand(rng, in, -1, 1)
			xb, yb := devFloats(t, d, x), devFloats(t, d, make([]float32, out))
			if err := d.Upsample(xb, yb, c.planes, c.h, c.w, rows, cols); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, out)
			for p := range c.planes {
				for i, r := range rows {
					for j, s := range cols {
						want[(p*c.oh+i)*c.ow+j] = float64(x[(p*c.h+int(r))*c.w+int(s)])
					}
				}
			}
			poolClose(t, "y", hostFloats(t, yb, out), want)
			for _, acc := range []bool{false, true} {
				dy, dx0 := poolRand(rng, out, -1, 1), poolRand(rng, in, -1, 1)
				dyb, dxb := devFloats(t, d, dy), devFloats(t, d, dx0)
				if err := d.UpsampleBackward(dyb, dxb, c.planes, c.h, c.w, rows, cols, acc); err != nil {
					t.Fatal(err)
				}
				want := poolGradBase(dx0, acc)
				for p := range c.planes {
					for i, r := range rows {
						for j, s := range cols {
							want[(p*c.h+int(r))*c.w+int(s)] += float64(dy[(p*c.oh+i)*c.ow+j])
						}
					}
				}
				poolClose(t, fmt.Sprintf("dx accumulate=%v", acc), hostFloats(t, dxb, in), want)
			}
		})
	}
}

// TestPoolKernelChoice checks the variant each window size gets, on the
// fake driver without running anything.
func TestPoolKernelChoice(t *testing.T) {
	d, drv, _ := openFake(t)
	x, _ := d.AllocFloat32(4 * 64 * 64)
	y, _ := d.AllocFloat32(4 * 64 * 64)
	for _, c := range []struct {
		c    poolCase
		want string
	}{
		{strideCase(4, 56, 56, 3, 2, 1), "pool_avg_thread"},
		{adaptiveCase(4, 5, 6, 1, 1), "pool_avg_thread"},
		{adaptiveCase(4, 7, 7, 1, 1), "pool_avg_warp"},
		{adaptiveCase(4, 32, 32, 1, 1), "pool_avg_warp"},
		{adaptiveCase(4, 56, 56, 1, 1), "pool_avg_block"},
	} {
		if err := d.AvgPool(x, y, c.c.planes, c.c.h, c.c.w, c.c.rows, c.c.cols); err != nil {
			t.Fatal(err)
		}
		if got := drv.launches[len(drv.launches)-1]; got.name != c.want {
			t.Errorf("%s: %s, want %s", c.c.name, got.name, c.want)
		}
	}
	for _, c := range []struct {
		c    poolCase
		want string
	}{
		{strideCase(4, 56, 56, 3, 2, 1), "pool_avg_bwd"},
		{adaptiveCase(4, 7, 7, 1, 1), "pool_avg_bwd_global"},
		{strideCase(4, 7, 7, 7, 1, 0), "pool_avg_bwd_global"},
		{strideCase(4, 7, 7, 5, 2, 0), "pool_avg_bwd"}, // one output whose window is not the plane
	} {
		if err := d.AvgPoolBackward(y, x, c.c.planes, c.c.h, c.c.w, c.c.rows, c.c.cols, true); err != nil {
			t.Fatal(err)
		}
		if got := drv.launches[len(drv.launches)-1]; got.name != c.want {
			t.Errorf("%s backward: %s, want %s", c.c.name, got.name, c.want)
		}
	}
}

// TestPoolTablesCached: the span tables go up once per distinct content,
// and equal row and column tables share one upload.
func TestPoolTablesCached(t *testing.T) {
	d, drv, _ := openFake(t)
	x, _ := d.AllocFloat32(2 * 9 * 9)
	y, _ := d.AllocFloat32(2 * 9 * 9)
	square, wide := strideCase(2, 9, 9, 3, 2, 1), strideCase(2, 9, 8, 3, 1, 1)
	uploads := func(f func() error) int {
		t.Helper()
		before := drv.count("cuMemcpyHtoD")
		if err := f(); err != nil {
			t.Fatal(err)
		}
		return drv.count("cuMemcpyHtoD") - before
	}
	avg := func(c poolCase) func() error {
		return func() error { return d.AvgPool(x, y, c.planes, c.h, c.w, c.rows, c.cols) }
	}
	back := func(c poolCase) func() error {
		return func() error { return d.AvgPoolBackward(y, x, c.planes, c.h, c.w, c.rows, c.cols, false) }
	}
	for _, s := range []struct {
		what string
		f    func() error
		want int
	}{
		{"first square pool", avg(square), 1},
		{"same pool again", avg(square), 0},
		{"max pool, same windows", func() error {
			return d.MaxPool(x, y, x, square.planes, square.h, square.w, square.rows, square.cols)
		}, 0},
		{"other windows", avg(wide), 2},
		{"first backward (inverse tables)", back(square), 1},
		{"backward again", back(square), 0},
	} {
		if n := uploads(s.f); n != s.want {
			t.Errorf("%s: %d uploads, want %d", s.what, n, s.want)
		}
	}
}

func TestPoolArgumentErrors(t *testing.T) {
	d, _, _ := openFake(t)
	small, _ := d.AllocFloat32(4)
	big, _ := d.AllocFloat32(1000)
	c := strideCase(2, 7, 6, 3, 2, 1)
	empty := []PoolSpan{{Lo: 2, Hi: 2, Div: 1}}
	for _, e := range []struct {
		err  error
		want string
	}{
		{d.AvgPool(small, big, c.planes, c.h, c.w, c.rows, c.cols), "x holds 4"},
		{d.AvgPool(big, small, c.planes, c.h, c.w, c.rows, c.cols), "y holds 4"},
		{d.AvgPool(big, nil, c.planes, c.h, c.w, c.rows, c.cols), "y is nil"},
		{d.AvgPool(big, big, 0, c.h, c.w, c.rows, c.cols), "planes = 0"},
		{d.AvgPool(big, big, c.planes, c.h, c.w, nil, c.cols), "0 rows"},
		{d.AvgPool(big, big, c.planes, c.h, c.w, c.rows, []PoolSpan{{0, 7, 3}}), "cols[0]"},
		{d.AvgPool(big, big, c.planes, c.h, c.w, []PoolSpan{{0, 2, 0}}, c.cols), "rows[0]"},
		{d.AvgPoolBackward(big, small, c.planes, c.h, c.w, c.rows, c.cols, false), "dx holds 4"},
		{d.MaxPool(big, big, small, c.planes, c.h, c.w, c.rows, c.cols), "argmax holds 4"},
		{d.MaxPool(big, big, big, c.planes, c.h, c.w, empty, c.cols), "rows[0]"},
		{d.MaxPoolBackward(small, big, big, c.planes, c.h, c.w, 4, 3, false), "dy holds 4"},
		{d.MaxPoolBackward(big, big, big, c.planes, c.h, c.w, 0, 3, false), "outH = 0"},
		{d.Upsample(big, big, 1, 3, 4, []int32{0, 3}, []int32{0}), "rowSrc[1] = 3"},
		{d.UpsampleBackward(big, big, 1, 3, 4, []int32{0}, []int32{-1}, false), "colSrc[0] = -1"},
		{d.UpsampleBackward(big, small, 1, 3, 4, []int32{0}, []int32{1}, true), "dx holds 4"},
	} {
		if e.err == nil || !strings.Contains(e.err.Error(), e.want) {
			t.Errorf("error %v, want one saying %q", e.err, e.want)
		}
	}
}
