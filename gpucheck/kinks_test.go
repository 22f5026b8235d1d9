package gpucheck

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// kinkNet is a two-layer perceptron whose first hidden value of the first
// sample sits at offset from ReLU's kink; bump shifts every other hidden
// value (as another engine's rounding would).
type kinkNet struct {
	w1, b1, w2, b2 *tensor.Tensor
	loss           *tensor.Tensor
}

func newKinkNet(offset, bump float64) *kinkNet {
	rng := rand.New(rand.NewPCG(7, 7))
	const n, k, h, classes = 4, 5, 6, 3
	x := tensor.FromFloat64(randoms(rng, n*k, false), n, k)
	net := &kinkNet{
		w1: tensor.FromFloat64(randoms(rng, h*k, false), h, k).SetRequiresGrad(true),
		b1: tensor.FromFloat64(randoms(rng, h, false), h).SetRequiresGrad(true),
		w2: tensor.FromFloat64(randoms(rng, classes*h, false), classes, h).SetRequiresGrad(true),
		b2: tensor.FromFloat64(randoms(rng, classes, false), classes).SetRequiresGrad(true),
	}
	var h0 float64
	for j := range k {
		h0 += x.At(j) * net.w1.At(j)
	}
	net.b1.Set(0, -h0+offset)
	for j := 1; j < h; j++ {
		net.b1.Set(j, net.b1.At(j)+bump)
	}
	logits := op.Linear(op.ReLU(op.Linear(x, net.w1, net.b1)), net.w2, net.b2)
	var err error
	if net.loss, err = op.CrossEntropy(logits, []int{0, 1, 2, 0}); err != nil {
		panic(err)
	}
	return net
}

func (n *kinkNet) names() map[*tensor.Tensor]string {
	return map[*tensor.Tensor]string{n.w1: "fc1.weight", n.b1: "fc1.bias", n.w2: "fc2.weight", n.b2: "fc2.bias"}
}

// TestKinksAlign: a hidden value just below 0 in the reference and just
// above in the other engine (within the other values' differences) is a
// kink; aligning the mask makes the gradients agree, which without it
// differ by the whole of that element's share.
func TestKinksAlign(t *testing.T) {
	const bump = 1e-9
	for _, align := range []bool{false, true} {
		ref, other := newKinkNet(-1e-10, 0), newKinkNet(1e-10, bump)
		if align {
			r := kinks("net", "other", ref.loss, other.loss, ref.names(), other.names())
			if !r.OK() || r.RelErr <= 0 {
				t.Fatalf("one flip within rounding: %v", r)
			}
		}
		ref.loss.Backward()
		other.loss.Backward()
		diff := relErr(other.w1.Grad, ref.w1.Grad)
		if align && diff > 1e-7 {
			t.Errorf("aligned masks: fc1.weight's gradients differ by %.2e", diff)
		}
		if !align && diff < 1e-3 {
			t.Errorf("without alignment the gradients differ by only %.2e: the test's kink has no effect", diff)
		}
	}
}

// TestKinksTooFar: a mask that differs by more than rounding is an error,
// not a kink.
func TestKinksTooFar(t *testing.T) {
	ref, other := newKinkNet(-0.1, 0), newKinkNet(0.1, 1e-9)
	r := kinks("net", "other", ref.loss, other.loss, ref.names(), other.names())
	if r.OK() {
		t.Errorf("a flip of 0.1 passed: %v", r)
	}
}

func TestKinksAgree(t *testing.T) {
	ref, other := newKinkNet(0.5, 0), newKinkNet(0.5, 1e-9)
	r := kinks("net", "other", ref.loss, other.loss, ref.names(), other.names())
	if !r.OK() || r.RelErr != 0 {
		t.Errorf("no flip: %v", r)
	}
}

func TestAlignMasks(t *testing.T) {
	for _, c := range []struct {
		name       string
		ref, other []float64
		count      int
		ratio      float64
	}{
		{"agree", []float64{0, 1, 2}, []float64{0, 1.1, 2}, 0, 0},
		{"kink within rounding", []float64{0, 1, 2}, []float64{0.2, 1.1, 2}, 1, 0.2 / (kinkSlack * 0.1)},
		{"reference side positive", []float64{0.3, 1, 2}, []float64{0, 1.1, 2}, 1, 0.3 / (kinkSlack * 0.1)},
		{"nothing else differs", []float64{0, 1}, []float64{1e-9, 1}, 1, math.Inf(1)},
	} {
		f, at := alignMasks(c.ref, c.other)
		if f.count != c.count || len(at) != c.count || math.Abs(f.ratio-c.ratio) > 1e-12 && !math.IsInf(c.ratio, 1) || math.IsInf(c.ratio, 1) != math.IsInf(f.ratio, 1) {
			t.Errorf("%s: %+v %v, want %d flips of ratio %g", c.name, f, at, c.count, c.ratio)
		}
		for i, v := range at {
			if v != c.other[i] {
				t.Errorf("%s: element %d set to %g, want the other's %g", c.name, i, v, c.other[i])
			}
		}
	}
}
