package cuda_test

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/gpucheck"
)

// TestEngineEmulated runs the acceptance check's comparisons, every
// operation's GPU path, each recalibration module and a whole CIFAR
// ResNet's training step, through the stand-in driver and the kernel
// emulator, against the CPU engine: the device paths of op, srm and optim
// are tested wherever the tests run, not only on a GPU machine.
func TestEngineEmulated(t *testing.T) {
	d := cuda.OpenEmulated(t)
	// SRM's BatchNorm normalises each channel over the batch alone: with two
	// images its output is ±1 and its gradient zero in exact arithmetic, so
	// every gradient below it would be rounding noise; three are the least
	// that make the comparison mean something.
	o := gpucheck.Options{SkipKernels: true, Seed: 3, Models: []gpucheck.ModelCase{{Name: "srm-resnet20", Batch: 3, Size: 8}, {Name: "se-resnet20", Batch: 2, Size: 8}, {Name: "ge-resnet20", Batch: 2, Size: 8}}}
	if testing.Short() {
		o.Models = []gpucheck.ModelCase{}
		o.SkipModules = true
	}
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stdout
	}
	rep, err := gpucheck.Run(context.Background(), d, o, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(rep.Ops, rep.Models...) {
		if !r.OK() {
			t.Error(r)
		}
	}
	if len(rep.Ops) < 40 || (!testing.Short() && len(rep.Models) < 20) {
		t.Errorf("only %d operation and %d model quantities compared", len(rep.Ops), len(rep.Models))
	}
	if !testing.Short() {
		// The step timing's code path, on a small net: steps queued back
		// to back between markers, then waited for one by one.
		o := gpucheck.Options{SkipKernels: true, SkipModules: true, OpFilter: func(string) bool { return false },
			Models: []gpucheck.ModelCase{}, Timed: []string{"plain", "srm"}, TimedNet: "resnet20", TimedBatch: 2, Warmup: 1, Steps: 2}
		var out strings.Builder
		tr, err := gpucheck.Run(context.Background(), d, o, io.MultiWriter(w, &out))
		if err != nil {
			t.Fatal(err)
		}
		if st := tr.ResNet50["srm"]; st.MedianMS <= 0 || st.SyncedMS <= 0 || tr.SRMOverhead == nil || tr.SRMOverheadMin == nil ||
			len(st.QueuedMS) != 2 || st.QueuedMS[0] <= 0 || st.Started == "" {
			t.Errorf("timings %+v, overhead %v, by minimums %v", tr.ResNet50, tr.SRMOverhead, tr.SRMOverheadMin)
		}
		if !strings.Contains(out.String(), "each queued step in order") || !strings.Contains(out.String(), "srm    from ") {
			t.Errorf("no step-by-step times in\n%s", out.String())
		}
	}
	if !strings.Contains(rep.ConvBackend, "im2col") {
		t.Errorf("conv backend %q, want the im2col fallback without cuDNN", rep.ConvBackend)
	}
}
