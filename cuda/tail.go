package cuda

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// The block tail is the end of a residual block in training mode,
// out = ReLU(SRM(BN(x)) + short) with x the block's last convolution's
// output, or ReLU(BN(x) + short) for a plain block (the maths is at the top
// of kernels/srm.cu). Run as separate operations, the BatchNorm writes
// BN(x), SRM reads that twice and writes it scaled, and the addition reads
// it once more; the tail's kernels never write BN(x): its statistics come
// from the plane moments of x, and one pass reads x and short and writes
// out. Forward moves 4 maps, backward 7, with or without the SRM, which so
// costs no pass over the map beyond the plain block's.

// BN is a BatchNorm's weight (Gamma), bias (Beta) and running statistics
// on the device, C values each, with its epsilon and momentum.
type BN struct {
	Gamma, Beta, RunningMean, RunningVar *Buffer
	Eps, Momentum                        float32
}

// Tail is a block tail's parameters: the block's last BatchNorm and, for
// an SRM block, the SRM in its official form (mean and unbiased std, CFC,
// BatchNorm); SRM is nil for a plain block.
type Tail struct {
	dev *Device
	C   int // channels
	BN  BN
	SRM *SRM
}

// BlockTail views a block's last BatchNorm over the given number of
// channels and its SRM (nil for a plain block) as a Tail. The buffers stay
// their owner's; the Tail holds nothing to free.
func (d *Device) BlockTail(channels int, bn BN, srm *SRM) (*Tail, error) {
	const op = "BlockTail"
	if channels <= 0 {
		return nil, fmt.Errorf("cuda: %s with %d channels", op, channels)
	}
	c := channels
	args := []nnArg{{"BN gamma", bn.Gamma, c}, {"BN beta", bn.Beta, c}, {"BN running mean", bn.RunningMean, c},
		{"BN running var", bn.RunningVar, c}}
	if srm != nil {
		if srm.dev != d || srm.C != c {
			return nil, fmt.Errorf("cuda: %s: an SRM of %d channels on another device or of another width, for %d channels", op, srm.C, c)
		}
		args = append(args, nnArg{"SRM CFC", srm.CFC, 2 * c}, nnArg{"SRM gamma", srm.Gamma, c}, nnArg{"SRM beta", srm.Beta, c},
			nnArg{"SRM running mean", srm.RunningMean, c}, nnArg{"SRM running var", srm.RunningVar, c})
	}
	if err := d.nnCheck(op, args...); err != nil {
		return nil, err
	}
	return &Tail{dev: d, C: c, BN: bn, SRM: srm}, nil
}

// TailWorkspace holds, for one input shape, what a tail's forward pass
// saves for its backward pass, and the backward pass's scratch: N·C values
// each, n-major. The per-channel kernels recompute the channel statistics
// from Mean and M2, so nothing per channel is kept.
type TailWorkspace struct {
	Shape Shape // the input shape it was made for
	// Mean and M2 are each plane's mean and sum of squared deviations of x;
	// Gain and Bias make the output, max(Gain·(x − Mean) + Bias + short, 0);
	// Gate holds the SRM's gates (nil for a plain tail).
	Mean, M2, Gain, Bias, Gate *Buffer

	psum, dot, k0, k2 *Buffer

	arrays []*Array // the memory, when the garbage collector frees it
}

// bufferCounts are the float counts of a workspace's buffers for inputs
// of shape s: Mean, M2, Gain, Bias, the backward scratch, then Gate for an
// SRM tail.
func (t *Tail) bufferCounts(s Shape) []int {
	n := 8
	if t.SRM != nil {
		n = 9
	}
	return slices.Repeat([]int{s.Planes()}, n)
}

func (t *Tail) workspace(s Shape, bufs []*Buffer, arrays []*Array) *TailWorkspace {
	ws := &TailWorkspace{Shape: s, Mean: bufs[0], M2: bufs[1], Gain: bufs[2], Bias: bufs[3],
		psum: bufs[4], dot: bufs[5], k0: bufs[6], k2: bufs[7], arrays: arrays}
	if t.SRM != nil {
		ws.Gate = bufs[8]
	}
	return ws
}

// NewWorkspace allocates a workspace for inputs of shape s.
func (t *Tail) NewWorkspace(s Shape) (*TailWorkspace, error) {
	if err := t.checkShape(s); err != nil {
		return nil, err
	}
	bufs, err := allocFloats(t.dev, t.bufferCounts(s)...)
	if err != nil {
		return nil, err
	}
	return t.workspace(s, bufs, nil), nil
}

// NewCollectedWorkspace is NewWorkspace in Arrays, freed by the garbage
// collector with the workspace rather than by Free: for workspaces an
// autograd graph holds until it is dropped.
func (t *Tail) NewCollectedWorkspace(s Shape) (*TailWorkspace, error) {
	if err := t.checkShape(s); err != nil {
		return nil, err
	}
	arrays, bufs, err := collectedFloats(t.dev, t.bufferCounts(s)...)
	if err != nil {
		return nil, err
	}
	return t.workspace(s, bufs, arrays), nil
}

// Gates returns the SRM's gates of the last forward pass as an Array (N·C
// values) of a collected workspace; nil for a plain tail or a workspace
// made by NewWorkspace.
func (w *TailWorkspace) Gates() *Array {
	if w.Gate == nil || len(w.arrays) == 0 {
		return nil
	}
	return w.arrays[8]
}

// Free returns the buffers of a workspace made by NewWorkspace to the
// device.
func (w *TailWorkspace) Free() error {
	return freeAll(w.Mean, w.M2, w.Gain, w.Bias, w.psum, w.dot, w.k0, w.k2, w.Gate)
}

// TailGrads receives a tail's parameter gradients: the BatchNorm's, shaped
// like its Gamma and Beta, and for an SRM tail the SRM's.
type TailGrads struct {
	Gamma, Beta *Buffer
	SRM         *SRMGrads // nil for a plain tail
}

// NewGrads allocates gradient buffers shaped like the tail's parameters.
func (t *Tail) NewGrads() (*TailGrads, error) {
	b, err := allocFloats(t.dev, t.C, t.C)
	if err != nil {
		return nil, err
	}
	g := &TailGrads{Gamma: b[0], Beta: b[1]}
	if t.SRM != nil {
		if g.SRM, err = t.SRM.NewGrads(); err != nil {
			return nil, errors.Join(err, g.Free())
		}
	}
	return g, nil
}

// Free returns the gradient buffers to the device.
func (g *TailGrads) Free() error {
	err := freeAll(g.Gamma, g.Beta)
	if g.SRM != nil {
		err = errors.Join(err, g.SRM.Free())
	}
	return err
}

// checkShape rejects shapes the kernels cannot take: BatchNorm's training
// statistics need two values per channel, and with an SRM the unbiased std
// two per plane and its BatchNorm two samples; plane indices are 32-bit in
// the kernels.
func (t *Tail) checkShape(s Shape) error {
	switch {
	case s.C != t.C:
		return fmt.Errorf("cuda: block tail has %d channels, input %v", t.C, s)
	case s.N < 1 || s.H < 1 || s.W < 1:
		return fmt.Errorf("cuda: block tail input %v", s)
	case s.N*s.PlaneSize() < 2:
		return fmt.Errorf("cuda: block tail input %v: training BatchNorm needs two values per channel", s)
	case t.SRM != nil && s.PlaneSize() < 2:
		return fmt.Errorf("cuda: SRM block tail input %v: the unbiased std needs H·W ≥ 2", s)
	case t.SRM != nil && s.N < 2:
		return fmt.Errorf("cuda: SRM block tail input %v: SRM's training BatchNorm needs a batch of at least 2", s)
	case s.Planes() > math.MaxInt32/2 || s.PlaneSize() > math.MaxInt32/2:
		return fmt.Errorf("cuda: block tail input %v too large", s)
	}
	return nil
}

// checkCall validates a pass over ws.Shape: the workspace matches the tail,
// every map holds the shape's values, and none of the last outputs maps
// shares memory with another map of the call (the passes read an input
// again after an output was written).
func (t *Tail) checkCall(op string, ws *TailWorkspace, maps []nnArg, outputs int) error {
	if ws == nil {
		return fmt.Errorf("cuda: %s: no workspace", op)
	}
	s := ws.Shape
	if err := t.checkShape(s); err != nil {
		return err
	}
	if (ws.Gate != nil) != (t.SRM != nil) {
		return fmt.Errorf("cuda: %s: the workspace was made for another kind of tail (with or without SRM)", op)
	}
	for i := range maps {
		maps[i].n = s.Len()
	}
	if err := t.dev.nnCheck(op, maps...); err != nil {
		return err
	}
	for i := len(maps) - outputs; i < len(maps); i++ {
		for j, m := range maps {
			if j != i && m.buf.ptr == maps[i].buf.ptr {
				return fmt.Errorf("cuda: %s: %s and %s share memory", op, maps[i].name, m.name)
			}
		}
	}
	return nil
}

// srmArgs are the SRM's kernel arguments of the per-channel kernels
// (CFC, gamma, beta, eps), null pointers and 0 for a plain tail.
func (t *Tail) srmArgs() (cfc, gamma, beta any, eps float32) {
	if t.SRM == nil {
		return uint64(0), uint64(0), uint64(0), 0
	}
	return t.SRM.CFC, t.SRM.Gamma, t.SRM.Beta, t.SRM.Eps
}

// Forward plans the tail's training forward pass on x and short (shape
// ws.Shape) into out: the statistics pass over x; the per-channel kernel,
// which updates the BatchNorm's running statistics and, with an SRM,
// computes the gates and updates its BatchNorm's; the apply pass. out may
// be neither x nor short.
func (t *Tail) Forward(x, short, out *Buffer, ws *TailWorkspace) (*Plan, error) {
	return t.forward(x, short, out, ws, geometryFor)
}

// forward is Forward with the plane kernels' geometry from pick, as is
// backward, for cuda-check's timings of the alternatives.
func (t *Tail) forward(x, short, out *Buffer, ws *TailWorkspace, pick picker) (*Plan, error) {
	const op = "block tail forward"
	if err := t.checkCall(op, ws, []nnArg{{"x", x, 0}, {"short", short, 0}, {"out", out, 0}}, 1); err != nil {
		return nil, err
	}
	s := ws.Shape
	cfc, gamma2, beta2, eps2 := t.srmArgs()
	var rmean2, rvar2, momentum2 any = uint64(0), uint64(0), float32(0)
	if t.SRM != nil {
		rmean2, rvar2, momentum2 = t.SRM.RunningMean, t.SRM.RunningVar, t.SRM.Momentum
	}
	bn := t.BN
	step := []any{ws.Mean, ws.M2, bn.Gamma, bn.Beta, cfc, gamma2, beta2, bn.Eps, eps2,
		bn.RunningMean, bn.RunningVar, rmean2, rvar2, ws.Gain, ws.Bias, poolOptional(ws.Gate),
		bn.Momentum, momentum2, int32(s.N), int32(s.C), int32(s.PlaneSize())}
	return planPair(t.dev, tailForward, pick(s.PlaneSize(), s.Planes(), false), s,
		[]any{x, ws.Mean, ws.M2}, step, []any{x, ws.Gain, ws.Bias, ws.Mean, short, out})
}

// Backward plans the gradients of the forward pass that filled ws, given
// dout and that pass's x and out: x's gradient into dx and short's into
// dshort (either nil when not wanted), and the parameter gradients into
// grads (grads.SRM for an SRM tail). Each is overwritten, or added to when
// its flag (accX, accShort, accParams) is set. Three passes: the sums over
// each plane of the gradient past the ReLU, which is short's gradient and
// written on the way; the per-channel kernel; dx, reading short's gradient
// back where it was written alone, else masking dout again. dx and dshort
// may not share memory with each other or with x, out and dout.
func (t *Tail) Backward(x, out, dout, dx, dshort *Buffer, ws *TailWorkspace, grads *TailGrads, accX, accShort, accParams bool) (*Plan, error) {
	return t.backward(x, out, dout, dx, dshort, ws, grads, accX, accShort, accParams, geometryFor)
}

func (t *Tail) backward(x, out, dout, dx, dshort *Buffer, ws *TailWorkspace, grads *TailGrads, accX, accShort, accParams bool,
	pick picker) (*Plan, error) {
	const op = "block tail backward"
	maps := []nnArg{{"x", x, 0}, {"out", out, 0}, {"dout", dout, 0}}
	var dr any = uint64(0)
	if dx != nil {
		maps = append(maps, nnArg{"dx", dx, 0})
	}
	if dshort != nil {
		maps, dr = append(maps, nnArg{"dshort", dshort, 0}), dshort
	}
	if err := t.checkCall(op, ws, maps, len(maps)-3); err != nil {
		return nil, err
	}
	if grads == nil {
		return nil, fmt.Errorf("cuda: %s: no gradient buffers", op)
	}
	c := t.C
	params := []nnArg{{"dgamma", grads.Gamma, c}, {"dbeta", grads.Beta, c}}
	var dcfc, dgamma2, dbeta2 any = uint64(0), uint64(0), uint64(0)
	if t.SRM != nil {
		if grads.SRM == nil {
			return nil, fmt.Errorf("cuda: %s: no SRM gradient buffers for an SRM tail", op)
		}
		params = append(params, nnArg{"SRM dcfc", grads.SRM.CFC, 2 * c}, nnArg{"SRM dgamma", grads.SRM.Gamma, c},
			nnArg{"SRM dbeta", grads.SRM.Beta, c})
		dcfc, dgamma2, dbeta2 = grads.SRM.CFC, grads.SRM.Gamma, grads.SRM.Beta
	}
	if err := t.dev.nnCheck(op, params...); err != nil {
		return nil, err
	}
	s := ws.Shape
	cfc, gamma2, beta2, eps2 := t.srmArgs()
	bn := t.BN
	step := []any{ws.Mean, ws.M2, bn.Gamma, bn.Beta, cfc, gamma2, beta2, bn.Eps, eps2, ws.psum, ws.dot, ws.k0, ws.k2,
		grads.Gamma, grads.Beta, dcfc, dgamma2, dbeta2, nnFlag(accParams), int32(s.N), int32(c), int32(s.PlaneSize())}
	// The dx pass's gradient past the ReLU is in dshort when it was
	// written there alone; otherwise dout is masked again.
	var grad, mask any = dout, out
	if dshort != nil && !accShort {
		grad, mask = dshort, uint64(0)
	}
	var second []any // no dx pass without dx
	if dx != nil {
		second = []any{x, grad, mask, ws.Gain, ws.Mean, ws.k0, ws.k2, dx, nnFlag(accX)}
	}
	return planPair(t.dev, tailBackward, pick(s.PlaneSize(), s.Planes(), true), s,
		[]any{x, dout, out, ws.Mean, dr, nnFlag(accShort), ws.psum, ws.dot}, step, second)
}

// collectedFloats allocates Arrays of the given float counts, all or none,
// and returns them with their buffers.
func collectedFloats(d *Device, counts ...int) ([]*Array, []*Buffer, error) {
	arrays, bufs := make([]*Array, 0, len(counts)), make([]*Buffer, 0, len(counts))
	for _, n := range counts {
		a, err := d.NewArray(n)
		if err != nil {
			return nil, nil, err
		}
		arrays, bufs = append(arrays, a), append(bufs, a.Buffer())
	}
	return arrays, bufs, nil
}
