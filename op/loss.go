package op

import (
	"fmt"
	"math"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/tensor"
)

// CrossEntropy is the mean softmax cross-entropy of logits (N, K) against
// integer labels in [0, K), as PyTorch's F.cross_entropy; it returns a
// scalar. Labels come from data, so a label out of range, a label count
// other than N, or an empty batch is an error (naming the label's position)
// rather than a panic.
func CrossEntropy(logits *tensor.Tensor, labels []int) (*tensor.Tensor, error) {
	s := logits.Shape()
	if len(s) != 2 {
		tensor.Panicf("CrossEntropy: logits %v are not (N, K)", s)
	}
	if len(labels) != s[0] {
		return nil, fmt.Errorf("CrossEntropy: %d labels for %d rows of logits", len(labels), s[0])
	}
	if s[0] == 0 {
		return nil, fmt.Errorf("CrossEntropy: empty batch")
	}
	for i, l := range labels {
		if l < 0 || l >= s[1] {
			return nil, fmt.Errorf("CrossEntropy: label %d at position %d is outside [0, %d)", l, i, s[1])
		}
	}
	if d := DeviceOf("CrossEntropy", logits); d != nil {
		return crossEntropyDevice(d, logits, labels), nil
	}
	if logits.DType() == tensor.Float64 {
		return crossEntropy[float64](logits, labels), nil
	}
	return crossEntropy[float32](logits, labels), nil
}

func crossEntropy[T kern.Float](logits *tensor.Tensor, labels []int) *tensor.Tensor {
	n, k := logits.Dim(0), logits.Dim(1)
	xs := kern.Vals[T](logits)
	// Backward may run after the caller has reused its label buffer.
	labels = append([]int(nil), labels...)
	// Each row's log Σ exp, shifted by the row maximum so that exp cannot
	// overflow; backward recovers the softmax from it.
	lse := make([]float64, n)
	var total float64
	for i := range n {
		row := xs[i*k : (i+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		lse[i] = mx + math.Log(sum)
		total += lse[i] - float64(row[labels[i]])
	}
	out := tensor.Scalar(logits.DType(), total/float64(n))
	tensor.Record(out, func(grad *tensor.Tensor) {
		g := grad.Item() / float64(n)
		gx := kern.Vals[T](tensor.GradOf(logits))
		for i := range n {
			row, dst := xs[i*k:(i+1)*k], gx[i*k:(i+1)*k]
			for j, v := range row {
				p := math.Exp(float64(v) - lse[i])
				if j == labels[i] {
					p--
				}
				dst[j] += T(g * p)
			}
		}
	}, logits)
	return out
}
