package torchref_test

import (
	"context"
	"math"
	"testing"

	"github.com/srmlab/srmlab/torchref"
)

func TestPeer(t *testing.T) {
	ctx := context.Background()
	if _, err := torchref.Python(ctx); err != nil {
		t.Skip(err)
	}
	p, err := torchref.StartPeer(ctx, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.Times("eval", "resnet20", 1, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0] <= 0 || ms[1] <= 0 {
		t.Errorf("two timed evaluation steps gave %v", ms)
	}
	if _, err := p.Times("infer", "resnet20", 1, 0, 1); err == nil {
		t.Errorf("an unknown kind of step: no error")
	}
	if _, err := p.Times("train", "no-such-model20", 1, 0, 1); err == nil {
		t.Errorf("an unknown model: no error")
	}
	// The peer answers on after errors.
	if ms, err := p.Times("train", "resnet20", 1, 0, 1); err != nil || len(ms) != 1 {
		t.Errorf("a training step after errors: %v, %v", ms, err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := torchref.Median(c.xs); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
	if !math.IsNaN(torchref.Median(nil)) {
		t.Errorf("Median of nothing is not NaN")
	}
}
