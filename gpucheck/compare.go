package gpucheck

import (
	"fmt"
	"math"

	"github.com/srmlab/srmlab/tensor"
)

// Result is one compared quantity of one case.
type Result struct {
	Case     string  `json:"case"`
	Quantity string  `json:"quantity"` // "out", "grad x", "running_var" ...
	RelErr   float64 `json:"rel_err"`  // max |gpu − cpu| / max(max |cpu|, Floor)
	Limit    float64 `json:"limit"`
	// CPURelErr is, for whole models, the CPU engine's own float32 error
	// against its float64: what float32 arithmetic allows.
	CPURelErr float64 `json:"cpu_float32_rel_err,omitempty"`
	Err       string  `json:"error,omitempty"` // the case failed to run
	Note      string  `json:"note,omitempty"`  // what the number means, where it needs words
}

// OK reports whether the quantity is within its limit (NaN never is).
func (r Result) OK() bool { return r.Err == "" && r.RelErr <= r.Limit }

func (r Result) String() string {
	if r.Err != "" {
		return fmt.Sprintf("%-34s %-28s FAIL: %s", r.Case, r.Quantity, r.Err)
	}
	verdict := "ok"
	if !r.OK() {
		verdict = "FAIL"
	}
	var s string
	if r.CPURelErr > 0 {
		s = fmt.Sprintf("%-34s %-28s %9.2e  (CPU float32 %8.2e, limit %.1e) %s", r.Case, r.Quantity, r.RelErr, r.CPURelErr, r.Limit, verdict)
	} else {
		s = fmt.Sprintf("%-34s %-28s %9.2e  (limit %.0e) %s", r.Case, r.Quantity, r.RelErr, r.Limit, verdict)
	}
	if r.Note != "" {
		s += ": " + r.Note
	}
	return s
}

// Floor is the smallest scale errors are measured against: a quantity
// that is zero in exact arithmetic (the gradient of a bias followed by
// BatchNorm) holds only rounding noise on both sides, which is then
// compared absolutely rather than against itself.
const Floor = 1e-3

// relErr is max |got − want| / max(max |want|, Floor); a missing tensor on
// either side, or a shape mismatch, is +Inf.
func relErr(got, want *tensor.Tensor) float64 {
	if got == nil || want == nil || got.Len() != want.Len() {
		if got == nil && want == nil {
			return 0
		}
		return math.Inf(1)
	}
	g, w := got.Float64s(), want.Float64s()
	var diff, scale float64
	for i := range w {
		d := math.Abs(g[i] - w[i])
		if math.IsNaN(d) {
			return math.NaN()
		}
		diff = max(diff, d)
		scale = max(scale, math.Abs(w[i]))
	}
	return diff / max(scale, Floor)
}

// recovered runs f and turns a panic carrying an error (the engine's
// ShapeError and DeviceError) into one.
func recovered(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
				return
			}
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}
