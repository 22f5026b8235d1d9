package bench_test

import (
	"context"
	"slices"
	"testing"

	"github.com/srmlab/srmlab/bench"
)

func benchmarkStep(b *testing.B, name string) {
	s, err := bench.NewTrainStep(name, bench.Batch, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Run(); err != nil { // first-use allocations stay out of the timing
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrainStepResNet20 times one CIFAR training step of ResNet-20,
// batch 128, the step torchref's PyTorch peer times.
func BenchmarkTrainStepResNet20(b *testing.B) { benchmarkStep(b, "resnet20") }

// BenchmarkTrainStepSRMResNet20 is the same step with SRM in every block.
func BenchmarkTrainStepSRMResNet20(b *testing.B) { benchmarkStep(b, "srm-resnet20") }

// BenchmarkTrainStepResNet56 is the step of the deeper plain ResNet.
func BenchmarkTrainStepResNet56(b *testing.B) { benchmarkStep(b, "resnet56") }

func TestTrainStepUpdates(t *testing.T) {
	s, err := bench.NewTrainStep("srm-resnet20", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := s.Model.Vars()[0].Value // conv1.weight
	before := slices.Clone(w.F32())
	if _, err := s.Median(context.Background(), 0, 1); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(before, w.F32()) {
		t.Errorf("a training step left conv1.weight unchanged")
	}
	if _, err := s.Median(context.Background(), 1, 0); err == nil {
		t.Errorf("Median with no timed steps: no error")
	}
}

func TestEvalKeepsTraining(t *testing.T) {
	s, err := bench.NewTrainStep("srm-resnet20", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Eval(); err != nil {
		t.Fatal(err)
	}
	// Training mode again: the next step moves BatchNorm's running mean.
	var bnMean []float32
	for _, v := range s.Model.Vars() {
		if v.Name == "bn1.running_mean" {
			bnMean = slices.Clone(v.Value.F32())
		}
	}
	if bnMean == nil {
		t.Fatal("no bn1.running_mean")
	}
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	for _, v := range s.Model.Vars() {
		if v.Name == "bn1.running_mean" && slices.Equal(bnMean, v.Value.F32()) {
			t.Errorf("a step after Eval left the running mean unchanged: still in evaluation mode")
		}
	}
}

func TestPeakRSS(t *testing.T) {
	var keep []byte
	grew, err := bench.PeakRSS(func() error {
		keep = make([]byte, 64<<20)
		for i := range keep {
			keep[i] = 1
		}
		return nil
	})
	if err != nil {
		t.Skip(err) // not Linux
	}
	if grew < 60<<20 || grew > 200<<20 {
		t.Errorf("touching 64 MiB raised the peak by %d MiB", grew>>20)
	}
	_ = keep[0]
}
