package gpucheck

import (
	"errors"
	"math/rand/v2"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/tensor"
)

// side is one run of a case: its inputs, output and updated state.
type side struct {
	in    []*tensor.Tensor
	out   *tensor.Tensor
	state []*tensor.Tensor
}

// runSide builds the inputs from vals on dev (float64 on the host when dev
// is nil, float32 on the GPU), runs the case and its backward pass from
// seed (drawn on first use, so both sides get the same one).
func runSide(c opCase, vals [][]float64, dev tensor.Device, seed *[]float64, rng *rand.Rand) (s side, err error) {
	err = recovered(func() error {
		for i, v := range vals {
			t := tensor.FromFloat64(append([]float64(nil), v...), c.inputs[i].shape...)
			if dev != nil {
				var err error
				if t, err = t.As(tensor.Float32).To(dev); err != nil {
					return err
				}
			}
			s.in = append(s.in, t.SetRequiresGrad(c.inputs[i].grad))
		}
		s.out, s.state = c.run(s.in)
		if !s.out.NeedsGrad() {
			return nil
		}
		if *seed == nil {
			*seed = randoms(rng, s.out.Len(), false)
		}
		g := tensor.FromFloat64(append([]float64(nil), *seed...), s.out.Shape()...)
		if dev != nil {
			var err error
			if g, err = g.As(tensor.Float32).To(dev); err != nil {
				return err
			}
		}
		s.out.BackwardWith(g)
		return nil
	})
	return s, err
}

// checkOp compares a case's GPU run with its CPU run.
func checkOp(d *cuda.Device, c opCase, rng *rand.Rand) []Result {
	vals := make([][]float64, len(c.inputs))
	for i, in := range c.inputs {
		vals[i] = randoms(rng, tensor.Numel(in.shape), in.pos)
	}
	var seed []float64
	fail := func(err error) []Result {
		return []Result{{Case: c.name, Quantity: "run", Limit: OpLimit, Err: err.Error()}}
	}
	cpu, err := runSide(c, vals, nil, &seed, rng)
	if err != nil {
		return fail(errors.New("on the CPU: " + err.Error()))
	}
	gpu, err := runSide(c, vals, d, &seed, rng)
	if err != nil {
		return fail(err)
	}
	res := []Result{{Case: c.name, Quantity: "out", RelErr: relErr(gpu.out, cpu.out), Limit: OpLimit}}
	for i := range cpu.state {
		res = append(res, Result{Case: c.name, Quantity: "state " + c.inputs[len(c.inputs)-len(cpu.state)+i].name,
			RelErr: relErr(gpu.state[i], cpu.state[i]), Limit: OpLimit})
	}
	for i, in := range c.inputs {
		if in.grad && cpu.in[i].Grad != nil {
			res = append(res, Result{Case: c.name, Quantity: "grad " + in.name, RelErr: relErr(gpu.in[i].Grad, cpu.in[i].Grad), Limit: OpLimit})
		}
	}
	return res
}

// randoms draws n values from N(0, 1), or from [0.5, 1.5) when positive.
func randoms(rng *rand.Rand, n int, positive bool) []float64 {
	v := make([]float64, n)
	for i := range v {
		if positive {
			v[i] = 0.5 + rng.Float64()
		} else {
			v[i] = rng.NormFloat64()
		}
	}
	return v
}
