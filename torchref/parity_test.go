package torchref_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
	"github.com/srmlab/srmlab/torchref"
	"github.com/srmlab/srmlab/weights"
)

// tolerances bound max|srmlab − PyTorch| / max|PyTorch| per tensor against
// PyTorch's float64 reference.
//
// In float64 the two implementations must agree to rounding, everywhere:
// this is the parity test proper, far below any modelling slip.
//
// In float32, srmlab's working type, values of the forward pass (logits,
// loss, BatchNorm running statistics) are held to float32 tolerances, but
// gradients cannot be: a ReLU whose input lies within float32 rounding of
// zero passes or blocks its gradient depending on the last bit, and on
// these small maps one such element moves its channel's gradient by about
// 1/√(N·H·W) of it, and the gradients upstream with it: PyTorch's own
// float32 gradients missed its float64 ones by 16 % on one draw of
// SE-ResNet-18 (a flip in the 2x2 layer4) and by 0.4 % on one of ResNet-20
// (make_parity.py reports PyTorch's float32 error, logged beside
// srmlab's). So float32 gradients are held to 1e-2, ten times the
// largest such flip seen on these fixed draws (3.6e-3, GE-ResNet-20), and
// the float64 run, free of flips, is the strict check.
type tolerances struct{ eval, train, grads, stats float64 }

var tols = map[tensor.DType]tolerances{
	tensor.Float32: {eval: 1e-4, train: 1e-3, grads: 1e-2, stats: 1e-4},
	tensor.Float64: {eval: 1e-10, train: 1e-10, grads: 1e-10, stats: 1e-10},
}

// zero is the size, relative to the model's largest gradient, below which a
// float64 reference gradient is rounding noise around an exact zero (GE's
// conv bias, whose shift the training-mode BatchNorm after it cancels);
// such a gradient is measured against the largest one.
const zero = 1e-10

// manifest is make_parity.py's manifest.json.
type manifest struct {
	Torch  string
	Models []struct {
		Name              string
		Classes, Size     int
		TorchFloat32Error float64 `json:"torch_float32_error"`
	}
}

// TestPyTorchParity builds every model make_parity.py drew, loads its
// PyTorch state_dict, and checks eval logits, then after one training-mode
// forward and backward the logits, loss, every parameter gradient and the
// BatchNorm buffers, in float32 and in float64, against PyTorch's float64
// reference.
func TestPyTorchParity(t *testing.T) {
	ctx := context.Background()
	if _, err := torchref.Python(ctx); err != nil {
		t.Skipf("no PyTorch reference: %v", err)
	}
	dir := t.TempDir()
	if _, err := torchref.Run(ctx, "make_parity.py", dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man manifest
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	t.Logf("PyTorch %s", man.Torch)
	for _, m := range man.Models {
		t.Run(m.Name, func(t *testing.T) {
			d := filepath.Join(dir, m.Name)
			ref := map[string]*tensor.Tensor{}
			named, err := weights.LoadTorch(filepath.Join(d, "reference.pt"))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range named {
				ref[n.Name] = n.Tensor
			}
			t.Logf("PyTorch float32 gradients: %.2g", m.TorchFloat32Error)
			for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
				p := &parity{t: t, dt: dt, tol: tols[dt], ref: ref}
				p.run(d, m.Name, srm.Options{Classes: m.Classes, InputSize: m.Size})
				t.Logf("%v: %s", dt, strings.Join(p.report, ", "))
			}
		})
	}
}

// parity runs one model in one element type against the reference.
type parity struct {
	t      *testing.T
	dt     tensor.DType
	tol    tolerances
	ref    map[string]*tensor.Tensor
	report []string
}

func (p *parity) run(dir, name string, o srm.Options) {
	t := p.t
	m, err := srm.NewModel(name, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := weights.Load(m.Module(), filepath.Join(dir, "state_dict.pt")); err != nil {
		t.Fatal(err)
	}
	nn.Cast(m.Module(), p.dt)
	x, err := weights.ReadNpy(filepath.Join(dir, "input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	x = x.As(p.dt)
	labels := make([]int, p.ref["labels"].Len())
	for i := range labels {
		labels[i] = int(p.ref["labels"].At(i))
	}

	m.Eval()
	logits, err := m.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	p.log("eval logits", p.check("eval logits", logits, p.ref["eval_logits"], 0, p.tol.eval))

	m.Train()
	logits, err = m.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := op.CrossEntropy(logits, labels)
	if err != nil {
		t.Fatal(err)
	}
	loss.Backward()
	p.log("train logits", p.check("train logits", logits, p.ref["logits"], 0, p.tol.train))
	p.log("loss", p.check("loss", loss, p.ref["loss"], 0, p.tol.train))

	var big float64 // the largest gradient, the scale of exact zeros
	for k, g := range p.ref {
		if strings.HasPrefix(k, "grad.") {
			big = max(big, maxAbs(g.Float64s()))
		}
	}
	var worstGrad, worstStat worst
	for _, v := range m.Vars() {
		key, got, tol, w := "grad."+v.Name, v.Value.Grad, p.tol.grads, &worstGrad
		if v.Buffer {
			key, got, tol, w = "state."+v.Name, v.Value, p.tol.stats, &worstStat
			if strings.HasSuffix(v.Name, "num_batches_tracked") {
				tol = 0
			}
		}
		want, ok := p.ref[key]
		switch {
		case !ok:
			t.Errorf("%v: PyTorch has no %s", p.dt, key)
		case got == nil:
			t.Errorf("%v: %s: no gradient", p.dt, v.Name)
		default:
			w.see(v.Name, p.check(key, got, want, big, tol))
		}
	}
	p.log(fmt.Sprintf("%d gradients", len(nn.Params(m.Module()))), worstGrad.err)
	p.report = append(p.report, "worst "+worstGrad.name, fmt.Sprintf("BatchNorm buffers %.2g (%s)", worstStat.err, worstStat.name))
}

func (p *parity) log(what string, e float64) {
	p.report = append(p.report, fmt.Sprintf("%s %.2g", what, e))
}

// check compares got with want and returns max|got − want| / max|want|,
// measuring a want that is zero up to rounding against floor instead.
func (p *parity) check(what string, got, want *tensor.Tensor, floor, tol float64) float64 {
	p.t.Helper()
	if got.Len() != want.Len() {
		p.t.Errorf("%v: %s: %v values, PyTorch %v", p.dt, what, got.Shape(), want.Shape())
		return math.Inf(1)
	}
	g, w := got.Float64s(), want.Float64s()
	scale := maxAbs(w)
	if scale < zero*floor {
		scale = floor
	}
	var diff float64
	for i := range g {
		diff = max(diff, math.Abs(g[i]-w[i]))
	}
	e := 0.0
	if diff > 0 {
		e = diff / scale
	}
	if !(e <= tol) {
		p.t.Errorf("%v: %s: relative error %.3g > %g (max |diff| %.3g, max |PyTorch| %.3g)", p.dt, what, e, tol, diff, maxAbs(w))
	}
	return e
}

// worst tracks the tensor with the largest error.
type worst struct {
	err  float64
	name string
}

func (w *worst) see(name string, e float64) {
	if e >= w.err {
		w.err, w.name = e, name
	}
}

func maxAbs(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, math.Abs(x))
	}
	return m
}
