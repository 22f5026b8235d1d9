package cuda

const geSource = "ge.cu"

// perChannel is a grid of one thread per channel.
func perChannel(c int) int { return (c + maxBlock - 1) / maxBlock }

// GEGate is GE-θ's gate in one kernel: BatchNorm of the gathered map z
// (s.N × s.C × s.HW) with gamma and beta, on the batch's statistics when
// training (updating the running ones with momentum, as BatchNorm does)
// or on the running ones, then the sigmoid, into gate. Training saves the
// normalised map and 1/sqrt(var+eps) per channel in zhat and rstd for
// GEGateBackward; in evaluation they may be nil.
func (d *Device) GEGate(s BNShape, z, gamma, beta, runMean, runVar, gate, zhat, rstd *Buffer, momentum, eps float32, training bool) error {
	const op = "GEGate"
	if err := s.check(op, training); err != nil {
		return err
	}
	n, c := s.Len(), s.C
	args := []nnArg{{"z", z, n}, {"gamma", gamma, c}, {"beta", beta, c}, {"runMean", runMean, c}, {"runVar", runVar, c}, {"gate", gate, n}}
	var zh, rs any = uint64(0), uint64(0) // null pointers: nothing to save
	if training {
		args = append(args, nnArg{"zhat", zhat, n}, nnArg{"rstd", rstd, c})
		zh, rs = zhat, rstd
	}
	if err := d.nnCheck(op, args...); err != nil {
		return err
	}
	p := &Plan{dev: d}
	if err := p.add(kernelRef{geSource, "ge_gate_fwd"}, perChannel(c), maxBlock, z, gamma, beta, runMean, runVar, gate, zh, rs,
		int32(s.N), int32(c), int32(s.HW), momentum, eps, nnFlag(training)); err != nil {
		return err
	}
	return d.Run(p)
}

// GEGateBackward is the gradient of a training GEGate call given dgate:
// dz (nil to skip) and the BatchNorm's dgamma and dbeta, overwritten or,
// with accZ and accParams, added to.
func (d *Device) GEGateBackward(s BNShape, gate, zhat, rstd, gamma, dgate, dz, dgamma, dbeta *Buffer, accZ, accParams bool) error {
	const op = "GEGateBackward"
	if err := s.check(op, true); err != nil {
		return err
	}
	n, c := s.Len(), s.C
	args := []nnArg{{"gate", gate, n}, {"zhat", zhat, n}, {"rstd", rstd, c}, {"gamma", gamma, c}, {"dgate", dgate, n},
		{"dgamma", dgamma, c}, {"dbeta", dbeta, c}}
	var dzArg any = uint64(0)
	if dz != nil {
		args, dzArg = append(args, nnArg{"dz", dz, n}), dz
	}
	if err := d.nnCheck(op, args...); err != nil {
		return err
	}
	p := &Plan{dev: d}
	if err := p.add(kernelRef{geSource, "ge_gate_bwd"}, perChannel(c), maxBlock, gate, zhat, rstd, gamma, dgate, dzArg,
		dgamma, dbeta, int32(s.N), int32(c), int32(s.HW), nnFlag(accZ), nnFlag(accParams)); err != nil {
		return err
	}
	return d.Run(p)
}
