package cuda

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestPoolGPUTimings runs the pooling calls on network-sized tensors on GPU
// 0 (SRMLAB_CUDA_TESTS=1 only), checks the large-plane kernels against the
// reference, and logs each call's time and bandwidth beside the copy
// kernel's. The times are wall-clock over back-to-back calls, so host
// overhead shows only where it exceeds the kernels' time.
func TestPoolGPUTimings(t *testing.T) {
	if os.Getenv("SRMLAB_CUDA_TESTS") != "1" {
		t.Skip("needs a GPU: SRMLAB_CUDA_TESTS=1")
	}
	d := poolGPU(t)
	rng := rand.New(rand.NewPCG(21, 22))
	const n, c, h, w = 64, 256, 56, 56
	planes, L := n*c, h*w
	x := poolRand(rng, planes*L, 1, 3)
	xb := devFloats(t, d, x)
	out := devFloats(t, d, make([]float32, planes*L))
	side := devFloats(t, d, make([]float32, planes*L))
	small := devFloats(t, d, poolRand(rng, planes*L/4, -1, 1))

	copyPlan, err := d.CopyPlan(out, xb, planes*L)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := d.Time(copyPlan, 3, 20)
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := medianMin(ts)
	t.Logf("%-44s %8.1f µs %7.0f GB/s", "copy kernel 205 MB", us(cp), 8*float64(planes*L)/cp.Seconds()/1e9)

	// timePlan(name, bytes)(plan, err) logs the device time of a planned
	// call (median of 20).
	timePlan := func(name string, bytes int) func(*Plan, error) {
		return func(p *Plan, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			ts, err := d.Time(p, 3, 20)
			if err != nil {
				t.Fatal(err)
			}
			med, _ := medianMin(ts)
			t.Logf("%-44s %8.1f µs %7.0f GB/s", name, us(med), float64(bytes)/med.Seconds()/1e9)
		}
	}
	// wallTime logs the wall-clock time per call of back-to-back calls.
	wallTime := func(name string, f func() error) {
		t.Helper()
		if err := f(); err != nil { // compiles the kernels on first use
			t.Fatal(err)
		}
		const reps = 200
		start := time.Now()
		for range reps {
			if err := f(); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Synchronize(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-44s %8.1f µs per call, wall clock", name, us(time.Since(start)/reps))
	}

	// Host cost per call, against the GPU's: a one-value pooling (a trip to
	// the CUDA thread for the tables, one for the launch) and a one-launch
	// plan's Run.
	tinyCopy, err := d.CopyPlan(out, xb, 4)
	if err != nil {
		t.Fatal(err)
	}
	one := []PoolSpan{{0, 1, 1}}
	wallTime("host: one-value AvgPool call", func() error { return d.AvgPool(xb, out, 1, 1, 1, one, one) })
	wallTime("host: Run of a one-launch plan", func() error { return d.Run(tinyCopy) })

	global := func(h, w int) ([]PoolSpan, []PoolSpan) { return refAdaptiveSpans(h, 1), refAdaptiveSpans(w, 1) }
	gr, gc := global(h, w)
	timePlan("global avg 64x256x56x56", 4*planes*L)(d.avgPoolPlan(xb, out, planes, h, w, gr, gc))
	want := refAvgPool(poolCase{planes: planes, h: h, w: w, rows: gr, cols: gc}, x)
	poolClose(t, "global avg 56x56", hostFloats(t, out, planes), want)
	timePlan("global avg backward 64x256x56x56", 4*planes*L)(d.avgPoolBackwardPlan(small, side, planes, h, w, gr, gc, false))

	r7, c7 := global(7, 7)
	p7 := n * 2048
	timePlan("global avg 64x2048x7x7", 4*p7*49)(d.avgPoolPlan(xb, out, p7, 7, 7, r7, c7))
	poolClose(t, "global avg 7x7", hostFloats(t, out, p7),
		refAvgPool(poolCase{planes: p7, h: 7, w: 7, rows: r7, cols: c7}, x[:p7*49]))
	timePlan("global avg backward 64x2048x7x7", 4*p7*49)(d.avgPoolBackwardPlan(small, side, p7, 7, 7, r7, c7, false))

	// ResNet's stem pool on 64x64x112x112 (the same 205 MB).
	sr, sc := refStrideSpans(112, 3, 2, 1), refStrideSpans(112, 3, 2, 1)
	mp := 64 * 64
	mo := mp * 56 * 56
	timePlan("max pool k3 s2 p1 64x64x112x112", 4*mp*112*112+8*mo)(d.maxPoolPlan(xb, out, side, mp, 112, 112, sr, sc))
	timePlan("max pool backward, k3 s2 p1", 4*mp*112*112+12*mo)(d.maxPoolBackwardPlan(small, side, out, mp, 112, 112, 56, 56, false))
	timePlan("avg pool k3 s2 p1 64x64x112x112", 4*mp*112*112+4*mo)(d.avgPoolPlan(xb, out, mp, 112, 112, sr, sc))
	timePlan("avg pool backward, k3 s2 p1", 4*mp*112*112+4*mo)(d.avgPoolBackwardPlan(small, out, mp, 112, 112, sr, sc, false))
	ur, uc := refNearest(28, 56), refNearest(28, 56)
	timePlan("upsample x2 64x256x28x28", 5*planes*L/4*4)(d.upsamplePlan(small, out, planes, 28, 28, ur, uc))
	timePlan("upsample backward x2", 5*planes*L/4*4)(d.upsampleBackwardPlan(xb, side, planes, 28, 28, ur, uc, false))

	timePlan("style pool avg+std 64x256x56x56", 4*planes*L)(d.stylePoolPlan(xb, out, planes, L, true, true, false, false))
	wantT, _, _, _ := refStyle(x, planes, L, styleSet{true, true, false}, false)
	poolClose(t, "style pool avg+std 56x56", hostFloats(t, out, 2*planes), wantT)
	timePlan("style pool avg+std+max 64x256x56x56", 4*planes*L)(d.stylePoolPlan(xb, out, planes, L, true, true, true, false))
	timePlan("style pool avg+std 64x2048x7x7", 4*p7*49)(d.stylePoolPlan(xb, out, p7, 49, true, true, false, false))
	timePlan("style pool backward avg+std 64x256x56x56", 8*planes*L)(d.stylePoolBackwardPlan(xb, small, side, planes, L, true, true, false, false, false))

	z, dw, db := devFloats(t, d, make([]float32, planes)), devFloats(t, d, make([]float32, c*L)), devFloats(t, d, make([]float32, c))
	timePlan("CFC k=3136 (GE-θ gather) 64x256", 4*planes*L)(d.cfcPlan(xb, small, nil, z, n, c, L))
	timePlan("CFC backward k=3136, dt dw db", 12*planes*L)(d.cfcBackwardPlan(xb, small, z, side, dw, db, n, c, L, false, false))
	timePlan("subsample+pad s2 64x256x56x56 → 512", 4*n*512*28*28*3/2)(d.subsamplePadPlan(xb, out, n, c, h, w, 2, 512))
	timePlan("subsample+pad backward", 4*planes*L+2*n*512*28*28)(d.subsamplePadBackwardPlan(out, side, n, c, h, w, 2, 512, false))
	if math.IsNaN(float64(hostFloats(t, side, 1)[0])) {
		t.Error("NaN in a timed result")
	}
}
