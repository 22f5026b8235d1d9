package cuda

import (
	"errors"
	"fmt"
)

// ceSizes checks an n × k batch of logits.
func ceSizes(op string, n, k int) error {
	if n < 1 || k < 1 {
		return fmt.Errorf("cuda: %s: %d rows of %d classes", op, n, k)
	}
	if float64(n)*float64(k) > maxIndex {
		return fmt.Errorf("cuda: %s: %d×%d logits are too many", op, n, k)
	}
	return nil
}

// CrossEntropy sets loss[0] to the mean over the n rows of logits (n × k)
// of −log softmax(row)[label], as PyTorch's cross_entropy, and saves each
// row's softmax in probs (n × k) for CrossEntropyBackward. labels holds n
// int32 class indices on the device (see CopyFromInt32); the caller checks
// that they lie in [0, k), on the host where they come from. Rows are
// shifted by their maximum and reduced in double; a NaN logit makes the
// loss NaN.
func (d *Device) CrossEntropy(logits, labels, loss, probs *Buffer, n, k int) error {
	const op = "CrossEntropy"
	if err := ceSizes(op, n, k); err != nil {
		return err
	}
	err := d.nnCheck(op, nnArg{"logits", logits, n * k}, nnArg{"labels", labels, n}, nnArg{"loss", loss, 1}, nnArg{"probs", probs, n * k})
	if err != nil {
		return err
	}
	return d.runNN([]int{2 * n}, func(p *Plan, scratch []*Buffer) error {
		rowLoss := scratch[0] // n doubles
		return errors.Join(
			p.add(kernelRef{nnSource, "nn_ce_forward"}, warpGrid(n), maxBlock, logits, labels, probs, rowLoss, int32(n), int32(k)),
			p.add(kernelRef{nnSource, "nn_ce_mean"}, 1, maxBlock, rowLoss, loss, int32(n)))
	})
}

// CrossEntropyBackward sets dlogits = (probs − onehot(labels))·dloss[0]/n,
// the gradient of CrossEntropy's mean loss scaled by the loss's own
// gradient dloss (one value on the device), or adds it into dlogits when
// accumulate is set; dlogits may be probs.
func (d *Device) CrossEntropyBackward(probs, labels, dloss, dlogits *Buffer, n, k int, accumulate bool) error {
	const op = "CrossEntropyBackward"
	if err := ceSizes(op, n, k); err != nil {
		return err
	}
	err := d.nnCheck(op, nnArg{"probs", probs, n * k}, nnArg{"labels", labels, n}, nnArg{"dloss", dloss, 1}, nnArg{"dlogits", dlogits, n * k})
	if err != nil {
		return err
	}
	return d.launch1("nn_ce_bwd", d.mapGrid(n*k), probs, labels, dloss, dlogits, int32(n), int32(k), nnFlag(accumulate))
}
