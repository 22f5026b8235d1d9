package cuda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestGeometry(t *testing.T) {
	group := func(lanes int, vec bool, regs, grid int) geometry {
		return geometry{kind: "group", lanes: lanes, vec: vec, regs: regs, grid: grid, block: 256, reverse: true}
	}
	block := func(regs, grid, threads int) geometry {
		return geometry{kind: "block", regs: regs, grid: grid, block: threads, reverse: true}
	}
	loop := geometry{kind: "loop", grid: 3, block: 256, reverse: true}
	for _, c := range []struct {
		h, w, planes int
		fwd, bwd     geometry // bwd: the same as fwd when unset
	}{
		{1, 2, 10, group(2, false, 4, 1), geometry{}},
		{2, 2, 300, group(2, true, 4, 3), geometry{}},
		{3, 3, 300, group(4, false, 4, 5), geometry{}},
		{5, 5, 65, group(8, false, 4, 3), geometry{}},
		{7, 7, 64 * 2048, group(16, false, 4, 64*2048/16), geometry{}},
		{9, 9, 17, group(32, false, 4, 3), geometry{}},
		{10, 10, 64, group(8, true, 4, 2), geometry{}},
		{13, 13, 9, group(32, false, 8, 2), geometry{}},
		{14, 14, 64 * 1024, group(16, true, 4, 64*1024/16), geometry{}},
		{16, 16, 33, group(16, true, 4, 3), geometry{}},
		{20, 20, 17, group(32, true, 4, 3), geometry{}},
		{28, 28, 64 * 512, group(32, true, 8, 64*512/8), block(1, 64*512, 224)},
		{32, 32, 128 * 64, group(32, true, 8, 128*64/8), block(1, 128*64, 256)},
		{32, 40, 3, block(2, 3, 160), geometry{}},
		{56, 56, 64 * 256, block(4, 64*256, 224), geometry{}},
		{90, 90, 3, block(8, 3, 256), geometry{}},
		{17, 17, 3, loop, geometry{}},
		{33, 33, 3, loop, geometry{}},
		{96, 96, 3, loop, geometry{}},
	} {
		if c.bwd == (geometry{}) {
			c.bwd = c.fwd
		}
		if got := geometryFor(c.h*c.w, c.planes, false); got != c.fwd {
			t.Errorf("%dx%d forward: %+v, want %+v", c.h, c.w, got, c.fwd)
		}
		if got := geometryFor(c.h*c.w, c.planes, true); got != c.bwd {
			t.Errorf("%dx%d backward: %+v, want %+v", c.h, c.w, got, c.bwd)
		}
	}
	for _, c := range []struct {
		h, w int
		want string
	}{
		{7, 7, "g16f4 g32f2"},
		{14, 14, "g16v4 g32f8"},
		{28, 28, "g32v8 block1"},
		{32, 32, "g32v8 block1"},
		{56, 56, "block4"},
		{33, 33, "loop"},
	} {
		var tags []string
		for _, g := range geometryVariants(c.h*c.w, 100) {
			if g.reverse {
				t.Errorf("%dx%d: variant %s in reverse order", c.h, c.w, g.tag())
			}
			tags = append(tags, g.tag())
		}
		if got := strings.Join(tags, " "); got != c.want {
			t.Errorf("%dx%d variants: %s, want %s", c.h, c.w, got, c.want)
		}
	}
}

// TestGeometryKernels checks that every layout the host can launch, by
// geometryFor or as a timed variant, is in srm.cu's SRM_LAYOUTS list, whose
// kernels ptxcheck.sh and the emulator check, and that checkShapes covers
// each of geometryFor's.
func TestGeometryKernels(t *testing.T) {
	listed := srmLayouts(t)
	picked := map[string]bool{}
	for L := 2; L <= 100*100; L++ {
		picks := []geometry{geometryFor(L, 1000, false), geometryFor(L, 1000, true)}
		for _, g := range append(geometryVariants(L, 1000), picks...) {
			if !listed[g.tag()] {
				t.Fatalf("L = %d: layout %s is not in srm.cu's SRM_LAYOUTS", L, g.tag())
			}
		}
		for _, g := range picks {
			picked[g.tag()] = true
		}
	}
	for _, s := range checkShapes {
		delete(picked, geometryFor(s.PlaneSize(), s.Planes(), false).tag())
		delete(picked, geometryFor(s.PlaneSize(), s.Planes(), true).tag())
	}
	for tag := range picked {
		t.Errorf("checkShapes has no shape for geometryFor's layout %s", tag)
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

// TestTrainingPlans checks the kernels of SRM's and the SRM tail's plans
// where the layouts of the forward and backward passes differ and where
// they agree.
func TestTrainingPlans(t *testing.T) {
	for _, c := range []struct {
		s    Shape
		want string // SRM's eval, training forward, backward; the SRM tail's forward, backward
	}{
		{Shape{4, 8, 7, 7}, "srm_eval_g16f4 | srm_stats_g16f4 srm_train_gate srm_scale_g16f4 | srm_bwd_dot_g16f4 srm_bwd_gate srm_bwd_dx_g16f4 | " +
			"srm_tail_stats_g16f4 srm_tail_fwd srm_tail_apply_g16f4 | srm_tail_bwd_sums_g16f4 srm_tail_bwd srm_tail_dx_g16f4"},
		{Shape{4, 8, 28, 28}, "srm_eval_g32v8 | srm_stats_g32v8 srm_train_gate srm_scale_g32v8 | srm_bwd_dot_block1 srm_bwd_gate srm_bwd_dx_block1 | " +
			"srm_tail_stats_g32v8 srm_tail_fwd srm_tail_apply_g32v8 | srm_tail_bwd_sums_block1 srm_tail_bwd srm_tail_dx_block1"},
		{Shape{4, 8, 56, 56}, "srm_eval_block4 | srm_stats_block4 srm_train_gate srm_scale_block4 | srm_bwd_dot_block4 srm_bwd_gate srm_bwd_dx_block4 | " +
			"srm_tail_stats_block4 srm_tail_fwd srm_tail_apply_block4 | srm_tail_bwd_sums_block4 srm_tail_bwd srm_tail_dx_block4"},
	} {
		f := newTailFixture(t, c.s, true)
		l := f.tail.SRM
		ws, err := l.NewWorkspace(c.s)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := l.NewGrads()
		var names []string
		for _, p := range []func() (*Plan, error){
			func() (*Plan, error) { return l.ForwardEval(f.x, f.out, nil, c.s) },
			func() (*Plan, error) { return l.ForwardTrain(f.x, f.out, ws) },
			func() (*Plan, error) { return l.Backward(f.x, f.dout, f.dx, ws, g) },
			func() (*Plan, error) { return f.tail.Forward(f.x, f.short, f.out, f.ws) },
			func() (*Plan, error) { return f.backward(f.dx, f.dshort, false) },
		} {
			plan, err := p()
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, strings.Join(plan.Kernels(), " "))
		}
		if got := strings.Join(names, " | "); got != c.want {
			t.Errorf("%v:\n got %s\nwant %s", c.s, got, c.want)
		}
	}
}

// TestKernelsEmulated runs the SRM plans end to end through the host code
// and the fake driver, with the CPU emulator executing srm.cu itself, and
// compares every output with the float64 reference. The shapes cover each
// kernel variant the geometry can pick, partial blocks and warps, and
// float4 and scalar paths. Batches are at least 3: with 2, BatchNorm maps z
// to ±1 whatever z is, so dz vanishes and the CFC gradient is pure
// rounding.
func TestKernelsEmulated(t *testing.T) {
	emu := emulator(t)
	shapes := []Shape{
		{3, 5, 1, 2},    // g2f4, the smallest plane
		{3, 5, 5, 5},    // g8f4
		{3, 5, 7, 7},    // g16f4
		{3, 7, 8, 8},    // g4v4
		{4, 4, 10, 10},  // g8v4
		{3, 5, 14, 14},  // g16v4
		{3, 5, 28, 28},  // g32v8 forward, block1 backward
		{3, 3, 32, 40},  // block2
		{3, 3, 56, 56},  // block4
		{3, 2, 64, 100}, // block8
		{3, 3, 33, 33},  // loop, scalar
		{3, 2, 96, 96},  // loop, float4 streaming kernels
		{37, 2, 3, 3},   // g4f4; a batch larger than a warp in the per-channel kernels
	}
	if testing.Short() {
		shapes = []Shape{{3, 5, 7, 7}, {3, 3, 56, 56}, {3, 3, 33, 33}}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range shapes {
		t.Run(s.String(), func(t *testing.T) {
			emulatedCase(t, emu, 13, func(d *Device) ([]CheckResult, error) { return checkSRMCase(d, s, geometryFor, rng) })
		})
	}
}

// TestVariantsEmulated runs every layout in srm.cu's SRM_LAYOUTS, as the
// variants cuda-check times, with the second passes in reverse order,
// through the emulator against the float64 reference: SRM, and the SRM
// block tail accumulating its gradients. 3 x 5 planes leave most of a block
// of groups past the last plane.
func TestVariantsEmulated(t *testing.T) {
	emu := emulator(t)
	planes := [][2]int{{1, 2}, {3, 3}, {4, 4}, {5, 5}, {7, 7}, {9, 9}, {13, 13}, {8, 8}, {10, 10}, {14, 14}, {20, 20}, {28, 28},
		{32, 40}, {56, 56}, {64, 100}}
	if testing.Short() {
		planes = [][2]int{{7, 7}, {14, 14}}
	}
	rng := rand.New(rand.NewPCG(11, 12))
	covered := map[string]bool{}
	for _, hw := range planes {
		s := Shape{3, 5, hw[0], hw[1]}
		for _, g := range geometryVariants(s.PlaneSize(), s.Planes()) {
			g.reverse = true
			covered[g.tag()] = true
			pick := func(int, int, bool) geometry { return g }
			t.Run(fmt.Sprintf("%v %s", s, g.tag()), func(t *testing.T) {
				emulatedCase(t, emu, 13, func(d *Device) ([]CheckResult, error) { return checkSRMCase(d, s, pick, rng) })
				emulatedCase(t, emu, 13, func(d *Device) ([]CheckResult, error) { return checkTailCase(d, s, true, true, pick, rng) })
			})
		}
	}
	if testing.Short() {
		return
	}
	for tag := range srmLayouts(t) {
		if !covered[tag] && tag != "loop" {
			t.Errorf("layout %s not run", tag)
		}
	}
}

// TestReverseOrderEmulated runs SRM's training passes and the block tail's
// with the second passes in forward and in reverse plane order, and expects
// the same bits: the order only changes which block computes a plane.
func TestReverseOrderEmulated(t *testing.T) {
	emu := emulator(t)
	for _, s := range []Shape{{3, 5, 7, 7}, {3, 3, 14, 14}, {3, 2, 56, 56}, {3, 2, 33, 33}} {
		t.Run(s.String(), func(t *testing.T) {
			var runs [2][][]float32
			for i, rev := range []bool{false, true} {
				pick := func(L, planes int, backward bool) geometry {
					g := geometryFor(L, planes, backward)
					g.reverse = rev
					return g
				}
				runs[i] = trainingOutputs(t, emu, s, pick)
			}
			for i := range runs[0] {
				if !slices.Equal(runs[0][i], runs[1][i]) {
					t.Errorf("output %d differs between the orders", i)
				}
			}
		})
	}
}

// trainingOutputs runs SRM's training forward and backward and the SRM
// block tail's forward and backward (accumulating into dx and dshort) on
// fixed random inputs of shape s, emulated, and returns their outputs: out,
// dx, the SRM's dcfc, the tail's out, dx, dshort and dgamma.
func trainingOutputs(t *testing.T, emu string, s Shape, pick picker) [][]float32 {
	t.Helper()
	d, drv, _ := openFake(t)
	drv.emulator = emu
	f, err := newTimedOps(d, s, rand.New(rand.NewPCG(13, 14)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.free()
	var got [][]float32
	keep := func(bs ...*Buffer) {
		for _, b := range bs {
			v, err := download(b, b.Len())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
	}
	exec := func(p *Plan, err error) {
		t.Helper()
		if err == nil {
			err = errors.Join(d.Run(p), d.Synchronize())
		}
		if err != nil {
			t.Fatal(err)
		}
		if drv.emuErr != nil {
			t.Fatal(drv.emuErr)
		}
	}
	exec(f.plan("train_fwd_bwd", pick))
	keep(f.out, f.dx, f.grads.CFC)
	tt := f.tails["srm_tail_"]
	exec(tt.t.forward(f.x, f.short, f.out, tt.ws, pick))
	exec(tt.t.backward(f.x, f.out, f.dout, f.dx, f.dshort, tt.ws, tt.grads, true, true, false, pick))
	keep(f.out, f.dx, f.dshort, tt.grads.Gamma)
	return got
}

// srmLayouts is the set of layout tags of srm.cu's SRM_LAYOUTS, and
// "loop".
func srmLayouts(t *testing.T) map[string]bool {
	t.Helper()
	src, err := kernelFS.ReadFile("kernels/srm.cu")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{"loop": true}
	list := string(src) + "\n\n"
	list = list[strings.Index(list, "#define SRM_LAYOUTS"):]
	list = list[:strings.Index(list, "\n\n")]
	for _, f := range strings.Split(list, "X(")[1:] {
		listed[f[:strings.Index(f, ",")]] = true
	}
	return listed
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
	r := CheckResult{Shape: Shape{2, 3, 4, 5}, Quantity: "eval out", Kernel: "srm_eval_g2f8", RelErr: 2e-6, Limit: 1e-5}
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
		Variants: true, checkShapes: []Shape{{3, 5, 7, 7}}}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// SRM: 13 quantities on each of the two shapes. The block tail: with
	// SRM (13) and plain (7) on the checked shape, with SRM only on the
	// timed one. The variants of 8x8 planes (g4v4, g32f2): SRM, the tail
	// with SRM and plain; timed in both orders, eval forward only in
	// forward order.
	if rep.Failed() != 0 || len(rep.Checks) != 26+33+2*33 || len(rep.Timings) != 3+4 || len(rep.Variants) != 2*7 {
		t.Fatalf("%d failed of %d checks, %d timings, %d variant timings\n%s", rep.Failed(), len(rep.Checks), len(rep.Timings),
			len(rep.Variants), out.String())
	}
	if tm := rep.Timings[2]; tm.Op != "train_fwd_bwd" || tm.MedianUS != 6000 || tm.Bytes != 8*4*3*4*64 || len(tm.Kernels) != 6 {
		t.Errorf("timing %+v", tm)
	}
	if tm := rep.Timings[4]; tm.Op != "srm_tail_bwd" || tm.MedianUS != 3000 || tm.Bytes != 7*4*3*4*64 || len(tm.Kernels) != 3 {
		t.Errorf("timing %+v", tm)
	}
	if tm := rep.Variants[len(rep.Variants)-3]; tm.Variant != "old g32f2 rev" || tm.Op != "train_fwd_bwd" ||
		tm.Kernels[5] != "srm_bwd_dx_g32f2" || tm.MedianUS != 6000 {
		t.Errorf("variant timing %+v", tm)
	}
	// Each kernel's time: the fake's events count launches, 1 ms each.
	if rep.LaunchGapUS != 1000 {
		t.Errorf("launch gap %v us, want the fake's 1000", rep.LaunchGapUS)
	}
	if len(rep.Launches) != len(launchOps) {
		t.Errorf("%d kernel breakdowns, want %d", len(rep.Launches), len(launchOps))
	}
	for _, l := range rep.Launches {
		if len(l.KernelUS) != len(l.Kernels) || l.MedianUS != 1000*float64(len(l.Kernels)) || slices.ContainsFunc(l.KernelUS, func(v float64) bool { return v != 1000 }) {
			t.Errorf("kernel breakdown %+v", l)
		}
		// The fake reports 32 registers a kernel: 8 blocks of 256 threads an SM.
		if len(l.KernelUse) != len(l.Kernels) || slices.ContainsFunc(l.KernelUse, func(u KernelUse) bool { return u != KernelUse{32, 0, 8} }) {
			t.Errorf("kernel use %+v", l)
		}
	}
	for _, want := range []string{"all 26 checks passed", "all 33 checks passed", "all 66 checks passed", "copy kernel:", "train_fwd_bwd",
		"srm_stats_g4v4,srm_train_gate,srm_scale_g4v4", "== block tail against float64", "3x5x7x7        plain accumulate ",
		"== block tail timings", "plain_tail_fwd", "launch gap: a copy of 4 floats, timed the same way, takes 1000.0 us", "srm_tail_stats_g4v4,srm_tail_fwd,srm_tail_apply_g4v4",
		"8x13x8x8       g32f2  rev SRM   tail accumulate 13 quantities", "== plane-kernel variants:", "3x4x8x8        new g4v4 rev*",
		"3x4x8x8        old g32f2 fwd  ", "3x4x8x8        fastest                 new g4v4 fwd      new g4v4 fwd      new g4v4 fwd      new g4v4 fwd",
		"3x4x8x8        srm_tail_bwd     3000.0 = srm_tail_bwd_sums_g4v4 1000.0 [32 reg, 8/SM] + srm_tail_bwd 1000.0 [32 reg, 8/SM] + srm_tail_dx_g4v4 1000.0 [32 reg, 8/SM]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}
