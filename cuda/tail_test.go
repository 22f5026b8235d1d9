package cuda

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// tailFixture is a block tail over fresh device buffers (zeros) on the
// fake driver, for the plan and argument tests.
type tailFixture struct {
	d                                  *Device
	drv                                *fakeDriver
	tail                               *Tail
	ws                                 *TailWorkspace
	grads                              *TailGrads
	x, short, out, dout, dx, dshort, b *Buffer
}

func newTailFixture(t *testing.T, s Shape, gated bool) *tailFixture {
	t.Helper()
	d, drv, _ := openFake(t)
	f := &tailFixture{d: d, drv: drv}
	bufs, err := allocFloats(d, s.C, s.C, s.C, s.C, s.Len(), s.Len(), s.Len(), s.Len(), s.Len(), s.Len(), 3)
	if err != nil {
		t.Fatal(err)
	}
	bn := BN{Gamma: bufs[0], Beta: bufs[1], RunningMean: bufs[2], RunningVar: bufs[3], Eps: 1e-5, Momentum: 0.1}
	f.x, f.short, f.out, f.dout, f.dx, f.dshort, f.b = bufs[4], bufs[5], bufs[6], bufs[7], bufs[8], bufs[9], bufs[10]
	var l *SRM
	if gated {
		if l, err = d.NewSRM(s.C); err != nil {
			t.Fatal(err)
		}
	}
	if f.tail, err = d.BlockTail(s.C, bn, l); err != nil {
		t.Fatal(err)
	}
	if f.ws, err = f.tail.NewWorkspace(s); err != nil {
		t.Fatal(err)
	}
	if f.grads, err = f.tail.NewGrads(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *tailFixture) backward(dx, dshort *Buffer, accShort bool) (*Plan, error) {
	return f.tail.Backward(f.x, f.out, f.dout, dx, dshort, f.ws, f.grads, false, accShort, false)
}

func TestTailPlans(t *testing.T) {
	for _, c := range []struct {
		s     Shape
		gated bool
		want  string
	}{
		{Shape{64, 8, 56, 56}, true, "srm_tail_stats_block4 srm_tail_fwd srm_tail_apply_block4"},
		{Shape{4, 8, 7, 7}, false, "srm_tail_stats_g16f4 srm_tail_fwd srm_tail_apply_g16f4"},
		{Shape{4, 8, 8, 8}, true, "srm_tail_stats_g4v4 srm_tail_fwd srm_tail_apply_g4v4"},
		{Shape{4, 3, 33, 33}, true, "srm_tail_stats_loop srm_tail_fwd srm_tail_apply_loop"},
	} {
		f := newTailFixture(t, c.s, c.gated)
		p, err := f.tail.Forward(f.x, f.short, f.out, f.ws)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(p.Kernels(), " "); got != c.want {
			t.Errorf("%v forward: %q, want %q", c.s, got, c.want)
		}
	}

	// Backward: dx reads short's gradient where it was written alone, masks
	// dout again by out where it was added or not written, and is skipped
	// when x needs none. The last launch's second and third arguments are
	// the gradient it reads and the mask (0: none).
	f := newTailFixture(t, Shape{3, 4, 7, 7}, true)
	for _, c := range []struct {
		name       string
		dx, dshort *Buffer
		accShort   bool
		kernels    int
		grad, mask *Buffer
	}{
		{"both", f.dx, f.dshort, false, 3, f.dshort, nil},
		{"short accumulated", f.dx, f.dshort, true, 3, f.dout, f.out},
		{"x only", f.dx, nil, false, 3, f.dout, f.out},
		{"short only", nil, f.dshort, false, 2, nil, nil},
	} {
		p, err := f.backward(c.dx, c.dshort, c.accShort)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := []string{"srm_tail_bwd_sums_g16f4", "srm_tail_bwd", "srm_tail_dx_g16f4"}[:c.kernels]
		if got := p.Kernels(); !slices.Equal(got, want) {
			t.Errorf("%s: kernels %v, want %v", c.name, got, want)
			continue
		}
		if c.grad == nil {
			continue
		}
		args := p.launches[2].args
		var mask uint64
		if c.mask != nil {
			mask = c.mask.ptr
		}
		if args[1] != c.grad.ptr || args[2] != mask {
			t.Errorf("%s: dx reads %#x masked by %#x, want %#x and %#x", c.name, args[1], args[2], c.grad.ptr, mask)
		}
	}
}

func TestTailArgumentErrors(t *testing.T) {
	s := Shape{3, 4, 7, 7}
	f := newTailFixture(t, s, true)
	plain := newTailFixture(t, s, false)
	other := newTailFixture(t, Shape{3, 5, 7, 7}, true)
	l, err := f.d.NewSRM(5)
	if err != nil {
		t.Fatal(err)
	}
	noSRMGrads := &TailGrads{Gamma: f.grads.Gamma, Beta: f.grads.Beta}
	for name, err := range map[string]error{
		"no channels":          second(f.d.BlockTail(0, f.tail.BN, nil)),
		"SRM of other width":   second(f.d.BlockTail(4, f.tail.BN, l)),
		"SRM of other device":  second(other.d.BlockTail(5, other.tail.BN, l)),
		"short BN buffer":      second(f.d.BlockTail(4, BN{Gamma: f.b, Beta: f.b, RunningMean: f.b, RunningVar: f.b}, nil)),
		"workspace channels":   second(f.tail.NewWorkspace(Shape{3, 5, 7, 7})),
		"SRM batch of 1":       second(f.tail.NewWorkspace(Shape{1, 4, 7, 7})),
		"SRM 1x1 planes":       second(f.tail.NewWorkspace(Shape{3, 4, 1, 1})),
		"one value a channel":  second(plain.tail.NewWorkspace(Shape{1, 4, 1, 1})),
		"out over x":           second(f.tail.Forward(f.x, f.short, f.x, f.ws)),
		"out over short":       second(f.tail.Forward(f.x, f.short, f.short, f.ws)),
		"short map":            second(f.tail.Forward(f.x, f.b, f.out, f.ws)),
		"no workspace":         second(f.tail.Forward(f.x, f.short, f.out, nil)),
		"plain workspace":      second(f.tail.Forward(f.x, f.short, f.out, plain.ws)),
		"dx over dout":         second(f.backward(f.dout, f.dshort, false)),
		"dshort over out":      second(f.backward(f.dx, f.out, false)),
		"dx over dshort":       second(f.backward(f.dx, f.dx, false)),
		"no gradients":         second(f.tail.Backward(f.x, f.out, f.dout, f.dx, f.dshort, f.ws, nil, false, false, false)),
		"no SRM gradients":     second(f.tail.Backward(f.x, f.out, f.dout, f.dx, f.dshort, f.ws, noSRMGrads, false, false, false)),
		"gradients of 3":       second(plain.tail.Backward(plain.x, plain.out, plain.dout, nil, nil, plain.ws, &TailGrads{Gamma: plain.b, Beta: plain.b}, false, false, false)),
		"buffer of other card": second(f.tail.Forward(other.x, f.short, f.out, f.ws)),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := plain.tail.NewWorkspace(Shape{1, 4, 1, 2}); err != nil {
		t.Errorf("plain tail on one sample of two values: %v", err)
	}
}

// tailShapes cover each plane geometry of the ResNets and the odd ones:
// g2f4 (1x1, the planes of a BatchNorm of (N, C) inputs), g4f4 (3x3, with
// the batch wider than a warp in the per-channel kernels), g16f4 (7x7,
// ResNet-50's last stage), g4v4 (8x8, a CIFAR ResNet's), g16v4 (14x14),
// g32v8 forward and block1 backward (32x32), block4 (56x56), and the
// loop's scalar (33x33) and float4 (96x96) paths.
var tailShapes = []Shape{{4, 3, 1, 1}, {37, 2, 3, 3}, {3, 4, 7, 7}, {3, 4, 8, 8}, {3, 4, 14, 14}, {2, 3, 32, 32},
	{3, 2, 56, 56}, {3, 2, 33, 33}, {2, 2, 96, 96}}

// TestTailEmulated runs the block tail's plans, with and without SRM,
// writing and accumulating their gradients, through the fake driver with
// the CPU emulator executing srm.cu, against the float64 composition of
// BatchNorm, SRM, the shortcut and the ReLU.
func TestTailEmulated(t *testing.T) {
	emu := emulator(t)
	shapes := tailShapes
	if testing.Short() {
		shapes = []Shape{{4, 3, 1, 1}, {3, 4, 7, 7}, {3, 2, 56, 56}, {3, 2, 33, 33}}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range shapes {
		for _, gated := range []bool{true, false} {
			if gated && s.PlaneSize() < 2 {
				continue // SRM's unbiased std needs two values a plane
			}
			for _, acc := range []bool{false, true} {
				want := 7 // out, BN's running statistics, dx, dshort, BN's dgamma and dbeta
				if gated {
					want = 13 // and the gates, SRM's running statistics and gradients
				}
				t.Run(fmt.Sprintf("%v %s %s", s, tailKind(gated), accumulation(acc)), func(t *testing.T) {
					emulatedCase(t, emu, want, func(d *Device) ([]CheckResult, error) { return checkTailCase(d, s, gated, acc, geometryFor, rng) })
				})
			}
		}
	}
}

// TestTailBackwardSkips runs the emulated backward pass with short's
// gradient not wanted (dx then masks dout again) and with x's not wanted,
// and expects the gradients computed to be the same bits as when both are.
func TestTailBackwardSkips(t *testing.T) {
	emu := emulator(t)
	s := Shape{3, 4, 8, 8}
	f := newTailFixture(t, s, true)
	f.drv.emulator = emu
	rng := rand.New(rand.NewPCG(9, 10))
	for _, b := range []*Buffer{f.x, f.short, f.dout, f.tail.BN.Gamma, f.tail.BN.Beta, f.tail.SRM.CFC} {
		host := make([]float32, b.Len())
		if err := fillRandom(b, host, 1, rng); err != nil {
			t.Fatal(err)
		}
	}
	fwd, err := f.tail.Forward(f.x, f.short, f.out, f.ws)
	if err != nil {
		t.Fatal(err)
	}
	if err := run(f.d, fwd, f.out); err != nil {
		t.Fatal(err)
	}
	// gradients runs the backward pass into the given buffers (fresh NaNs)
	// and returns dx, dshort and the BatchNorm's and SRM's dgamma.
	gradients := func(dx, dshort *Buffer) [4][]float32 {
		t.Helper()
		p, err := f.backward(dx, dshort, false)
		if err != nil {
			t.Fatal(err)
		}
		outs := []*Buffer{f.grads.Gamma, f.grads.Beta, f.grads.SRM.CFC, f.grads.SRM.Gamma, f.grads.SRM.Beta}
		for _, b := range []*Buffer{dx, dshort} {
			if b != nil {
				outs = append(outs, b)
			}
		}
		if err := run(f.d, p, outs...); err != nil {
			t.Fatal(err)
		}
		var got [4][]float32
		for i, b := range []*Buffer{dx, dshort, f.grads.Gamma, f.grads.SRM.Gamma} {
			if b != nil {
				if got[i], err = download(b, b.Len()); err != nil {
					t.Fatal(err)
				}
			}
		}
		return got
	}
	both := gradients(f.dx, f.dshort)
	xOnly := gradients(f.dx, nil)
	shortOnly := gradients(nil, f.dshort)
	for i, name := range []string{"dx", "dshort", "BN dgamma", "SRM dgamma"} {
		for _, c := range []struct {
			name string
			got  []float32
		}{{"x only", xOnly[i]}, {"short only", shortOnly[i]}} {
			if c.got != nil && !slices.Equal(c.got, both[i]) {
				t.Errorf("%s: %s differs from the run with both gradients", c.name, name)
			}
		}
	}
	if xOnly[0] == nil || shortOnly[1] == nil {
		t.Error("a wanted gradient was not read back")
	}
}
