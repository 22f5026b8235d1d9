package cuda_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/train"
)

// TestTrainEmulated runs srmlab's training loop on the stand-in GPU (one
// step and one evaluation): moving the model, uploading batches, the
// device's NaN scan, metrics, and the weights written from device memory,
// which scored again on the CPU must give the GPU's test loss.
func TestTrainEmulated(t *testing.T) {
	if testing.Short() {
		t.Skip("emulated training takes about a minute")
	}
	d := cuda.OpenEmulated(t)
	cfg := train.DefaultConfig()
	cfg.Model, cfg.Data, cfg.Epochs, cfg.Batch = "srm-resnet20", "textures:train=1:test=1", 1, 8
	cfg.Out, cfg.Device = filepath.Join(t.TempDir(), "run"), d
	res, err := train.Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	row := res.Rows[0]
	if res.Model.Device() != d || row.TrainLoss <= 0 || math.IsNaN(row.TestLoss) {
		t.Fatalf("after training on %v: %+v", res.Model.Device(), row)
	}
	r, ok, err := train.ReadRecipe(res.Weights)
	if err != nil || !ok {
		t.Fatalf("recipe: %v %v", ok, err)
	}
	splits, err := datasets.Open(cfg.Data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := train.LoadModel(cfg.Model, srm.Options{Classes: len(splits.Train.Classes()), InputSize: r.InputSize}, res.Weights)
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := train.Evaluate(context.Background(), m, splits.Test, r.TestTransform(), cfg.Batch)
	if err != nil {
		t.Fatal(err)
	}
	if rel := math.Abs(cpu.Loss-row.TestLoss) / row.TestLoss; rel > 1e-4 || cpu.Top1 != row.TestTop1 {
		t.Errorf("the weights scored on the CPU: loss %v top-1 %v; on the GPU: %v %v", cpu.Loss, cpu.Top1, row.TestLoss, row.TestTop1)
	}
}
