package cuda

import (
	"errors"
	"fmt"
)

const seSource = "se.cu"

// The largest bottleneck the fused SE gate takes (shared memory of
// kernels/se.cu); SEGateFits says whether a shape is within them.
const (
	seMaxChannels = 4096
	seMaxHidden   = 1024
)

// SEGateFits reports whether SEGate takes c channels and h hidden units.
func SEGateFits(c, h int) bool { return c >= 1 && h >= 1 && c <= seMaxChannels && h <= seMaxHidden }

func seCheck(op string, n, c, h int) error {
	if n < 1 || !SEGateFits(c, h) {
		return fmt.Errorf("cuda: %s: %d samples of %d channels, %d hidden (at most %d and %d)", op, n, c, h, seMaxChannels, seMaxHidden)
	}
	return nil
}

// SEGate is Squeeze-and-Excitation's excitation in one kernel: for the
// pooled channel means p (n×c) and the bottleneck Linear(c, h) → ReLU →
// Linear(h, c) with weights w1 (h×c), w2 (c×h) and biases b1, b2, it writes
// the gates sigmoid(W2·relu(W1·p + b1) + b2) (n×c) and keeps the hidden
// activations (n×h) for SEGateBackward.
func (d *Device) SEGate(p, w1, b1, w2, b2, hidden, gate *Buffer, n, c, h int) error {
	const op = "SEGate"
	if err := seCheck(op, n, c, h); err != nil {
		return err
	}
	err := d.nnCheck(op, nnArg{"p", p, n * c}, nnArg{"w1", w1, h * c}, nnArg{"b1", b1, h}, nnArg{"w2", w2, c * h},
		nnArg{"b2", b2, c}, nnArg{"hidden", hidden, n * h}, nnArg{"gate", gate, n * c})
	if err != nil {
		return err
	}
	plan := &Plan{dev: d}
	if err := plan.add(kernelRef{seSource, "se_gate_fwd"}, n, maxBlock, p, w1, b1, w2, b2, hidden, gate, int32(c), int32(h)); err != nil {
		return err
	}
	return d.Run(plan)
}

// SEGateBackward is the gradient of an SEGate call given dgate: into dp
// (nil to skip) and the four parameter gradients, overwritten or, with
// accP and accParams, added to.
func (d *Device) SEGateBackward(p, w1, w2, hidden, gate, dgate, dp, dw1, db1, dw2, db2 *Buffer, n, c, h int, accP, accParams bool) error {
	const op = "SEGateBackward"
	if err := seCheck(op, n, c, h); err != nil {
		return err
	}
	args := []nnArg{{"p", p, n * c}, {"w1", w1, h * c}, {"w2", w2, c * h}, {"hidden", hidden, n * h}, {"gate", gate, n * c},
		{"dgate", dgate, n * c}, {"dw1", dw1, h * c}, {"db1", db1, h}, {"dw2", dw2, c * h}, {"db2", db2, c}}
	var dpArg any = uint64(0) // a null pointer: no input gradient wanted
	if dp != nil {
		args, dpArg = append(args, nnArg{"dp", dp, n * c}), dp
	}
	if err := d.nnCheck(op, args...); err != nil {
		return err
	}
	total := 2*h*c + h + c
	return d.runNN([]int{n * c, n * h}, func(plan *Plan, scratch []*Buffer) error {
		ds, dh := scratch[0], scratch[1]
		return errors.Join(
			plan.add(kernelRef{seSource, "se_gate_bwd"}, n, maxBlock, w1, w2, hidden, gate, dgate, ds, dh, dpArg,
				int32(c), int32(h), nnFlag(accP)),
			plan.add(kernelRef{seSource, "se_gate_bwd_params"}, max(1, min((total+maxBlock-1)/maxBlock, 16*max(d.info.SMs, 1))), maxBlock, p, hidden, ds, dh,
				dw1, db1, dw2, db2, int32(n), int32(c), int32(h), nnFlag(accParams)))
	})
}
