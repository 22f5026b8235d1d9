package cuda

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestGeometry(t *testing.T) {
	for _, c := range []struct {
		h, w, planes int
		want         geometry
	}{
		{1, 2, 10, geometry{"warp", 1, 2, 256}},
		{7, 7, 64 * 2048, geometry{"warp", 2, 64 * 2048 / 8, 256}},
		{14, 14, 64 * 1024, geometry{"warp", 8, 64 * 1024 / 8, 256}},
		{16, 16, 9, geometry{"warp", 8, 2, 256}},
		{28, 28, 64 * 512, geometry{"block", 1, 64 * 512, 224}},
		{32, 32, 128 * 64, geometry{"block", 1, 128 * 64, 256}},
		{56, 56, 64 * 256, geometry{"block", 4, 64 * 256, 224}},
		{90, 90, 3, geometry{"block", 8, 3, 256}},
		{33, 33, 3, geometry{"loop", 0, 3, 256}},
		{96, 96, 3, geometry{"loop", 0, 3, 256}},
	} {
		if got := geometryFor(c.h*c.w, c.planes); got != c.want {
			t.Errorf("%dx%d: %+v, want %+v", c.h, c.w, got, c.want)
		}
	}
}

func TestSRMPlans(t *testing.T) {
	d, _, _ := openFake(t)
	l, err := d.NewSRM(8)
	if err != nil {
		t.Fatal(err)
	}
	s := Shape{4, 8, 56, 56}
	x, _ := d.AllocFloat32(s.Len())
	dx, _ := d.AllocFloat32(s.Len())
	ws, _ := l.NewWorkspace(s)
	g, _ := l.NewGrads()
	eval, err := l.ForwardEval(x, x, nil, s)
	if err != nil {
		t.Fatal(err)
	}
	train, err := l.ForwardTrain(x, x, ws)
	if err != nil {
		t.Fatal(err)
	}
	back, err := l.Backward(x, dx, dx, ws, g)
	if err != nil {
		t.Fatal(err)
	}
	both, err := train.Then(back)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    *Plan
		want string
	}{
		{eval, "srm_eval_block4"},
		{both, "srm_stats_block4 srm_train_gate srm_scale_block4 srm_bwd_dot_block4 srm_bwd_gate srm_bwd_dx_block4"},
	} {
		if got := strings.Join(c.p.Kernels(), " "); got != c.want {
			t.Errorf("kernels %q, want %q", got, c.want)
		}
	}

	small := Shape{4, 8, 1, 1}
	wsSmall, _ := l.NewWorkspace(Shape{1, 8, 7, 7})
	for name, err := range map[string]error{
		"1x1 planes":     second(l.ForwardEval(x, x, nil, small)),
		"wrong channels": second(l.ForwardEval(x, x, nil, Shape{4, 9, 7, 7})),
		"batch of 1":     second(l.ForwardTrain(x, x, wsSmall)),
		"short buffer":   second(l.ForwardEval(x, ws.Mean, nil, s)),
		"dx over x":      second(l.Backward(x, dx, x, ws, g)),
		"other device": func() error {
			d2, _, _ := openFake(t)
			_, err := train.Then(&Plan{dev: d2})
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := l.NewWorkspace(Shape{4, 9, 7, 7}); err == nil {
		t.Error("workspace with the wrong channel count accepted")
	}
}

func second[T any](_ T, err error) error { return err }

// TestKernelsEmulated runs the SRM plans end to end through the host code
// and the fake driver, with the CPU emulator executing srm.cu itself, and
// compares every output with the float64 reference. The shapes cover each
// kernel variant the geometry can pick, partial blocks of warps, and float4
// and scalar paths. Batches are at least 3: with 2, BatchNorm maps z to ±1
// whatever z is, so dz vanishes and the CFC gradient is pure rounding.
func TestKernelsEmulated(t *testing.T) {
	emu := emulator(t)
	shapes := []Shape{
		{3, 5, 1, 2},    // warp1, the smallest plane
		{3, 5, 5, 5},    // warp1
		{3, 5, 7, 7},    // warp2
		{4, 4, 10, 10},  // warp4
		{3, 5, 14, 14},  // warp8
		{3, 5, 28, 28},  // block1
		{3, 3, 32, 40},  // block2
		{3, 3, 56, 56},  // block4
		{3, 2, 64, 100}, // block8
		{3, 3, 33, 33},  // loop, scalar
		{3, 2, 96, 96},  // loop, float4 streaming kernels
		{37, 2, 3, 3},   // a batch larger than a warp in the per-channel kernels
	}
	if testing.Short() {
		shapes = []Shape{{3, 5, 7, 7}, {3, 3, 56, 56}, {3, 3, 33, 33}}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range shapes {
		t.Run(s.String(), func(t *testing.T) {
			emulatedCase(t, emu, 13, func(d *Device) ([]CheckResult, error) { return checkSRMCase(d, s, rng) })
		})
	}
}

// emulatedCase runs a check case on the fake driver with the emulator
// executing the kernels, and expects want quantities, each within its
// limit.
func emulatedCase(t *testing.T, emu string, want int, check func(d *Device) ([]CheckResult, error)) {
	t.Helper()
	d, drv, _ := openFake(t)
	drv.emulator = emu
	res, err := check(d)
	if drv.emuErr != nil {
		t.Fatal(drv.emuErr)
	}
	if err != nil {
		t.Fatal(err)
	}
	var worst []string
	for _, r := range res {
		if !r.OK() {
			t.Errorf("%s: relative error %.3g > %.0e", r.Quantity, r.RelErr, r.Limit)
		}
		worst = append(worst, fmt.Sprintf("%s %.1e", r.Quantity, r.RelErr))
	}
	t.Log(strings.Join(worst, ", "))
	if len(res) != want {
		t.Errorf("%d quantities checked, want %d", len(res), want)
	}
}

func TestCheckResultString(t *testing.T) {
	r := CheckResult{Shape: Shape{2, 3, 4, 5}, Quantity: "eval out", Kernel: "srm_eval_warp1", RelErr: 2e-6, Limit: 1e-5}
	if got := fmt.Sprint(r); !strings.Contains(got, "2x3x4x5") || !strings.Contains(got, "ok") {
		t.Errorf("%q", got)
	}
}

// TestCheckEmulated runs Check, the body of srmlab cuda-check, end to end on
// the emulated kernels. The fake driver's events count launches, so the
// timings are launch counts in milliseconds.
func TestCheckEmulated(t *testing.T) {
	emu := emulator(t)
	d, drv, _ := openFake(t)
	drv.emulator = emu
	var out strings.Builder
	rep, err := Check(context.Background(), d, CheckOptions{Shapes: []Shape{{3, 4, 8, 8}}, Warmup: 1, Reps: 3, CheckLarge: true,
		checkShapes: []Shape{{3, 5, 7, 7}}}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// SRM: 13 quantities on each of the two shapes. The block tail: with
	// SRM (13) and plain (7) on the checked shape, with SRM only on the
	// timed one.
	if rep.Failed() != 0 || len(rep.Checks) != 26+33 || len(rep.Timings) != 3+4 {
		t.Fatalf("%d failed of %d checks, %d timings\n%s", rep.Failed(), len(rep.Checks), len(rep.Timings), out.String())
	}
	if tm := rep.Timings[2]; tm.Op != "train_fwd_bwd" || tm.MedianUS != 6000 || tm.Bytes != 8*4*3*4*64 || len(tm.Kernels) != 6 {
		t.Errorf("timing %+v", tm)
	}
	if tm := rep.Timings[4]; tm.Op != "srm_tail_bwd" || tm.MedianUS != 3000 || tm.Bytes != 7*4*3*4*64 || len(tm.Kernels) != 3 {
		t.Errorf("timing %+v", tm)
	}
	for _, want := range []string{"all 26 checks passed", "all 33 checks passed", "copy kernel:", "train_fwd_bwd",
		"srm_stats_warp2,srm_train_gate,srm_scale_warp2", "== block tail against float64", "3x5x7x7        plain accumulate ",
		"== block tail timings", "plain_tail_fwd", "srm_tail_stats_warp2,srm_tail_fwd,srm_tail_apply_warp2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}
