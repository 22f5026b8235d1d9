package gpucheck

import (
	"strings"
	"testing"

	"github.com/srmlab/srmlab/cuda"
)

func TestCompareRuns(t *testing.T) {
	base := &Report{Report: &cuda.Report{Timings: []cuda.Timing{
		{Shape: "64x2048x7x7", Op: "train_fwd_bwd", MedianUS: 88},
		{Shape: "128x64x32x32", Op: "srm_tail_bwd", MedianUS: 50},
	}}, ResNet50: map[string]StepTime{"srm": {MedianMS: 28.6, MinMS: 27.0}, "plain": {MedianMS: 29.4, MinMS: 26.7}}}
	pdl := &Report{Report: &cuda.Report{
		Timings: []cuda.Timing{{Shape: "64x2048x7x7", Op: "train_fwd_bwd", MedianUS: 80}},
		Checks:  []cuda.CheckResult{{RelErr: 1, Limit: 1e-5}},
	}, ResNet50: map[string]StepTime{"srm": {MedianMS: 26, MinMS: 27.0}}}
	var b strings.Builder
	if err := CompareRuns(&b, []string{"default", "pdl"}, []*Report{base, pdl}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"64x2048x7x7 train_fwd_bwd                    88.0       80.0 (1.10x)",
		"128x64x32x32 srm_tail_bwd                    50.0                  -",
		"plain                                        29.4                  -",
		"srm                                          28.6       26.0 (1.10x)",
		"== ResNet-50 training steps: minimum ms, and the first run's over each ==",
		"plain                                        26.7                  -",
		"srm                                          27.0       27.0 (1.00x)",
		"== checks over their limits: default 0, pdl 1 ==",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if err := CompareRuns(&b, []string{"one"}, []*Report{base}); err == nil {
		t.Error("one run compared")
	}
}
