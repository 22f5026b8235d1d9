package op

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

// BenchmarkBatchNormReLU times forward and backward of BatchNormReLU in
// training at the feature-map shapes of a CIFAR ResNet-20 at batch 128, in
// float32.
func BenchmarkBatchNormReLU(b *testing.B) {
	for _, s := range []struct{ c, px int }{{16, 32}, {32, 16}, {64, 8}} {
		b.Run(fmt.Sprintf("C%d_%dpx", s.c, s.px), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			x := tensor.Zeros(128, s.c, s.px, s.px)
			x.FillNormal(r, 0.2, 1)
			x.SetRequiresGrad(true)
			gamma, beta := tensor.Zeros(s.c), tensor.Zeros(s.c)
			gamma.FillNormal(r, 1, 0.2)
			beta.FillNormal(r, 0, 0.2)
			gamma.SetRequiresGrad(true)
			beta.SetRequiresGrad(true)
			rm, rv := bnStats(tensor.Float32, s.c)
			seed := tensor.ZerosLike(x)
			seed.FillNormal(r, 0, 1)
			b.SetBytes(int64(x.Len()) * 4)
			for b.Loop() {
				for _, p := range []*tensor.Tensor{x, gamma, beta} {
					p.ZeroGrad()
				}
				BatchNormReLU(x, gamma, beta, rm, rv, true, 0.1, 1e-5).BackwardWith(seed)
			}
		})
	}
}
