package train

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/gocarina/gocsv"
	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/internal/atomicfile"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

// Metrics are a model's scores on a data set. Accuracies are in percent, as
// the SRM paper's tables give them.
type Metrics struct {
	// Loss is the mean cross-entropy per image.
	Loss float64
	// Top1 and Top5 count an image as right when its label is among the
	// 1 or 5 highest logits; with fewer than 5 classes Top5 is 100.
	Top1, Top5 float64
	// Images is the number of images scored.
	Images int
}

// Evaluate scores m on every image of ds, seen through t (a Recipe's
// TestTransform), in batches of batch. It leaves m in evaluation mode, in
// which BatchNorm uses its running statistics, so the batch size changes
// nothing but speed and memory.
func Evaluate(ctx context.Context, m *srm.Model, ds datasets.Dataset, t datasets.Transform, batch int) (Metrics, error) {
	l, err := datasets.NewLoader(ds, datasets.LoaderConfig{BatchSize: batch, Transform: t})
	if err != nil {
		return Metrics{}, err
	}
	s, err := l.Stream(ctx, 0, 0)
	if err != nil {
		return Metrics{}, err
	}
	defer s.Close()
	m.Eval()
	var sum float64
	var top1, top5, n int
	for s.Next() {
		b := s.Batch()
		logits, loss, err := forward(m, b)
		if err != nil {
			return Metrics{}, err
		}
		sum += loss.Item() * float64(b.N)
		top1 += hits(logits, b.Labels, 1)
		top5 += hits(logits, b.Labels, 5)
		n += b.N
	}
	if err := s.Err(); err != nil {
		return Metrics{}, err
	}
	if n == 0 {
		return Metrics{}, fmt.Errorf("train: no images to evaluate")
	}
	return Metrics{Loss: sum / float64(n), Top1: percent(top1, n), Top5: percent(top5, n), Images: n}, nil
}

// forward computes a batch's logits and mean cross-entropy.
func forward(m *srm.Model, b *datasets.Batch) (logits, loss *tensor.Tensor, err error) {
	x := tensor.FromFloat32(b.X, b.N, b.C, b.H, b.W)
	if dev := m.Device(); dev != nil {
		if x, err = x.To(dev); err != nil {
			return nil, nil, err
		}
	}
	logits, err = m.Forward(x)
	if err != nil {
		return nil, nil, err
	}
	loss, err = op.CrossEntropy(logits, b.Labels)
	return logits, loss, err
}

// hits counts the rows of logits (N, K) whose label is among the k highest.
// A tie is won by the lower class index, as argmax has it.
func hits(logits *tensor.Tensor, labels []int, k int) int {
	nc := logits.Dim(1)
	z := logits.Float32s() // one copy, from the GPU too
	n := 0
	for i, y := range labels {
		row := z[i*nc : (i+1)*nc]
		above := 0
		for j, v := range row {
			if v > row[y] || (v == row[y] && j < y) {
				above++
			}
		}
		if above < k {
			n++
		}
	}
	return n
}

func percent(k, n int) float64 { return 100 * float64(k) / float64(n) }

// Row is one line of metrics.csv, written when an epoch ends. Losses are
// mean cross-entropies per image, accuracies in percent.
type Row struct {
	// Epoch counts the epochs done, from 1.
	Epoch int `csv:"epoch" json:"epoch"`
	// LR is the learning rate of the epoch's last step.
	LR float64 `csv:"lr" json:"lr"`
	// TrainLoss and TrainTop1 are measured on the augmented training
	// batches as they were trained on, in training mode, so they trail
	// the epoch's end weights.
	TrainLoss float64 `csv:"train_loss" json:"train_loss"`
	TrainTop1 float64 `csv:"train_top1" json:"train_top1"`
	// TestLoss, TestTop1 and TestTop5 score the epoch's end weights on
	// the test split in evaluation mode.
	TestLoss float64 `csv:"test_loss" json:"test_loss"`
	TestTop1 float64 `csv:"test_top1" json:"test_top1"`
	TestTop5 float64 `csv:"test_top5" json:"test_top5"`
	// ImagesPerSec is the training throughput and Seconds the wall time
	// of training and evaluating the epoch, both for the part of the
	// epoch run by the process that finished it. They are the only
	// columns that differ between a resumed run and an uninterrupted one.
	ImagesPerSec float64 `csv:"images_per_s" json:"images_per_s"`
	Seconds      float64 `csv:"seconds" json:"seconds"`
}

// writeMetrics replaces the metrics table at path with rows.
func writeMetrics(path string, rows []Row) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		return gocsv.Marshal(rows, w)
	})
}

// ReadMetrics reads a metrics.csv that Run wrote, for plotting or comparing
// runs.
func ReadMetrics(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	var rows []Row
	if err := gocsv.UnmarshalFile(f, &rows); err != nil {
		return nil, fmt.Errorf("train: %s: %w", path, err)
	}
	return rows, nil
}
