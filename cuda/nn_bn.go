package cuda

import (
	"errors"
	"fmt"
)

// BNShape is what BatchNorm sees of its input: N samples of C channels of
// HW values each, HW being H·W for (N, C, H, W) and 1 for (N, C).
type BNShape struct{ N, C, HW int }

// Len is the number of values, N·C·HW.
func (s BNShape) Len() int { return s.N * s.C * s.HW }

// check rejects empty or oversized shapes, and in training a channel of a
// single value, whose unbiased variance does not exist (PyTorch refuses it
// too).
func (s BNShape) check(op string, training bool) error {
	if s.N < 1 || s.C < 1 || s.HW < 1 {
		return fmt.Errorf("cuda: %s: shape %+v has an empty dimension", op, s)
	}
	if float64(s.N)*float64(s.C)*float64(s.HW) > maxIndex {
		return fmt.Errorf("cuda: %s: shape %+v has too many values", op, s)
	}
	if training && s.N*s.HW < 2 {
		return fmt.Errorf("cuda: %s: shape %+v: training needs more than one value per channel", op, s)
	}
	return nil
}

// bnApply queues the affine map of each channel that coef (4 floats per
// channel, see affine in nn.cu) describes, then ReLU when relu is set.
func (d *Device) bnApply(p *Plan, s BNShape, x, y, coef *Buffer, relu bool) error {
	return p.add(kernelRef{nnSource, "nn_bn_apply"}, d.mapGrid(s.Len()), maxBlock,
		x, y, coef, int32(s.Len()), int32(s.C), int32(s.HW), nnFlag(relu))
}

// BatchNormTrain normalises x per channel with the batch statistics, as
// PyTorch's BatchNorm in training mode: y = (x−mean)·rstd·gamma + beta,
// then ReLU when relu is set, with rstd = 1/sqrt(var+eps) and var the
// biased batch variance. It saves mean (2·C values: each channel's mean as
// a float and the float of the remainder) and rstd per channel for
// BatchNormBackward and updates the running statistics,
// running = (1−momentum)·running + momentum·batch, the variance's being
// the unbiased one. y may be x (but the backward pass needs x).
//
// Three launches: partial shifted sums per channel (several blocks per
// channel when channels are few and large), the per-channel finish, and
// the elementwise affine map.
func (d *Device) BatchNormTrain(s BNShape, x, gamma, beta, runMean, runVar, y, saveMean, saveRstd *Buffer, momentum, eps float32, relu bool) error {
	const op = "BatchNormTrain"
	if err := s.check(op, true); err != nil {
		return err
	}
	n, c := s.Len(), s.C
	err := d.nnCheck(op, nnArg{"x", x, n}, nnArg{"gamma", gamma, c}, nnArg{"beta", beta, c}, nnArg{"runMean", runMean, c},
		nnArg{"runVar", runVar, c}, nnArg{"y", y, n}, nnArg{"saveMean", saveMean, 2 * c}, nnArg{"saveRstd", saveRstd, c})
	if err != nil {
		return err
	}
	r := d.reductionFor(s)
	return d.runNN([]int{r.partials(s), 4 * c}, func(p *Plan, scratch []*Buffer) error {
		part, coef := scratch[0], scratch[1]
		return errors.Join(
			addReduce(p, "nn_bn_stats", s, r, part, x),
			p.add(kernelRef{nnSource, "nn_bn_stats_final"}, perChannelGrid(c), maxBlock, part, x, gamma, beta, runMean, runVar,
				saveMean, saveRstd, coef, int32(s.N), int32(c), int32(s.HW), int32(r.splits), momentum, eps),
			d.bnApply(p, s, x, y, coef, relu))
	})
}

// BatchNormEval normalises x per channel with the running statistics, as
// BatchNorm in evaluation mode, then ReLU when relu is set; y may be x.
func (d *Device) BatchNormEval(s BNShape, x, gamma, beta, runMean, runVar, y *Buffer, eps float32, relu bool) error {
	const op = "BatchNormEval"
	if err := s.check(op, false); err != nil {
		return err
	}
	n, c := s.Len(), s.C
	err := d.nnCheck(op, nnArg{"x", x, n}, nnArg{"gamma", gamma, c}, nnArg{"beta", beta, c}, nnArg{"runMean", runMean, c},
		nnArg{"runVar", runVar, c}, nnArg{"y", y, n})
	if err != nil {
		return err
	}
	return d.runNN([]int{4 * c}, func(p *Plan, scratch []*Buffer) error {
		coef := scratch[0]
		return errors.Join(
			p.add(kernelRef{nnSource, "nn_bn_eval_coef"}, perChannelGrid(c), maxBlock, gamma, beta, runMean, runVar, coef, int32(c), eps),
			d.bnApply(p, s, x, y, coef, relu))
	})
}

// BatchNormBackward is the gradient of a BatchNormTrain call that saved
// saveMean and saveRstd from input x and wrote y: with g = dy (masked by
// y > 0 first when relu is set; y is not read otherwise and may be nil),
//
//	dbeta  = Σ g,  dgamma = Σ g·x̂,  x̂ = (x−mean)·rstd
//	dx     = (g − Σg/M − x̂·Σg·x̂/M)·gamma·rstd,  M = N·HW,
//
// the batch statistics' dependence on x included. dx, dgamma and dbeta
// are overwritten, or added into when accX (dx) or accParams (dgamma,
// dbeta) is set. dx may be nil to skip it, and may be dy.
func (d *Device) BatchNormBackward(s BNShape, x, y, dy, gamma, saveMean, saveRstd, dx, dgamma, dbeta *Buffer, relu, accX, accParams bool) error {
	const op = "BatchNormBackward"
	if err := s.check(op, true); err != nil {
		return err
	}
	n, c := s.Len(), s.C
	args := []nnArg{{"x", x, n}, {"dy", dy, n}, {"gamma", gamma, c}, {"saveMean", saveMean, 2 * c},
		{"saveRstd", saveRstd, c}, {"dgamma", dgamma, c}, {"dbeta", dbeta, c}}
	if relu {
		args = append(args, nnArg{"y", y, n})
	} else {
		y = x // a stand-in the kernels do not read
	}
	if dx != nil {
		args = append(args, nnArg{"dx", dx, n})
	}
	if err := d.nnCheck(op, args...); err != nil {
		return err
	}
	r := d.reductionFor(s)
	return d.runNN([]int{r.partials(s), 4 * c}, func(p *Plan, scratch []*Buffer) error {
		part, coef := scratch[0], scratch[1]
		err := errors.Join(
			addReduce(p, "nn_bn_bwd_sums", s, r, part, x, y, dy, saveMean, nnFlag(relu)),
			p.add(kernelRef{nnSource, "nn_bn_bwd_final"}, perChannelGrid(c), maxBlock, part, gamma, saveMean, saveRstd,
				dgamma, dbeta, coef, int32(s.N), int32(c), int32(s.HW), int32(r.splits), nnFlag(accParams)))
		if err != nil || dx == nil {
			return err
		}
		return p.add(kernelRef{nnSource, "nn_bn_bwd_dx"}, d.mapGrid(n), maxBlock, x, y, dy, coef, dx,
			int32(n), int32(c), int32(s.HW), nnFlag(relu), nnFlag(accX))
	})
}
