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
