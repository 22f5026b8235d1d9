package gpucheck

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

func TestRelErr(t *testing.T) {
	v := func(x ...float64) *tensor.Tensor { return tensor.FromFloat64(x, len(x)) }
	for _, c := range []struct {
		name      string
		got, want *tensor.Tensor
		rel       float64
	}{
		{"equal", v(1, -2), v(1, -2), 0},
		{"relative to the largest", v(1, -2.02), v(1, -2), 0.01},
		{"tiny reference compared against the floor", v(3e-9), v(1e-9), 2e-9 / Floor},
		{"missing", nil, v(1), math.Inf(1)},
		{"other length", v(1, 2), v(1), math.Inf(1)},
		{"both missing", nil, nil, 0},
	} {
		if got := relErr(c.got, c.want); math.Abs(got-c.rel) > 1e-12 && !(math.IsInf(got, 1) && math.IsInf(c.rel, 1)) {
			t.Errorf("%s: %g, want %g", c.name, got, c.rel)
		}
	}
	if got := relErr(v(math.NaN()), v(1)); !math.IsNaN(got) || (Result{RelErr: got, Limit: 1}).OK() {
		t.Errorf("NaN gave %g and passed", got)
	}
}

// summarize prints each case's worst quantity of each kind and every
// failure, and counts them.
func TestSummarize(t *testing.T) {
	var b bytes.Buffer
	summarize(&b, []Result{
		{Case: "c", Quantity: "out", RelErr: 1e-7, Limit: 1e-5},
		{Case: "c", Quantity: "grad a", RelErr: 2e-7, Limit: 1e-5},
		{Case: "c", Quantity: "grad b", RelErr: 3e-7, Limit: 1e-5},
		{Case: "d", Quantity: "grad w", RelErr: 2e-4, CPURelErr: 1e-5, Limit: 1e-4},
		{Case: "e", Quantity: "run", Err: "boom"},
	})
	out := b.String()
	for _, want := range []string{"grad b", "3.00e-07", "(worst grad)", "FAIL", "CPU float32", "boom", "5 quantities, 2 over their limits"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "grad a") {
		t.Errorf("summary lists a quantity that is neither worst nor failing:\n%s", out)
	}
}
