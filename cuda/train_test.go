package cuda_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/train"
)

// TestTrainEmulated runs srmlab's training loop on the stand-in GPU, two
// epochs of one step and an evaluation each, stopped after the first and
// resumed: moving the model, uploading batches, the device's NaN scan,
// metrics, checkpoints written from device memory and read back into it
// (momentum buffers included), and the final weights, which scored again
// on the CPU must give the GPU's test loss.
func TestTrainEmulated(t *testing.T) {
	if testing.Short() {
		t.Skip("emulated training takes about a minute")
	}
	d := cuda.OpenEmulated(t)
	cfg := train.DefaultConfig()
	cfg.Model, cfg.Data, cfg.Epochs, cfg.Batch = "srm-resnet20", "textures:train=1:test=1", 2, 8
	cfg.Out, cfg.Device = filepath.Join(t.TempDir(), "run"), d
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	if _, err := train.Run(ctx, cfg, train.CallbackFuncs{Epoch: func(train.Row) { stop() }}); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped after an epoch: %v", err)
	}
	cfg.Resume = true
	res, err := train.Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 2 {
		t.Fatalf("%d epochs after resuming", len(res.Rows))
	}
	row := res.Rows[1]
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
