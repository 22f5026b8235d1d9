package op

import (
	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/tensor"
)

// crossEntropyDevice keeps the softmax for the backward pass; the labels,
// checked on the host already, go up once.
func crossEntropyDevice(d *cuda.Device, logits *tensor.Tensor, labels []int) *tensor.Tensor {
	g := GPU{d, "CrossEntropy"}
	n, k := logits.Dim(0), logits.Dim(1)
	lab := g.Buf(g.Empty(n)) // int32s: the same 4 bytes a value
	g.Must(lab.CopyFromInt32(int32s(labels)))
	probs := g.Empty(n, k)
	loss := g.Empty()
	g.Must(d.CrossEntropy(g.Buf(logits), lab, g.Buf(loss), g.Buf(probs), n, k))
	tensor.Record(loss, func(grad *tensor.Tensor) {
		dx, acc := g.Grad(logits)
		g.Must(d.CrossEntropyBackward(g.Buf(probs), lab, g.Buf(grad), dx, n, k, acc))
	}, logits)
	return loss
}
