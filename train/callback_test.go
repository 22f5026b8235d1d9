package train

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestTerminalLive checks the line redrawn on a terminal: in place, rate
// limited, always drawn at an epoch's last batch, cleared for the epoch row.
func TestTerminalLive(t *testing.T) {
	var buf bytes.Buffer
	term := &Terminal{w: &buf, live: true}
	p := Progress{Epoch: 2, Epochs: 3, Batch: 3, Batches: 12, MeanLoss: 1.23456, Top1: 45.6, ImagesPerSec: 812.4, ETA: 252 * time.Second}
	term.OnBatch(p)
	want := "\r\033[Kepoch 2/3 [======>                 ] 3/12  loss 1.2346  top1 45.6%  812 img/s  ETA 4m12s"
	if got := buf.String(); got != want {
		t.Errorf("progress line\n got %q\nwant %q", got, want)
	}
	p.Batch = 4
	term.OnBatch(p) // within the redraw interval: skipped
	p.Batch = 12
	term.OnBatch(p) // the epoch's last batch: drawn
	if got := buf.String(); strings.Count(got, "\r") != 2 || !strings.Contains(got, "[========================] 12/12") {
		t.Errorf("after two more batches: %q", got)
	}
	buf.Reset()
	term.OnEpoch(Row{Epoch: 2, LR: 0.1, TrainLoss: 1, TrainTop1: 50, TestLoss: 1.1, TestTop1: 48, TestTop5: 90, ImagesPerSec: 800, Seconds: 12.5})
	if got := buf.String(); !strings.HasPrefix(got, "\r\033[Kepoch 2  lr 0.1  train loss 1.0000 top1 50.00%") || !strings.HasSuffix(got, "800 img/s  12.5s\n") {
		t.Errorf("epoch row %q", got)
	}
}
