package cuda

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// nnGPU opens GPU 0 for the nn checks (SRMLAB_CUDA_TESTS=1 only).
func nnGPU(t *testing.T) *nnEnv {
	t.Helper()
	if os.Getenv("SRMLAB_CUDA_TESTS") != "1" {
		t.Skip("needs a GPU: SRMLAB_CUDA_TESTS=1")
	}
	d, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &nnEnv{t: t, d: d, rng: rand.New(rand.NewPCG(31, 37))}
}

// TestNNGPU runs the emulated tests' checks on GPU 0, on the small shapes
// and on network-sized ones (a ResNet stem's BatchNorm: 64 channels of
// 64×112×112, split over many blocks each; a ResNet head's; a gate
// gradient over 64×256 planes of 56×56).
func TestNNGPU(t *testing.T) {
	e := nnGPU(t)
	run := func(name string, f func()) {
		t.Run(name, func(t *testing.T) {
			e.t = t
			f()
		})
	}
	for _, n := range append(nnSizes, 64*256*56*56+3) {
		run(fmt.Sprint("elementwise ", n), func() { e.checkElementwise(n) })
	}
	for _, c := range append(planeCases, [2]int{64 * 256, 56 * 56}, [2]int{64 * 2048, 49}, [2]int{2, 1 << 22}) {
		run(fmt.Sprint("planes ", c), func() { e.checkPlanes(c[0], c[1]) })
	}
	for _, c := range append(biasCases, [3]int{64, 256, 56 * 56}, [3]int{256, 1000, 1}) {
		run(fmt.Sprint("bias ", c), func() { e.checkBias(c[0], c[1], c[2]) })
	}
	for _, s := range append(bnShapes, BNShape{64, 64, 112 * 112}, BNShape{64, 2048, 49}, BNShape{64, 256, 56 * 56}, BNShape{256, 512, 1}) {
		for _, relu := range []bool{false, true} {
			run(fmt.Sprint("bn ", s, relu), func() { e.checkBN(s, relu, 3) })
		}
	}
	for _, c := range [][2]int{{1, 1}, {17, 100}, {256, 1000}, {1000, 10}} {
		run(fmt.Sprint("ce ", c), func() { e.checkCE(c[0], c[1]) })
	}
	for _, n := range []int{1, 1030, 25_000_003} {
		for _, c := range sgdCases() {
			run(fmt.Sprint("sgd ", n, c), func() { e.checkSGD(n, c) })
		}
	}
}

// TestNNGPUTimings logs the time of the main calls on network-sized
// tensors, and their bandwidth (bytes each kernel must move) beside the
// copy kernel's. Times are wall-clock over back-to-back calls.
func TestNNGPUTimings(t *testing.T) {
	e := nnGPU(t)
	d := e.d
	buf := func(n int, lo, hi float64) *Buffer { return e.up(e.rand(n, lo, hi)) }
	const big = 64 * 64 * 112 * 112
	x, y, dy, dx := buf(big, -1, 1), buf(big, -1, 1), buf(big, -1, 1), buf(big, -1, 1)
	cp, err := d.CopyPlan(y, x, big)
	e.ok(err)
	ts, err := d.Time(cp, 3, 20)
	e.ok(err)
	med, _ := medianMin(ts)
	copyGBs := 8 * float64(big) / med.Seconds() / 1e9
	t.Logf("%-40s %9.1f µs %7.0f GB/s", "copy kernel 205 MB", us(med), copyGBs)
	timeIt := func(name string, bytes int, f func() error) {
		for range 3 {
			e.ok(f())
		}
		e.ok(d.Synchronize())
		const reps = 30
		start := time.Now()
		for range reps {
			e.ok(f())
		}
		e.ok(d.Synchronize())
		per := time.Since(start) / reps
		gbs := float64(bytes) / per.Seconds() / 1e9
		t.Logf("%-40s %9.1f µs %7.0f GB/s (%3.0f%% of copy)", name, us(per), gbs, 100*gbs/copyGBs)
	}
	timeIt("ReLU 205 MB", 8*big, func() error { return d.ReLU(x, y, big) })
	timeIt("Add+ReLU 205 MB", 12*big, func() error { return d.Add(x, dy, y, big, true) })
	timeIt("ReLUBackward acc 205 MB", 16*big, func() error { return d.ReLUBackward(x, dy, dx, big, true) })
	timeIt("Copy odd n 205 MB", 8*(big-1), func() error { return d.Copy(y, x, big-1) })
	for _, s := range []BNShape{{64, 64, 112 * 112}, {64, 256, 56 * 56}, {64, 2048, 49}, {64, 512, 28 * 28}} {
		c := s.C
		g, b, rm, rv := buf(c, 0.5, 1.5), buf(c, -1, 1), buf(c, -1, 1), buf(c, 0.5, 2)
		sm, sr, dg, db := buf(c, 0, 1), buf(c, 0, 1), buf(c, 0, 1), buf(c, 0, 1)
		n := s.Len()
		timeIt(fmt.Sprint("BN train fwd+ReLU ", s), 12*n, func() error {
			return d.BatchNormTrain(s, x, g, b, rm, rv, y, sm, sr, 0.1, 1e-5, true)
		})
		timeIt(fmt.Sprint("BN eval fwd ", s), 8*n, func() error { return d.BatchNormEval(s, x, g, b, rm, rv, y, 1e-5, true) })
		timeIt(fmt.Sprint("BN backward+ReLU ", s), 28*n, func() error {
			return d.BatchNormBackward(s, x, y, dy, g, sm, sr, dx, dg, db, true, false, false)
		})
		e.free(g, b, rm, rv, sm, sr, dg, db)
	}
	gate := buf(64*256, 0, 1)
	timeIt("ScalePlanes 64x256x56x56", 8*64*256*56*56, func() error { return d.ScalePlanes(x, gate, y, 64*256, 56*56) })
	timeIt("ScalePlanesBackward dx+dg 64x256x56x56", 16*64*256*56*56, func() error {
		return d.ScalePlanesBackward(x, gate, dy, dx, gate, 64*256, 56*56, false, false)
	})
	timeIt("SumBias 64x256x56x56", 4*64*256*56*56, func() error { return d.SumBias(dy, gate, 64, 256, 56*56, false) })
	const params = 25_000_000
	timeIt("SGDStep nesterov 25M", 20*params, func() error { return d.SGDStep(x, dy, y, params, 0.1, 1e-4, 0.9, true, false) })
	start := time.Now()
	k, err := d.FirstNonFinite([]*Buffer{x, dy, y}, []int{params, params, params})
	e.ok(err)
	t.Logf("%-40s %9.1f µs (one call, with its copy back), found %d", "FirstNonFinite 3×25M", us(time.Since(start)), k)
	e.free(x, y, dy, dx, gate)
}
