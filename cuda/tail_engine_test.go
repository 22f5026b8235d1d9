package cuda_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// TestBatchNormAddReLUEmulated runs op.BatchNormAddReLU in training mode,
// on a GPU cuda's plain block tail, on the emulated device against the CPU
// engine in float64: the output, the running statistics and the gradients
// of x, short, gamma and beta, over two steps, the second adding to the
// first's gradients; with a shortcut of its own, with x as the shortcut
// (both gradients into one), and on an (N, C) input.
func TestBatchNormAddReLUEmulated(t *testing.T) {
	d := cuda.OpenEmulated(t)
	for _, c := range []struct {
		name  string
		shape []int
		self  bool
	}{
		{"3x4x7x7", []int{3, 4, 7, 7}, false},
		{"short is x", []int{2, 3, 8, 8}, true},
		{"(N, C)", []int{5, 6}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 12))
			n, ch := tensor.Numel(c.shape), c.shape[1]
			vals := func(k int, lo, hi float64) []float64 {
				v := make([]float64, k)
				for i := range v {
					v[i] = float64(float32(lo + (hi-lo)*rng.Float64()))
				}
				return v
			}
			x, short, seed := vals(n, -2, 3), vals(n, -1, 1), vals(n, -1, 1)
			gamma, beta, rm, rv := vals(ch, 0.5, 1.5), vals(ch, -0.5, 0.5), vals(ch, -0.5, 0.5), vals(ch, 0.5, 1.5)
			// engine holds one engine's tensors: the CPU's in float64, the
			// emulated GPU's in float32.
			type engine struct{ x, short, gamma, beta, rm, rv, seed, out *tensor.Tensor }
			place := func(dev tensor.Device) *engine {
				mk := func(v []float64, shape ...int) *tensor.Tensor {
					t64 := tensor.FromFloat64(v, shape...)
					if dev == nil {
						return t64
					}
					moved, err := t64.As(tensor.Float32).To(dev)
					if err != nil {
						t.Fatal(err)
					}
					return moved
				}
				e := &engine{x: mk(x, c.shape...).SetRequiresGrad(true), gamma: mk(gamma, ch).SetRequiresGrad(true),
					beta: mk(beta, ch).SetRequiresGrad(true), rm: mk(rm, ch), rv: mk(rv, ch), seed: mk(seed, c.shape...)}
				e.short = mk(short, c.shape...).SetRequiresGrad(true)
				if c.self {
					e.short = e.x
				}
				return e
			}
			cpu, gpu := place(nil), place(d)
			for step := range 2 {
				for _, e := range []*engine{cpu, gpu} {
					e.out = op.BatchNormAddReLU(e.x, e.gamma, e.beta, e.rm, e.rv, e.short, true, 0.1, 1e-5)
					e.out.BackwardWith(e.seed)
				}
				for _, q := range []struct {
					name     string
					got, ref *tensor.Tensor
				}{
					{"out", gpu.out, cpu.out}, {"running mean", gpu.rm, cpu.rm}, {"running var", gpu.rv, cpu.rv},
					{"grad x", gpu.x.Grad, cpu.x.Grad}, {"grad short", gpu.short.Grad, cpu.short.Grad},
					{"grad gamma", gpu.gamma.Grad, cpu.gamma.Grad}, {"grad beta", gpu.beta.Grad, cpu.beta.Grad},
				} {
					got, ref := q.got.Float64s(), q.ref.Float64s()
					var num, den float64
					for i := range ref {
						num, den = max(num, math.Abs(got[i]-ref[i])), max(den, math.Abs(ref[i]))
					}
					if !(num <= 1e-5*den) {
						t.Errorf("step %d %s: relative error %.3g", step, q.name, num/den)
					}
				}
			}
		})
	}
}
