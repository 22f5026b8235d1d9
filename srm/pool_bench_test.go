package srm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

// The shapes of a CIFAR ResNet-20's three stages at batch 128.
var stageShapes = [][4]int{{128, 16, 32, 32}, {128, 32, 16, 16}, {128, 64, 8, 8}}

func benchInput(s [4]int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float64, s[0]*s[1]*s[2]*s[3])
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return tensor.FromFloat64(v, s[:]...).As(tensor.Float32).SetRequiresGrad(true)
}

// BenchmarkStylePool times SRM's style pooling, forward and backward, in
// float32 at ResNet-20's shapes.
func BenchmarkStylePool(b *testing.B) {
	for _, s := range stageShapes {
		b.Run(fmt.Sprint(s[1]), func(b *testing.B) {
			x := benchInput(s)
			g := tensor.New(tensor.Float32, s[0], s[1], 2)
			for b.Loop() {
				x.Grad = nil
				StylePool(x, OfficialPooling, false).BackwardWith(g)
			}
		})
	}
}

// BenchmarkCFCGlobal times GE-θ's global gather (CFC with a kernel over
// the whole map), forward and backward, in float32 at ResNet-20's shapes.
func BenchmarkCFCGlobal(b *testing.B) {
	for _, s := range stageShapes {
		b.Run(fmt.Sprint(s[1]), func(b *testing.B) {
			x := benchInput(s)
			w := benchInput([4]int{s[1], 1, s[2], s[3]})
			g := tensor.New(tensor.Float32, s[0], s[1], 1, 1)
			for b.Loop() {
				x.Grad, w.Grad = nil, nil
				CFC(x, w, nil).BackwardWith(g)
			}
		})
	}
}
