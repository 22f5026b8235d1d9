package cuda

import (
	"errors"
	"fmt"
	"math"
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

const srmSource = "srm.cu"

// geometry is how the plane kernels of srm.cu cover a tensor (see the
// comment at the top of srm.cu).
type geometry struct {
	kind  string // "warp", "block" or "loop"
	regs  int    // values (warp) or float4s (block) kept per thread
	grid  int
	block int
}

const (
	maxBlock     = 256 // threads; the kernels' __launch_bounds__
	planesPerCTA = maxBlock / 32
	maxRegs      = 8
)

// geometryFor picks the plane-kernel shape for planes of L values. Small
// planes (up to 8 values per lane) get a warp each. Planes whose float4s fit
// in one block's registers get a block each, sized to the plane so that few
// threads idle: R is the smallest power of two that keeps the block within
// 256 threads. Everything else (L not a multiple of 4, or very large
// planes) takes the loop kernels, which loop over memory.
func geometryFor(L, planes int) geometry {
	if L <= 32*maxRegs {
		r := 1
		for 32*r < L {
			r *= 2
		}
		return geometry{kind: "warp", regs: r, grid: (planes + planesPerCTA - 1) / planesPerCTA, block: maxBlock}
	}
	if nv := L / 4; L%4 == 0 && nv <= maxBlock*maxRegs {
		r := 1
		for (nv+r-1)/r > maxBlock {
			r *= 2
		}
		threads := (nv + r - 1) / r
		return geometry{kind: "block", regs: r, grid: planes, block: (threads + 31) / 32 * 32}
	}
	return geometry{kind: "loop", grid: planes, block: maxBlock}
}

// kernel names the plane kernel with the given prefix ("srm_eval_",
// "srm_stats_", "srm_scale_", "srm_bwd_dot_", "srm_bwd_dx_") for this
// geometry.
func (g geometry) kernel(prefix string) kernelRef {
	if g.kind == "loop" {
		return kernelRef{srmSource, prefix + "loop"}
	}
	return kernelRef{srmSource, fmt.Sprintf("%s%s%d", prefix, g.kind, g.regs)}
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
	if err := l.checkShape(s, false, x, out); err != nil {
		return nil, err
	}
	L, P := s.PlaneSize(), s.Planes()
	g := geometryFor(L, P)
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
	s := ws.Shape
	if err := l.checkShape(s, true, x, out); err != nil {
		return nil, err
	}
	L, P := s.PlaneSize(), s.Planes()
	g := geometryFor(L, P)
	p := &Plan{dev: l.dev}
	err := errors.Join(
		p.add(g.kernel("srm_stats_"), g.grid, g.block, x, ws.Mean, ws.Std, int32(L), int32(P)),
		p.add(kernelRef{srmSource, "srm_train_gate"}, (s.C+planesPerCTA-1)/planesPerCTA, maxBlock,
			ws.Mean, ws.Std, l.CFC, l.Gamma, l.Beta, l.RunningMean, l.RunningVar, ws.Gate, ws.ZHat, ws.RStd,
			l.Eps, l.Momentum, int32(s.N), int32(s.C)),
		p.add(g.kernel("srm_scale_"), g.grid, g.block, x, ws.Gate, out, int32(L), int32(P)),
	)
	return p, err
}

// Backward plans the gradients of the training forward pass that filled
// ws, given dout: dx (which may be dout, not x) and the parameter gradients,
// which are overwritten, not accumulated. x must hold the forward input.
func (l *SRM) Backward(x, dout, dx *Buffer, ws *SRMWorkspace, grads *SRMGrads) (*Plan, error) {
	s := ws.Shape
	if err := l.checkShape(s, true, x, dout, dx); err != nil {
		return nil, err
	}
	if x == dx {
		return nil, errors.New("cuda: SRM backward cannot write dx over x: the last pass still reads x")
	}
	L, P := s.PlaneSize(), s.Planes()
	g := geometryFor(L, P)
	p := &Plan{dev: l.dev}
	err := errors.Join(
		p.add(g.kernel("srm_bwd_dot_"), g.grid, g.block, x, dout, ws.dot, int32(L), int32(P)),
		p.add(kernelRef{srmSource, "srm_bwd_gate"}, (s.C+planesPerCTA-1)/planesPerCTA, maxBlock,
			ws.dot, ws.Mean, ws.Std, ws.Gate, ws.ZHat, ws.RStd, l.CFC, l.Gamma, ws.k0, ws.k2,
			grads.CFC, grads.Gamma, grads.Beta, int32(s.N), int32(s.C), int32(L)),
		p.add(g.kernel("srm_bwd_dx_"), g.grid, g.block, x, dout, ws.Gate, ws.Mean, ws.k0, ws.k2, dx, int32(L), int32(P)),
	)
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
