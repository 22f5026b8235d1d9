package cuda

import (
	"errors"
	"fmt"
	"math"
)

// SGDStep updates the first n values of parameter p from its gradient g as
// torch.optim.SGD with dampening 0 (and as package optim):
//
//	d = g + weightDecay·p
//	buf = d on the first step, momentum·buf + d after
//	d = d + momentum·buf with Nesterov, buf without
//	p = p − lr·d
//
// buf is the momentum buffer, nil when momentum is 0 (there is then no
// buffer and nesterov must be false); first says it is fresh, so that its
// contents are not read.
func (d *Device) SGDStep(p, g, buf *Buffer, n int, lr, weightDecay, momentum float32, nesterov, first bool) error {
	const op = "SGDStep"
	if momentum == 0 {
		switch {
		case buf != nil:
			return fmt.Errorf("cuda: %s: buf given with momentum 0", op)
		case nesterov:
			return fmt.Errorf("cuda: %s: Nesterov momentum needs a momentum", op)
		}
		return d.mapOp(op, "nn_sgd", n, []nnArg{{"p", p, 0}, {"g", g, 0}}, p, g, int64(n), lr, weightDecay)
	}
	return d.mapOp(op, "nn_sgd_momentum", n, []nnArg{{"p", p, 0}, {"g", g, 0}, {"buf", buf, 0}},
		p, g, buf, int64(n), lr, weightDecay, momentum, nnFlag(nesterov), nnFlag(first))
}

// FirstNonFinite returns the index of the first buffer whose first lens[i]
// values hold a NaN or an infinity, or −1 if none does: the check a
// training step makes before applying its gradients. One kernel per buffer
// sets a flag in a small device array, and one copy brings the flags back
// (it waits for the work queued before it).
func (d *Device) FirstNonFinite(bufs []*Buffer, lens []int) (int, error) {
	const op = "FirstNonFinite"
	if len(bufs) != len(lens) {
		return -1, fmt.Errorf("cuda: %s: %d buffers, %d lengths", op, len(bufs), len(lens))
	}
	if len(bufs) == 0 {
		return -1, nil
	}
	for i, b := range bufs {
		name := fmt.Sprintf("bufs[%d]", i)
		if err := errors.Join(nnCount(op, fmt.Sprintf("lens[%d]", i), lens[i], math.MaxInt64), d.nnCheck(op, nnArg{name, b, lens[i]})); err != nil {
			return -1, err
		}
	}
	flags, err := d.AllocFloat32(len(bufs))
	if err != nil {
		return -1, err
	}
	p := &Plan{dev: d}
	err = p.add(kernelRef{nnSource, "nn_fill"}, 1, maxBlock, flags, float32(0), int64(len(bufs)))
	for i, b := range bufs {
		if err == nil && lens[i] > 0 {
			err = p.add(kernelRef{nnSource, "nn_nonfinite"}, d.mapGrid(lens[i]), maxBlock, b, int64(lens[i]), flags, int32(i))
		}
	}
	got := make([]float32, len(bufs))
	if err == nil {
		err = d.Run(p)
	}
	if err == nil {
		err = flags.CopyTo(got)
	}
	if err = errors.Join(err, flags.Free()); err != nil {
		return -1, err
	}
	for i, f := range got {
		if f != 0 {
			return i, nil
		}
	}
	return -1, nil
}
