package analysis

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
	"github.com/srmlab/srmlab/train"
)

// Trained is a finished run brought back for analysis: its model with the
// final weights, the recipe its images were normalised with, and its data.
type Trained struct {
	Run    RunRow
	Model  *srm.Model
	Recipe train.Recipe
	Data   *datasets.Splits
}

// LoadRun reloads the run that row describes from the results folder root,
// without training: analyses run long after training, in another process.
func LoadRun(root string, row RunRow) (*Trained, error) {
	dir := filepath.Join(root, row.Dir)
	cfg, err := train.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, train.WeightsFile)
	r, ok, err := train.ReadRecipe(path)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("analysis: %s has no recipe: not written by srmlab train", path)
	}
	data, err := datasets.Open(cfg.Data)
	if err != nil {
		return nil, err
	}
	m, err := train.LoadModel(cfg.Model, srm.Options{Classes: len(data.Train.Classes()), InputSize: r.InputSize}, path)
	if err != nil {
		return nil, err
	}
	return &Trained{Run: row, Model: m, Recipe: r, Data: data}, nil
}

// eachBatch runs m in evaluation mode over ds and hands every batch and its
// logits to fn right after its forward pass, while the modules' Gates still
// hold that batch's gates.
func eachBatch(ctx context.Context, m *srm.Model, ds datasets.Dataset, t datasets.Transform, batch int, fn func(b *datasets.Batch, logits *tensor.Tensor) error) error {
	l, err := datasets.NewLoader(ds, datasets.LoaderConfig{BatchSize: batch, Transform: t})
	if err != nil {
		return err
	}
	s, err := l.Stream(ctx, 0, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	m.Eval()
	for s.Next() {
		b := s.Batch()
		logits, err := m.Forward(tensor.FromFloat32(b.X, b.N, b.C, b.H, b.W))
		if err != nil {
			return err
		}
		if err := fn(b, logits); err != nil {
			return err
		}
	}
	return s.Err()
}

// channelGates averages a module's last gates over space, giving one gate
// per (image, channel) also for a local GE extent: g[n*C+c].
func channelGates(g *tensor.Tensor) (out []float64, c int) {
	n, c := g.Dim(0), g.Dim(1)
	plane := g.Len() / (n * c)
	out = make([]float64, n*c)
	for i := range out {
		var s float64
		for j := 0; j < plane; j++ {
			s += g.At(i*plane + j)
		}
		out[i] = s / float64(plane)
	}
	return out, c
}
