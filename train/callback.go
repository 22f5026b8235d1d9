package train

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Progress reports one training step. Epoch and Batch count from 1:
// after the first step of the run, Epoch is 1 and Batch is 1.
type Progress struct {
	Epoch, Epochs  int
	Batch, Batches int
	// LR is the learning rate the step used.
	LR float64
	// Loss is this batch's loss; MeanLoss and Top1 (percent) cover the
	// epoch's batches so far, which is what a progress bar shows.
	Loss, MeanLoss, Top1 float64
	// ImagesPerSec is the epoch's training throughput so far.
	ImagesPerSec float64
	// ETA estimates the time to the end of the run, evaluations included,
	// from this process's pace.
	ETA time.Duration
}

// Callback follows a run live: a notebook plots from it, the command line
// draws a progress bar (Terminal). Run calls it from its own goroutine, so
// a slow callback slows training.
type Callback interface {
	// OnBatch follows every training step.
	OnBatch(p Progress)
	// OnEpoch follows every epoch, once its row is in metrics.csv and the
	// checkpoint is written.
	OnEpoch(r Row)
}

// CallbackFuncs is a Callback made of functions, for callers (notebooks,
// interpreted code) where a closure is handier than a type. Nil fields are
// skipped.
type CallbackFuncs struct {
	Batch func(p Progress)
	Epoch func(r Row)
}

// OnBatch implements Callback.
func (f CallbackFuncs) OnBatch(p Progress) {
	if f.Batch != nil {
		f.Batch(p)
	}
}

// OnEpoch implements Callback.
func (f CallbackFuncs) OnEpoch(r Row) {
	if f.Epoch != nil {
		f.Epoch(r)
	}
}

// Terminal is the command line's Callback: on a terminal, a progress line
// redrawn in place (epoch, bar, batch, loss, accuracy, images/s, ETA); to a
// file or pipe, where redrawing would only pile up lines, just one line per
// epoch.
type Terminal struct {
	w    io.Writer
	live bool
	last time.Time
}

// redraw bounds how often the live line is redrawn, to spare slow
// terminals and notebooks' output areas.
const redraw = 100 * time.Millisecond

// NewTerminal reports to w, redrawing in place only when w is a terminal.
func NewTerminal(w io.Writer) *Terminal {
	t := &Terminal{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			t.live = true
		}
	}
	return t
}

// OnBatch implements Callback.
func (t *Terminal) OnBatch(p Progress) {
	if !t.live || (p.Batch < p.Batches && time.Since(t.last) < redraw) {
		return
	}
	t.last = time.Now()
	const width = 24
	done := width * p.Batch / p.Batches
	bar := strings.Repeat("=", done) + strings.Repeat(" ", width-done)
	if done < width {
		bar = bar[:done] + ">" + bar[done+1:]
	}
	fmt.Fprintf(t.w, "\r\033[Kepoch %d/%d [%s] %d/%d  loss %.4f  top1 %.1f%%  %.0f img/s  ETA %s",
		p.Epoch, p.Epochs, bar, p.Batch, p.Batches, p.MeanLoss, p.Top1, p.ImagesPerSec, p.ETA.Round(time.Second))
}

// OnEpoch implements Callback.
func (t *Terminal) OnEpoch(r Row) {
	if t.live {
		fmt.Fprint(t.w, "\r\033[K")
	}
	fmt.Fprintf(t.w, "epoch %d  lr %.4g  train loss %.4f top1 %.2f%%  test loss %.4f top1 %.2f%% top5 %.2f%%  %.0f img/s  %.1fs\n",
		r.Epoch, r.LR, r.TrainLoss, r.TrainTop1, r.TestLoss, r.TestTop1, r.TestTop5, r.ImagesPerSec, r.Seconds)
}
