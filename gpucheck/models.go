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
	{"srm:mlp:r2", [4]int{8, 4, 5, 5}},
	{"se:r2", [4]int{3, 8, 5, 5}},
	{"ge", [4]int{3, 4, 6, 6}},
	{"ge-", [4]int{3, 4, 6, 6}},
	{"ge-:e2", [4]int{3, 4, 6, 6}},
	{"ge:e2", [4]int{3, 4, 6, 6}},
	{"ge+:r2", [4]int{3, 4, 6, 6}},
}

// twins are one module built three or four times from one seed, with
// values randomised alike (SRM's cfc starts at zero, which would hide its
// gradient): the reference on the CPU in float64, the CPU engine in
// float32, the GPU, and for whole models a second reference, whose ReLU
// masks are aligned with the CPU engine's (see kinks) as the first's are
// with the GPU's, so that the CPU engine's float32 error, which sets the
// limits, is measured on the same footing.
type twins struct{ f64, f32, gpu, ref32 nn.Module }

// cpuRef is the reference the CPU engine's float32 error is measured
// against.
func (t twins) cpuRef() nn.Module {
	if t.ref32 != nil {
		return t.ref32
	}
	return t.f64
}

func newTwins(d *cuda.Device, build func() (nn.Module, error), seed uint64, aligned bool) (t twins, err error) {
	ms := make([]nn.Module, 3, 4)
	if aligned {
		ms = ms[:4]
	}
	for i := range ms {
		if ms[i], err = build(); err != nil {
			return t, err
		}
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	vars := make([][]nn.Var, len(ms))
	for i, m := range ms {
		vars[i] = m.Vars()
	}
	for i, v := range vars[0] {
		if v.Host {
			continue
		}
		variance := strings.HasSuffix(v.Name, "running_var")
		vals := randoms(rng, v.Value.Len(), variance)
		for j := range vals {
			vals[j] *= 0.5
			if variance {
				vals[j] += 0.5
			}
		}
		h := tensor.FromFloat64(vals, v.Value.Shape()...)
		for _, vs := range vars {
			vs[i].Value.CopyFrom(h)
		}
	}
	nn.Cast(ms[0], tensor.Float64)
	t = twins{f64: ms[0], f32: ms[1], gpu: ms[2]}
	if aligned {
		nn.Cast(ms[3], tensor.Float64)
		t.ref32 = ms[3]
	}
	return t, nn.To(ms[2], d)
}

// compareVars adds the values (with grads, the gradients) of the GPU
// twin's variables against the float64 reference to res. With float32
// set, each limit is the larger of limit and 4× the CPU engine's own
// float32 error on that quantity.
func compareVars(name string, t twins, grads, float32 bool, limit float64, res []Result) []Result {
	v32, vg, v64 := t.f32.Vars(), t.gpu.Vars(), t.cpuRef().Vars()
	for i, v := range t.f64.Vars() {
		if v.Host || (grads && (v.Buffer || v.Value.Grad == nil)) {
			continue
		}
		q, ref, cpu, gpu := v.Name, v.Value, v32[i].Value, vg[i].Value
		if grads {
			q, ref, cpu, gpu = "grad "+v.Name, ref.Grad, cpu.Grad, gpu.Grad
		}
		r := Result{Case: name, Quantity: q, RelErr: relErr(gpu, ref), Limit: limit}
		if float32 {
			ref32 := v64[i].Value
			if grads {
				ref32 = ref32.Grad
			}
			r.CPURelErr = relErr(cpu, ref32)
			r.Limit = max(limit, 4*r.CPURelErr)
		}
		res = append(res, r)
	}
	return res
}

// varNames maps a module's variables to their names.
func varNames(m nn.Module) map[*tensor.Tensor]string {
	names := map[*tensor.Tensor]string{}
	for _, v := range m.Vars() {
		names[v.Value] = v.Name
	}
	return names
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
		t, err := newTwins(d, func() (nn.Module, error) {
			return srm.NewRecalibrator(c.Spec, c.Shape[1], c.Shape[2], rand.New(rand.NewPCG(seed, 1)))
		}, seed, false)
		if err != nil {
			return err
		}
		cpu, gpu := t.f64, t.gpu
		rng := rand.New(rand.NewPCG(seed, 2))
		x := tensor.FromFloat64(randoms(rng, c.Shape[0]*c.Shape[1]*c.Shape[2]*c.Shape[3], false), c.Shape[:]...).SetRequiresGrad(true)
		xg, err := upload(x, d)
		if err != nil {
			return err
		}
		xg.SetRequiresGrad(true)
		x32 := x.As(tensor.Float32).SetRequiresGrad(true)
		yc, y32, yg := cpu.Forward(x), t.f32.Forward(x32), gpu.Forward(xg)
		dy := tensor.FromFloat64(randoms(rng, yc.Len(), false), yc.Shape()...)
		dyg, err := upload(dy, d)
		if err != nil {
			return err
		}
		yc.BackwardWith(dy)
		y32.BackwardWith(dy.As(tensor.Float32))
		yg.BackwardWith(dyg)
		for _, q := range []struct {
			name          string
			ref, cpu, gpu *tensor.Tensor
		}{{"out", yc, y32, yg}, {"grad x", x.Grad, x32.Grad, xg.Grad}} {
			cpuErr := relErr(q.cpu, q.ref)
			res = append(res, Result{Case: name, Quantity: q.name, RelErr: relErr(q.gpu, q.ref), CPURelErr: cpuErr, Limit: max(OpLimit, 4*cpuErr)})
		}
		res = compareVars(name, t, true, true, OpLimit, res)
		res = compareVars(name, t, false, true, OpLimit, res)
		return nil
	})
	if err != nil {
		res = append(res, Result{Case: name, Quantity: "run", Limit: OpLimit, Err: err.Error()})
	}
	return res
}

// checkModel compares one training step of a zoo model: logits, loss,
// every parameter's gradient and running statistic, and the parameters
// after an SGD step with momentum and weight decay. The reference's ReLU
// masks are first aligned with the GPU's where they differ within rounding
// (see kinks).
func checkModel(d *cuda.Device, c ModelCase, seed uint64) []Result {
	name := fmt.Sprintf("model %s b%d %dpx", c.Name, c.Batch, c.Size)
	var res []Result
	err := recovered(func() error {
		opts := srm.Options{InputSize: c.Size, Seed: seed}
		var models []*srm.Model
		t, err := newTwins(d, func() (nn.Module, error) {
			m, err := srm.NewModel(c.Name, opts)
			if err != nil {
				return nil, err
			}
			models = append(models, m)
			return m.Module(), nil
		}, seed, true)
		if err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(seed, 3))
		x := tensor.FromFloat64(randoms(rng, c.Batch*3*c.Size*c.Size, false), c.Batch, 3, c.Size, c.Size)
		labels := make([]int, c.Batch)
		for i := range labels {
			labels[i] = rng.IntN(models[0].Options.Classes)
		}
		var logits, losses [4]*tensor.Tensor
		for i, m := range models {
			xi := x // the references, 0 and 3
			switch i {
			case 1:
				xi = x.As(tensor.Float32)
			case 2:
				if xi, err = upload(x, d); err != nil {
					return err
				}
			}
			if logits[i], err = m.Forward(xi); err != nil {
				return err
			}
			if losses[i], err = op.CrossEntropy(logits[i], labels); err != nil {
				return err
			}
		}
		for _, pair := range []struct {
			ref, other nn.Module
			loss       [2]*tensor.Tensor
			what       string
		}{{t.f64, t.gpu, [2]*tensor.Tensor{losses[0], losses[2]}, "GPU"}, {t.ref32, t.f32, [2]*tensor.Tensor{losses[3], losses[1]}, "CPU float32"}} {
			res = append(res, kinks(name, pair.what, pair.loss[0], pair.loss[1], varNames(pair.ref), varNames(pair.other)))
		}
		for _, l := range losses {
			l.Backward()
		}
		for _, q := range []struct {
			name string
			ts   [4]*tensor.Tensor
		}{{"logits", logits}, {"loss", losses}} {
			cpu := relErr(q.ts[1], q.ts[3])
			res = append(res, Result{Case: name, Quantity: q.name, RelErr: relErr(q.ts[2], q.ts[0]), CPURelErr: cpu, Limit: max(ModelLimit, 4*cpu)})
		}
		res = compareVars(name, t, true, true, ModelLimit, res)
		for _, m := range []nn.Module{t.f64, t.f32, t.gpu, t.ref32} {
			optim.NewSGD(m.Vars(), 0.1, 0.9, 1e-4, false).Step()
		}
		res = compareVars(name, t, false, true, ModelLimit, res)
		return nil
	})
	if err != nil {
		res = append(res, Result{Case: name, Quantity: "run", Limit: ModelLimit, Err: err.Error()})
	}
	return res
}
