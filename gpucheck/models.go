package gpucheck

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/optim"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

// ModelLimit is the largest relative error of a whole model's logits,
// loss, gradients and updated parameters.
const ModelLimit = 1e-4

// ModuleCase is a recalibration module (srm.NewRecalibrator's spec) on
// one input shape (N, C, H, W).
type ModuleCase struct {
	Spec  string
	Shape [4]int
}

// ModelCase is a zoo model on a batch of random images.
type ModelCase struct {
	Name  string
	Batch int
	Size  int // input side; the model is built for it
}

// moduleCases cover each module kind and the fused SRM's plane shapes.
var moduleCases = []ModuleCase{
	{"srm", [4]int{4, 6, 7, 7}},
	{"srm", [4]int{3, 5, 1, 2}},
	{"srm", [4]int{2, 4, 9, 11}},
	{"srm:avg+max", [4]int{3, 4, 5, 5}},
	{"srm:biased", [4]int{3, 4, 5, 5}},
	{"srm:mlp:r2", [4]int{3, 4, 5, 5}},
	{"se:r2", [4]int{3, 8, 5, 5}},
	{"ge", [4]int{3, 4, 6, 6}},
	{"ge-", [4]int{3, 4, 6, 6}},
	{"ge-:e2", [4]int{3, 4, 6, 6}},
	{"ge:e2", [4]int{3, 4, 6, 6}},
	{"ge+:r2", [4]int{3, 4, 6, 6}},
}

// twin builds the same module twice from one seed, randomises its values
// (SRM's cfc starts at zero, which would hide its gradient), and puts one
// copy on the CPU in float64 and the other on d.
func twin(d *cuda.Device, build func() (nn.Module, error), seed uint64) (cpu, gpu nn.Module, err error) {
	if cpu, err = build(); err != nil {
		return nil, nil, err
	}
	if gpu, err = build(); err != nil {
		return nil, nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	gv := gpu.Vars()
	for i, v := range cpu.Vars() {
		if v.Host {
			continue
		}
		vals := randoms(rng, v.Value.Len(), strings.HasSuffix(v.Name, "running_var"))
		for j := range vals {
			vals[j] *= 0.5
			if strings.HasSuffix(v.Name, "running_var") {
				vals[j] += 0.5
			}
		}
		h := tensor.FromFloat64(vals, v.Value.Shape()...)
		v.Value.CopyFrom(h)
		gv[i].Value.CopyFrom(h)
	}
	nn.Cast(cpu, tensor.Float64)
	return cpu, gpu, nn.To(gpu, d)
}

// compareVars adds the values (and, with grads, the gradients) of two
// twins' variables to res.
func compareVars(name string, cpu, gpu nn.Module, grads bool, limit float64, res []Result) []Result {
	gv := gpu.Vars()
	for i, v := range cpu.Vars() {
		if v.Host {
			continue
		}
		if grads {
			if v.Buffer || v.Value.Grad == nil {
				continue
			}
			res = append(res, Result{Case: name, Quantity: "grad " + v.Name, RelErr: relErr(gv[i].Value.Grad, v.Value.Grad), Limit: limit})
			continue
		}
		res = append(res, Result{Case: name, Quantity: v.Name, RelErr: relErr(gv[i].Value, v.Value), Limit: limit})
	}
	return res
}

// upload makes the float32 GPU twin of a float64 host tensor.
func upload(t *tensor.Tensor, d *cuda.Device) (*tensor.Tensor, error) {
	return t.As(tensor.Float32).To(d)
}

// checkModule compares a recalibration module's training forward and
// backward: output, input gradient, parameter gradients and running
// statistics.
func checkModule(d *cuda.Device, c ModuleCase, seed uint64) []Result {
	name := fmt.Sprintf("module %s %dx%dx%dx%d", c.Spec, c.Shape[0], c.Shape[1], c.Shape[2], c.Shape[3])
	var res []Result
	err := recovered(func() error {
		cpu, gpu, err := twin(d, func() (nn.Module, error) {
			return srm.NewRecalibrator(c.Spec, c.Shape[1], c.Shape[2], rand.New(rand.NewPCG(seed, 1)))
		}, seed)
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(seed, 2))
		x := tensor.FromFloat64(randoms(rng, c.Shape[0]*c.Shape[1]*c.Shape[2]*c.Shape[3], false), c.Shape[:]...).SetRequiresGrad(true)
		xg, err := upload(x, d)
		if err != nil {
			return err
		}
		xg.SetRequiresGrad(true)
		yc, yg := cpu.Forward(x), gpu.Forward(xg)
		dy := tensor.FromFloat64(randoms(rng, yc.Len(), false), yc.Shape()...)
		dyg, err := upload(dy, d)
		if err != nil {
			return err
		}
		yc.BackwardWith(dy)
		yg.BackwardWith(dyg)
		res = append(res, Result{Case: name, Quantity: "out", RelErr: relErr(yg, yc), Limit: OpLimit},
			Result{Case: name, Quantity: "grad x", RelErr: relErr(xg.Grad, x.Grad), Limit: OpLimit})
		res = compareVars(name, cpu, gpu, true, OpLimit, res)
		res = compareVars(name, cpu, gpu, false, OpLimit, res)
		return nil
	})
	if err != nil {
		res = append(res, Result{Case: name, Quantity: "run", Limit: OpLimit, Err: err.Error()})
	}
	return res
}

// checkModel compares one training step of a zoo model: logits, loss,
// every parameter's gradient and running statistic, and the parameters
// after an SGD step with momentum and weight decay.
func checkModel(d *cuda.Device, c ModelCase, seed uint64) []Result {
	name := fmt.Sprintf("model %s b%d %dpx", c.Name, c.Batch, c.Size)
	var res []Result
	err := recovered(func() error {
		opts := srm.Options{InputSize: c.Size, Seed: seed}
		var mc, mg *srm.Model
		cpu, gpu, err := twin(d, func() (nn.Module, error) {
			m, err := srm.NewModel(c.Name, opts)
			if err != nil {
				return nil, err
			}
			if mc == nil {
				mc = m
			} else {
				mg = m
			}
			return m.Module(), nil
		}, seed)
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(seed, 3))
		x := tensor.FromFloat64(randoms(rng, c.Batch*3*c.Size*c.Size, false), c.Batch, 3, c.Size, c.Size)
		xg, err := upload(x, d)
		if err != nil {
			return err
		}
		labels := make([]int, c.Batch)
		for i := range labels {
			labels[i] = rng.IntN(mc.Options.Classes)
		}
		oc := optim.NewSGD(cpu.Vars(), 0.1, 0.9, 1e-4, false)
		og := optim.NewSGD(gpu.Vars(), 0.1, 0.9, 1e-4, false)
		lc, err := mc.Forward(x)
		if err != nil {
			return err
		}
		lg, err := mg.Forward(xg)
		if err != nil {
			return err
		}
		res = append(res, Result{Case: name, Quantity: "logits", RelErr: relErr(lg, lc), Limit: ModelLimit})
		lossC, err := op.CrossEntropy(lc, labels)
		if err != nil {
			return err
		}
		lossG, err := op.CrossEntropy(lg, labels)
		if err != nil {
			return err
		}
		res = append(res, Result{Case: name, Quantity: "loss", RelErr: relErr(lossG, lossC), Limit: ModelLimit})
		lossC.Backward()
		lossG.Backward()
		res = compareVars(name, cpu, gpu, true, ModelLimit, res)
		oc.Step()
		og.Step()
		res = compareVars(name, cpu, gpu, false, ModelLimit, res)
		return nil
	})
	if err != nil {
		res = append(res, Result{Case: name, Quantity: "run", Limit: ModelLimit, Err: err.Error()})
	}
	return res
}
