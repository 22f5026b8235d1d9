package cuda

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Shape is the shape of an NCHW float32 tensor: batch, channels, height,
// width.
type Shape struct{ N, C, H, W int }

// Planes is the number of H×W planes, N·C.
func (s Shape) Planes() int { return s.N * s.C }

// PlaneSize is H·W.
func (s Shape) PlaneSize() int { return s.H * s.W }

// Len is the number of values, N·C·H·W.
func (s Shape) Len() int { return s.N * s.C * s.H * s.W }

// String writes the shape as ParseShape reads it, e.g. "64x256x56x56".
func (s Shape) String() string { return fmt.Sprintf("%dx%dx%dx%d", s.N, s.C, s.H, s.W) }

// srmSource is the module of SRM's and the block tails' kernels.
const srmSource = "srm.cu"

// geometry is how the plane kernels of srm.cu cover a tensor (see the
// comment at the top of srm.cu), and the order of their second passes.
type geometry struct {
	kind  string // "group", "block" or "loop"
	lanes int    // group: lanes per plane, a power of two from 2 to 32
	vec   bool   // group: float4 values (L % 4 == 0); else floats
	regs  int    // values (group) or float4s (block) kept per thread
	grid  int
	block int
	// reverse walks the planes from the last in the second passes (scaling
	// and dx): they then start on what the first pass read last, which may
	// still be in L2.
	reverse bool
}

const (
	maxBlock     = 256 // threads; the kernels' __launch_bounds__
	planesPerCTA = maxBlock / 32
	maxRegs      = 8
	smallRegs    = 4 // values a lane in the groups of small planes
)

// picker gives the plane-kernel geometry for planes of L values, for the
// forward passes (eval, statistics, scaling) or the backward passes (sums,
// dx); geometryFor is the one the layers use, cuda-check's variants fix
// one for both.
type picker func(L, planes int, backward bool) geometry

// geometryFor picks the plane-kernel shape for planes of L values, as
// float4s where L % 4 == 0; the choices are the fastest of cuda-check's
// variants on an H200 (docs/gpu). Planes of up to 128 values (floats or
// float4s) get a group of lanes each, as few lanes as hold the plane in
// 4 values each (7x7: 16 lanes, 14x14: 16 lanes of float4s); up to 256, a
// warp with 8 each (28x28, 32x32), for the forward passes: independent
// loads in flight per lane where a warp per plane left 2 (7x7) and a block
// per plane 1 (28x28), too few bytes in flight to reach the memory's
// bandwidth (Little's law). Four values a lane beat eight on the small
// planes, and the backward passes, which hold two or three maps, lose
// occupancy to eight float4s a lane (28x28 block tail backward: 298 us
// against 200), so there a block per plane stays. Larger planes whose
// float4s fit in one block's registers get a block each, sized to the
// plane so that few threads idle: R is the smallest power of two that
// keeps the block within 256 threads. Everything else (L not a multiple of
// 4, or very large planes) takes the loop kernels, which loop over memory.
// The second passes run in reverse order: they start on what the first
// read last, some of it still in L2 (2-5 % faster).
func geometryFor(L, planes int, backward bool) geometry {
	g, ok := groupFor(L, planes)
	if !ok || backward && g.regs == maxRegs && g.vec {
		g = blockFor(L, planes)
	}
	g.reverse = true
	return g
}

// groupFor is geometryFor's group layout for planes of L values, if they
// fit in one warp's lanes: 4 values a lane up to 128, 8 up to 256.
func groupFor(L, planes int) (geometry, bool) {
	vec, n := L%4 == 0, L
	if vec {
		n = L / 4
	}
	switch {
	case n <= 32*smallRegs:
		lanes := 2
		for lanes*smallRegs < n {
			lanes *= 2
		}
		return groupGeometry(lanes, vec, smallRegs, planes), true
	case n <= 32*maxRegs:
		return groupGeometry(32, vec, maxRegs, planes), true
	}
	return geometry{}, false
}

func groupGeometry(lanes int, vec bool, regs, planes int) geometry {
	per := maxBlock / lanes
	return geometry{kind: "group", lanes: lanes, vec: vec, regs: regs, grid: (planes + per - 1) / per, block: maxBlock}
}

// blockFor is a block per plane where the plane's float4s fit in the
// registers of 256 threads, else the loop kernels.
func blockFor(L, planes int) geometry {
	if nv := L / 4; L%4 == 0 && nv <= maxBlock*maxRegs {
		r := 1
		for (nv+r-1)/r > maxBlock {
			r *= 2
		}
		return blockGeometry(nv, r, planes)
	}
	return geometry{kind: "loop", grid: planes, block: maxBlock}
}

func blockGeometry(nv, regs, planes int) geometry {
	threads := (nv + regs - 1) / regs
	return geometry{kind: "block", regs: regs, grid: planes, block: (threads + 31) / 32 * 32}
}

// previousGeometry is what geometryFor picked before the group layout, in
// forward order: a warp per plane up to 256 values, each lane holding the
// fewest values (a power of two) that cover the plane; else blockFor's.
// cuda-check times it as the baseline.
func previousGeometry(L, planes int) geometry {
	if L <= 32*maxRegs {
		r := 1
		for 32*r < L {
			r *= 2
		}
		return groupGeometry(32, false, r, planes)
	}
	return blockFor(L, planes)
}

// geometryVariants are the layouts cuda-check times for planes of L
// values, in forward order: geometryFor's for the forward passes, its
// choice for the backward passes where that differs, and the previous
// choice (previousGeometry). Each is in srm.cu's SRM_LAYOUTS.
func geometryVariants(L, planes int) []geometry {
	var out []geometry
	for _, g := range []geometry{geometryFor(L, planes, false), geometryFor(L, planes, true), previousGeometry(L, planes)} {
		g.reverse = false
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// tag names the layout as srm.cu's kernel names end: "g8f8" (8 lanes a
// plane, floats, 8 each), "g32v8" (float4s), "block4", "loop".
func (g geometry) tag() string {
	switch g.kind {
	case "group":
		t := 'f'
		if g.vec {
			t = 'v'
		}
		return fmt.Sprintf("g%d%c%d", g.lanes, t, g.regs)
	case "block":
		return fmt.Sprintf("block%d", g.regs)
	}
	return g.kind
}

// kernel names the plane kernel of srm.cu with the given prefix
// ("srm_eval_", "srm_stats_", "srm_scale_", ...) for this geometry's
// layout.
func (g geometry) kernel(prefix string) kernelRef {
	return kernelRef{srmSource, prefix + g.tag()}
}

// order is the second passes' rev argument.
func (g geometry) order() int32 {
	if g.reverse {
		return 1
	}
	return 0
}

// SRM is a Style-based Recalibration Module's parameters and BatchNorm
// running statistics on the device, in the official code's layout: CFC is
// C×2 (mean weight, std weight), the others C values.
type SRM struct {
	dev      *Device
	C        int     // channels
	Eps      float32 // BatchNorm epsilon, 1e-5
	Momentum float32 // BatchNorm running-statistics momentum, 0.1

	// CFC (C×2), then the BatchNorm's weight, bias and running statistics
	// (C each).
	CFC, Gamma, Beta, RunningMean, RunningVar *Buffer
}

// NewSRM allocates an SRM for the given number of channels, initialised as
// the official code does: CFC zero, BN weight 1, bias 0, running mean 0,
// running variance 1 (every gate is then 0.5).
func (d *Device) NewSRM(channels int) (*SRM, error) {
	if channels <= 0 {
		return nil, fmt.Errorf("cuda: SRM with %d channels", channels)
	}
	bufs, err := allocFloats(d, 2*channels, channels, channels, channels, channels)
	if err != nil {
		return nil, err
	}
	l := &SRM{dev: d, C: channels, Eps: 1e-5, Momentum: 0.1,
		CFC: bufs[0], Gamma: bufs[1], Beta: bufs[2], RunningMean: bufs[3], RunningVar: bufs[4]}
	zeros, ones := make([]float32, 2*channels), make([]float32, channels)
	for i := range ones {
		ones[i] = 1
	}
	err = errors.Join(l.CFC.CopyFrom(zeros), l.Gamma.CopyFrom(ones), l.Beta.CopyFrom(zeros[:channels]),
		l.RunningMean.CopyFrom(zeros[:channels]), l.RunningVar.CopyFrom(ones))
	if err != nil {
		return nil, errors.Join(err, l.Free())
	}
	return l, nil
}

// Free returns the layer's buffers to the device.
func (l *SRM) Free() error {
	return freeAll(l.CFC, l.Gamma, l.Beta, l.RunningMean, l.RunningVar)
}

// SRMWorkspace holds, for one input shape, what the training forward pass
// saves for the backward pass, and the backward pass's scratch.
type SRMWorkspace struct {
	Shape Shape // the input shape it was made for
	// Per plane (N·C values, n-major): style statistics, gates and
	// normalised CFC outputs of the last training forward pass.
	Mean, Std, Gate, ZHat *Buffer
	// Per channel: 1/sqrt(batch variance of z + eps) of that pass.
	RStd *Buffer

	dot, k0, k2 *Buffer

	arrays []*Array // the memory, when the garbage collector frees it
}

// SRMWith views parameter buffers that belong to something else (a model's
// tensors) as an SRM layer: cfc (C×2), gamma, beta, running mean and
// variance (C each). Free must not be called on it.
func (d *Device) SRMWith(channels int, cfc, gamma, beta, runMean, runVar *Buffer, eps, momentum float32) (*SRM, error) {
	if channels <= 0 || cfc.Len() < 2*channels || min(gamma.Len(), beta.Len(), runMean.Len(), runVar.Len()) < channels {
		return nil, fmt.Errorf("cuda: SRM parameters too small for %d channels", channels)
	}
	return &SRM{dev: d, C: channels, Eps: eps, Momentum: momentum,
		CFC: cfc, Gamma: gamma, Beta: beta, RunningMean: runMean, RunningVar: runVar}, nil
}

// NewCollectedWorkspace is NewWorkspace in Arrays, freed by the garbage
// collector with the workspace rather than by Free: for workspaces an
// autograd graph holds until it is dropped.
func (l *SRM) NewCollectedWorkspace(s Shape) (*SRMWorkspace, error) {
	if s.C != l.C {
		return nil, fmt.Errorf("cuda: SRM has %d channels, shape %v", l.C, s)
	}
	p := s.Planes()
	arrays, b, err := collectedFloats(l.dev, p, p, p, p, s.C, p, p, p)
	if err != nil {
		return nil, err
	}
	return &SRMWorkspace{Shape: s, Mean: b[0], Std: b[1], Gate: b[2], ZHat: b[3], RStd: b[4], dot: b[5], k0: b[6], k2: b[7],
		arrays: arrays}, nil
}

// Gates returns the gates of the last training forward pass as an Array
// (N·C values) of a collected workspace, nil for one made by NewWorkspace.
func (w *SRMWorkspace) Gates() *Array {
	if len(w.arrays) == 0 {
		return nil
	}
	return w.arrays[2]
}

// NewWorkspace allocates a workspace for inputs of shape s.
func (l *SRM) NewWorkspace(s Shape) (*SRMWorkspace, error) {
	if s.C != l.C {
		return nil, fmt.Errorf("cuda: SRM has %d channels, shape %v", l.C, s)
	}
	p := s.Planes()
	b, err := allocFloats(l.dev, p, p, p, p, s.C, p, p, p)
	if err != nil {
		return nil, err
	}
	return &SRMWorkspace{Shape: s, Mean: b[0], Std: b[1], Gate: b[2], ZHat: b[3], RStd: b[4], dot: b[5], k0: b[6], k2: b[7]}, nil
}

// Free returns the workspace's buffers to the device.
func (w *SRMWorkspace) Free() error {
	return freeAll(w.Mean, w.Std, w.Gate, w.ZHat, w.RStd, w.dot, w.k0, w.k2)
}

// SRMGrads receives the parameter gradients of a backward pass, shaped like
// SRM's CFC, Gamma and Beta.
type SRMGrads struct{ CFC, Gamma, Beta *Buffer }

// NewGrads allocates gradient buffers shaped like the layer's parameters.
func (l *SRM) NewGrads() (*SRMGrads, error) {
	b, err := allocFloats(l.dev, 2*l.C, l.C, l.C)
	if err != nil {
		return nil, err
	}
	return &SRMGrads{CFC: b[0], Gamma: b[1], Beta: b[2]}, nil
}

// Free returns the gradient buffers to the device.
func (g *SRMGrads) Free() error { return freeAll(g.CFC, g.Gamma, g.Beta) }

// checkShape rejects shapes the kernels cannot take: the unbiased variance
// needs two values per plane, the batch statistics two samples, and plane
// indices are 32-bit in the kernels.
func (l *SRM) checkShape(s Shape, training bool, tensors ...*Buffer) error {
	switch {
	case s.C != l.C:
		return fmt.Errorf("cuda: SRM has %d channels, input %v", l.C, s)
	case s.N < 1 || s.H < 1 || s.W < 1:
		return fmt.Errorf("cuda: SRM input %v", s)
	case s.PlaneSize() < 2:
		return fmt.Errorf("cuda: SRM input %v: the unbiased std needs H·W ≥ 2", s)
	case training && s.N < 2:
		return fmt.Errorf("cuda: SRM input %v: training BatchNorm needs a batch of at least 2", s)
	case s.Planes() > math.MaxInt32/2 || s.PlaneSize() > math.MaxInt32/2:
		return fmt.Errorf("cuda: SRM input %v too large", s)
	}
	for _, t := range tensors {
		if t == nil || t.Len() < s.Len() {
			return fmt.Errorf("cuda: SRM input %v needs tensors of %d floats", s, s.Len())
		}
	}
	return nil
}

// ForwardEval plans out = SRM(x) with BatchNorm in inference mode (running
// statistics): one fused kernel that reads x once and writes out once, and
// the N·C gates into gates unless that is nil. out may be x.
func (l *SRM) ForwardEval(x, out, gates *Buffer, s Shape) (*Plan, error) {
	return l.forwardEval(x, out, gates, s, geometryFor)
}

// forwardEval is ForwardEval with the plane kernels' geometry from pick,
// as are forwardTrain and backward, for cuda-check's timings of the
// alternatives.
func (l *SRM) forwardEval(x, out, gates *Buffer, s Shape, pick picker) (*Plan, error) {
	if err := l.checkShape(s, false, x, out); err != nil {
		return nil, err
	}
	L, P := s.PlaneSize(), s.Planes()
	g := pick(L, P, false)
	p := &Plan{dev: l.dev}
	var gp any = uint64(0) // a null pointer: no gates wanted
	if gates != nil {
		if gates.Len() < P {
			return nil, fmt.Errorf("cuda: SRM gates buffer of %d for %d planes", gates.Len(), P)
		}
		gp = gates
	}
	err := p.add(g.kernel("srm_eval_"), g.grid, g.block,
		x, out, gp, l.CFC, l.Gamma, l.Beta, l.RunningMean, l.RunningVar, l.Eps, int32(s.C), int32(L), int32(P))
	return p, err
}

// ForwardTrain plans out = SRM(x) with BatchNorm in training mode (batch
// statistics), updating the running statistics and filling the workspace
// for Backward: statistics pass, per-channel gate kernel, scaling pass.
// out may be x when no Backward follows (Backward needs the input).
func (l *SRM) ForwardTrain(x, out *Buffer, ws *SRMWorkspace) (*Plan, error) {
	return l.forwardTrain(x, out, ws, geometryFor)
}

func (l *SRM) forwardTrain(x, out *Buffer, ws *SRMWorkspace, pick picker) (*Plan, error) {
	s := ws.Shape
	if err := l.checkShape(s, true, x, out); err != nil {
		return nil, err
	}
	step := []any{ws.Mean, ws.Std, l.CFC, l.Gamma, l.Beta, l.RunningMean, l.RunningVar, ws.Gate, ws.ZHat, ws.RStd,
		l.Eps, l.Momentum, int32(s.N), int32(s.C)}
	return planPair(l.dev, srmForward, pick(s.PlaneSize(), s.Planes(), false), s,
		[]any{x, ws.Mean, ws.Std}, step, []any{x, ws.Gate, out})
}

// Backward plans the gradients of the training forward pass that filled
// ws, given dout: dx (which may be dout, not x) and the parameter gradients,
// which are overwritten, not accumulated. x must hold the forward input.
func (l *SRM) Backward(x, dout, dx *Buffer, ws *SRMWorkspace, grads *SRMGrads) (*Plan, error) {
	return l.backward(x, dout, dx, ws, grads, geometryFor)
}

func (l *SRM) backward(x, dout, dx *Buffer, ws *SRMWorkspace, grads *SRMGrads, pick picker) (*Plan, error) {
	s := ws.Shape
	if err := l.checkShape(s, true, x, dout, dx); err != nil {
		return nil, err
	}
	if x == dx {
		return nil, errors.New("cuda: SRM backward cannot write dx over x: the last pass still reads x")
	}
	step := []any{ws.dot, ws.Mean, ws.Std, ws.Gate, ws.ZHat, ws.RStd, l.CFC, l.Gamma, ws.k0, ws.k2,
		grads.CFC, grads.Gamma, grads.Beta, int32(s.N), int32(s.C), int32(s.PlaneSize())}
	return planPair(l.dev, srmBackward, pick(s.PlaneSize(), s.Planes(), true), s,
		[]any{x, dout, ws.dot}, step, []any{x, dout, ws.Gate, ws.Mean, ws.k0, ws.k2, dx})
}

// pairKernels names a training pass pair's kernels: the plane kernels'
// prefixes of its first and second passes, and its per-channel kernel.
type pairKernels struct{ first, step, second string }

var (
	srmForward   = pairKernels{"srm_stats_", "srm_train_gate", "srm_scale_"}
	srmBackward  = pairKernels{"srm_bwd_dot_", "srm_bwd_gate", "srm_bwd_dx_"}
	tailForward  = pairKernels{"srm_tail_stats_", "srm_tail_fwd", "srm_tail_apply_"}
	tailBackward = pairKernels{"srm_tail_bwd_sums_", "srm_tail_bwd", "srm_tail_dx_"}
)

// planPair plans one training pass pair of k under g for shape s: the
// first pass, the per-channel kernel, the second pass. first and second
// are its plane passes' arguments before L and P (and the second's
// order), step its per-channel kernel's; second is nil where there is no
// second pass (a tail backward that wants no dx).
func planPair(d *Device, k pairKernels, g geometry, s Shape, first, step, second []any) (*Plan, error) {
	p := &Plan{dev: d}
	L, P := int32(s.PlaneSize()), int32(s.Planes())
	err := p.add(g.kernel(k.first), g.grid, g.block, append(first, L, P)...)
	err = errors.Join(err, p.add(kernelRef{srmSource, k.step}, warpGrid(s.C), maxBlock, step...))
	if second != nil {
		err = errors.Join(err, p.add(g.kernel(k.second), g.grid, g.block, append(second, L, P, g.order())...))
	}
	return p, err
}

// CopyPlan plans a copy of n float32 values from src to dst through the SMs
// (copy.cu), with enough blocks to keep every SM busy; n must be a multiple
// of 4.
func (d *Device) CopyPlan(dst, src *Buffer, n int) (*Plan, error) {
	if n <= 0 || n%4 != 0 || n > dst.Len() || n > src.Len() {
		return nil, fmt.Errorf("cuda: copy of %d floats between buffers of %d and %d", n, src.Len(), dst.Len())
	}
	n4 := n / 4
	grid := min((n4+maxBlock-1)/maxBlock, 16*max(d.info.SMs, 1))
	p := &Plan{dev: d}
	err := p.add(kernelRef{"copy.cu", "copy_f32x4"}, grid, maxBlock, src, dst, int64(n4))
	return p, err
}

// warpGrid is the grid of a kernel that gives each of n items (planes,
// channels, rows) a warp of maxBlock-thread blocks.
func warpGrid(n int) int { return (n + planesPerCTA - 1) / planesPerCTA }

// allocFloats allocates buffers of the given float counts, all or none.
func allocFloats(d *Device, counts ...int) ([]*Buffer, error) {
	out := make([]*Buffer, 0, len(counts))
	for _, n := range counts {
		b, err := d.AllocFloat32(n)
		if err != nil {
			return nil, errors.Join(err, freeAll(out...))
		}
		out = append(out, b)
	}
	return out, nil
}

func freeAll(bufs ...*Buffer) error {
	var errs []error
	for _, b := range bufs {
		if b != nil {
			errs = append(errs, b.Free())
		}
	}
	return errors.Join(errs...)
}
