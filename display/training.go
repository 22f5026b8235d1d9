package display

import (
	"fmt"
	"html"
	"image/color"
	"sync"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/srmlab/srmlab/train"
)

// TrainingView follows a training run in a notebook: a progress line and
// the loss and accuracy curves, each redrawn in place (update_display_data)
// so that the cell keeps two outputs however long the run. It is a
// train.Callback: pass it to train.Run.
//
// Redraws are throttled, since train.Run waits for its callback: the
// progress line at most every ProgressEvery, the curves at every epoch's
// end and at most every CurvesEvery in between (they then show the
// batches' losses so far).
type TrainingView struct {
	// ProgressEvery and CurvesEvery are the shortest intervals between
	// redraws of the progress line and of the curves within an epoch.
	ProgressEvery, CurvesEvery time.Duration
	// Width and Height size the curves' image.
	Width, Height vg.Length

	mu                     sync.Mutex
	progress, curves       *Handle
	lastProgress, lastPlot time.Time
	batchLoss              plotter.XYs // per step, x in epochs
	rows                   []train.Row
}

// NewTrainingView returns a view with redraw intervals that cost a run
// on two cores about one percent of its time.
func NewTrainingView() *TrainingView {
	return &TrainingView{
		ProgressEvery: 500 * time.Millisecond,
		CurvesEvery:   10 * time.Second,
		Width:         9 * vg.Inch,
		Height:        3.2 * vg.Inch,
		progress:      NewHandle(),
		curves:        NewHandle(),
	}
}

// OnBatch implements train.Callback. Display errors are dropped: showing
// progress must never stop a run.
func (v *TrainingView) OnBatch(p train.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.batchLoss = append(v.batchLoss, plotter.XY{X: float64(p.Epoch-1) + float64(p.Batch)/float64(p.Batches), Y: p.Loss})
	now := time.Now()
	if p.Batch == p.Batches || now.Sub(v.lastProgress) >= v.ProgressEvery {
		v.lastProgress = now
		_ = v.progress.Show(progressData(p))
	}
	if v.lastPlot.IsZero() {
		v.lastPlot = now // the first curves wait for a few batches
	}
	if now.Sub(v.lastPlot) >= v.CurvesEvery {
		v.lastPlot = now
		_ = v.curves.Show(v.curvesData())
	}
}

// OnEpoch implements train.Callback.
func (v *TrainingView) OnEpoch(r train.Row) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.rows = append(v.rows, r)
	v.lastPlot = time.Now()
	_ = v.curves.Show(v.curvesData())
}

// Rows returns the epochs seen so far, as in metrics.csv.
func (v *TrainingView) Rows() []train.Row {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]train.Row(nil), v.rows...)
}

// Curves renders the loss and accuracy curves as they stand.
func (v *TrainingView) Curves() Data {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.curvesData()
}

func progressData(p train.Progress) Data {
	text := fmt.Sprintf("epoch %d/%d  batch %d/%d  loss %.4f  top1 %.1f%%  lr %.4g  %.0f img/s  ETA %s",
		p.Epoch, p.Epochs, p.Batch, p.Batches, p.MeanLoss, p.Top1, p.LR, p.ImagesPerSec, p.ETA.Round(time.Second))
	done := float64((p.Epoch-1)*p.Batches+p.Batch) / float64(max(1, p.Epochs*p.Batches))
	h := fmt.Sprintf(`<div style="font-family:monospace"><progress value="%.4f" max="1" style="width:20em"></progress> %s</div>`,
		done, html.EscapeString(text))
	return Data{Data: MIMEMap{MIMETypeHTML: h, MIMETypeText: text}}
}

// curvesData draws two panels: losses (per batch, and per epoch for the
// training and test sets) and top-1 accuracies per epoch.
func (v *TrainingView) curvesData() Data {
	loss := plot.New()
	loss.Title.Text = "loss"
	loss.X.Label.Text = "epoch"
	acc := plot.New()
	acc.Title.Text = "top-1 accuracy (%)"
	acc.X.Label.Text = "epoch"
	var trainLoss, testLoss, trainTop1, testTop1 plotter.XYs
	for _, r := range v.rows {
		x := float64(r.Epoch)
		trainLoss = append(trainLoss, plotter.XY{X: x, Y: r.TrainLoss})
		testLoss = append(testLoss, plotter.XY{X: x, Y: r.TestLoss})
		trainTop1 = append(trainTop1, plotter.XY{X: x, Y: r.TrainTop1})
		testTop1 = append(testTop1, plotter.XY{X: x, Y: r.TestTop1})
	}
	grey := color.RGBA{R: 170, G: 170, B: 170, A: 255}
	blue := color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange := color.RGBA{R: 255, G: 127, B: 14, A: 255}
	addLine(loss, "batch", v.batchLoss, grey, false)
	addLine(loss, "train", trainLoss, blue, true)
	addLine(loss, "test", testLoss, orange, true)
	addLine(acc, "train", trainTop1, blue, true)
	addLine(acc, "test", testTop1, orange, true)
	loss.Legend.Top, acc.Legend.Top = true, false
	return tiles(v.Width, v.Height, loss, acc)
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color, points bool) {
	if len(xys) == 0 {
		return
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return
	}
	l.Color = c
	p.Add(l)
	p.Legend.Add(name, l)
	if points {
		s, err := plotter.NewScatter(xys)
		if err == nil {
			s.Color = c
			p.Add(s)
		}
	}
}

// tiles renders plots side by side into one PNG.
func tiles(width, height vg.Length, ps ...*plot.Plot) Data {
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(plotDPI))
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: len(ps), PadX: vg.Millimeter * 4}
	cs := plot.Align([][]*plot.Plot{ps}, t, dc)
	for i, p := range ps {
		p.Draw(cs[0][i])
	}
	return pngData(vgimg.PngCanvas{Canvas: img}, width, height, "<training curves>")
}
