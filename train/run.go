package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/internal/atomicfile"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/optim"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
	"github.com/srmlab/srmlab/weights"
)

// Result is a finished run.
type Result struct {
	// Model holds the final weights, in evaluation mode.
	Model *srm.Model
	// Rows are the lines of metrics.csv, one per epoch.
	Rows []Row
	// Dir is the run folder; Weights is the final weights file in it.
	Dir, Weights string
}

// NonFiniteError stops a run whose loss or gradients left the floating-point
// range, usually from too high a learning rate. The step is not taken and
// the checkpoint is not touched, so the run folder keeps the last good
// state.
type NonFiniteError struct {
	// Epoch and Batch count from 1.
	Epoch, Batch int
	// What is "loss" or "gradient of " and a parameter's name.
	What string
	// Err names the first offending element.
	Err error
}

// Error implements error.
func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("train: epoch %d, batch %d: non-finite %v (is the learning rate too high?); the run is stopped, its checkpoint left as it was", e.Epoch, e.Batch, e.Err)
}

// Unwrap returns the offending element's error.
func (e *NonFiniteError) Unwrap() error { return e.Err }

// Run trains cfg.Model on cfg.Data as cfg says, or with cfg.Resume
// continues the run in cfg.Out, reporting to cb (which may be nil).
//
// Cancelling ctx stops the run at the next step: the checkpoint is written
// and Run returns an error that wraps ctx's. A run resumed from there, or
// from any checkpoint a killed process left, ends with the same weights,
// bit for bit, as one never interrupted (see the package documentation).
func Run(ctx context.Context, cfg Config, cb Callback) (*Result, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	if cb == nil {
		cb = CallbackFuncs{}
	}
	// The steps recycle their feature maps; the buffers go when training does.
	defer tensor.FreeRecycled()
	t := &trainer{cfg: cfg, cb: cb, ckpt: filepath.Join(cfg.Out, CheckpointFile)}
	var resumed *checkpoint
	if cfg.Resume {
		if resumed, err = t.resume(); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(t.ckpt); err == nil {
		return nil, fmt.Errorf("train: %s holds a run already: resume it or choose another folder", cfg.Out)
	} else if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if t.data, err = datasets.Open(cfg.Data); err != nil {
		return nil, err
	}
	if resumed == nil {
		if t.recipe, err = NewRecipe(cfg.Recipe, t.data.Train); err != nil {
			return nil, err
		}
		t.state = state{Version: stateVersion}
		t.state.GOMAXPROCS, t.state.BLAS = environment()
	}
	if err := t.build(resumed); err != nil {
		return nil, err
	}
	for t.state.Epoch < cfg.Epochs {
		if err := t.epoch(ctx); err != nil {
			return nil, err
		}
	}
	// Rewritten even when resuming a finished run: a kill may have come
	// between the last checkpoint and these files.
	res := &Result{Model: t.model, Rows: t.state.Rows, Dir: cfg.Out, Weights: filepath.Join(cfg.Out, WeightsFile)}
	if err := writeMetrics(filepath.Join(cfg.Out, MetricsFile), t.state.Rows); err != nil {
		return nil, err
	}
	if err := weights.Save(t.model.Module(), res.Weights, metadata(cfg, t.recipe)); err != nil {
		return nil, err
	}
	t.model.Eval()
	return res, nil
}

// trainer is a run in progress.
type trainer struct {
	cfg    Config
	cb     Callback
	ckpt   string
	data   *datasets.Splits
	recipe Recipe
	model  *srm.Model
	opt    *optim.SGD
	loader *datasets.Loader
	state  state
	// saved is the position of the checkpoint on disk, if any, so that a
	// stop right after an epoch's checkpoint does not write it again.
	saved *[2]int
	// steps, stepTime and evalTime give the ETA: this process's mean
	// step time and its last evaluation's time.
	steps    int
	stepTime time.Duration
	evalTime time.Duration
}

// resume reads the run folder's checkpoint and checks that it can be
// continued exactly.
func (t *trainer) resume() (*checkpoint, error) {
	c, err := readCheckpoint(t.ckpt)
	if err != nil {
		return nil, err
	}
	if err := sameRun(c.config, t.cfg); err != nil {
		return nil, err
	}
	if err := c.state.checkEnvironment(t.ckpt); err != nil {
		return nil, err
	}
	for _, f := range []string{CheckpointFile, WeightsFile, MetricsFile} {
		if err := atomicfile.RemoveStale(filepath.Join(t.cfg.Out, f)); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	t.recipe, t.state = c.recipe, c.state
	t.saved = &[2]int{c.state.Epoch, c.state.Batch}
	return c, nil
}

// build makes the model, the optimiser and the loader, and restores the
// checkpoint c into them when resuming.
func (t *trainer) build(c *checkpoint) error {
	var err error
	opts := srm.Options{Classes: len(t.data.Train.Classes()), InputSize: t.recipe.InputSize, Seed: t.cfg.Seed}
	if t.model, err = srm.NewModel(t.cfg.Model, opts); err != nil {
		return err
	}
	if err := t.model.To(t.cfg.Device); err != nil {
		return err
	}
	t.opt = optim.NewSGD(t.model.Vars(), t.cfg.LR, t.cfg.Momentum, t.cfg.WeightDecay, t.cfg.Nesterov)
	t.loader, err = datasets.NewLoader(t.data.Train, datasets.LoaderConfig{
		BatchSize: t.cfg.Batch, Shuffle: true, DropLast: true, Seed: t.cfg.Seed,
		Transform: t.recipe.TrainTransform(), Workers: t.cfg.Workers,
	})
	if err != nil {
		return err
	}
	if t.loader.Len() == 0 {
		return fmt.Errorf("train: %d training images make no full batch of %d", t.data.Train.Len(), t.cfg.Batch)
	}
	if c == nil {
		return nil
	}
	if err := weights.Assign(t.model.Vars(), c.model, t.ckpt); err != nil {
		return err
	}
	for _, m := range c.momenta {
		if err := t.opt.SetMomentumBuffer(m.Name, m.Tensor); err != nil {
			return fmt.Errorf("train: %s: %w", t.ckpt, err)
		}
	}
	return nil
}

// epoch trains the rest of the current epoch, evaluates, and records the
// epoch in metrics.csv and the checkpoint.
func (t *trainer) epoch(ctx context.Context) error {
	start := time.Now()
	images, err := t.trainRest(ctx, start)
	if err != nil {
		return err
	}
	trainTime := time.Since(start)
	if ctx.Err() != nil {
		return t.stop(ctx)
	}
	t0 := time.Now()
	m, err := Evaluate(ctx, t.model, t.data.Test, t.recipe.TestTransform(), t.cfg.Batch)
	t.model.Train()
	if err != nil {
		if ctx.Err() != nil {
			return t.stop(ctx)
		}
		return err
	}
	t.evalTime = time.Since(t0)
	n := t.loader.Len()
	row := Row{
		Epoch:     t.state.Epoch + 1,
		LR:        t.cfg.RateAt(t.state.Epoch, n-1, n),
		TrainLoss: t.state.LossSum / float64(t.state.Seen),
		TrainTop1: percent(t.state.Top1Hits, t.state.Seen),
		TestLoss:  m.Loss,
		TestTop1:  m.Top1,
		TestTop5:  m.Top5,
		Seconds:   math.Round(time.Since(start).Seconds()*1000) / 1000,
	}
	if s := trainTime.Seconds(); images > 0 && s > 0 {
		row.ImagesPerSec = math.Round(float64(images)/s*10) / 10
	}
	t.state.Rows = append(t.state.Rows, row)
	t.state.Epoch++
	t.state.Batch, t.state.LossSum, t.state.Top1Hits, t.state.Seen = 0, 0, 0, 0
	// metrics.csv first: a kill between the two leaves the table one
	// epoch ahead of the checkpoint, and the resumed run rewrites it.
	if err := writeMetrics(filepath.Join(t.cfg.Out, MetricsFile), t.state.Rows); err != nil {
		return err
	}
	if err := t.save(); err != nil {
		return err
	}
	t.cb.OnEpoch(row)
	return nil
}

// trainRest runs the epoch's remaining steps, checkpointing every
// CheckpointEvery batches, until the epoch ends or ctx is cancelled; it
// returns the number of images trained on. start is when the epoch began
// for this process, for the throughput.
func (t *trainer) trainRest(ctx context.Context, start time.Time) (images int, err error) {
	n := t.loader.Len()
	if t.state.Batch == n { // stopped between training and evaluating
		return 0, nil
	}
	s, err := t.loader.Stream(ctx, t.state.Epoch, t.state.Batch)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	for ctx.Err() == nil && s.Next() {
		b := s.Batch()
		t0 := time.Now()
		loss, err := t.step(b)
		if err != nil {
			return images, err
		}
		t.steps++
		t.stepTime += time.Since(t0)
		images += b.N
		t.cb.OnBatch(t.progress(loss, images, time.Since(start)))
		if k := t.cfg.CheckpointEvery; k > 0 && t.state.Batch%k == 0 && t.state.Batch < n {
			if err := t.save(); err != nil {
				return images, err
			}
		}
	}
	if err := s.Err(); err != nil && ctx.Err() == nil {
		return images, err
	}
	return images, nil
}

// step trains on one batch and returns its loss. Loss and gradients are
// checked before the update, so a non-finite value never reaches the
// weights.
func (t *trainer) step(b *datasets.Batch) (_ float64, err error) {
	// Operations under Backward and the optimiser's step report a failed
	// GPU call by panicking; it ends the step as an error.
	defer tensor.RecoverTo(&err)
	e, i := t.state.Epoch, t.state.Batch
	lr := t.cfg.RateAt(e, i, t.loader.Len())
	t.opt.ZeroGrad()
	logits, loss, err := forward(t.model, b)
	if err != nil {
		return 0, err
	}
	l := loss.Item() // one read, from the GPU too
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return 0, &NonFiniteError{Epoch: e + 1, Batch: i + 1, What: "loss", Err: loss.CheckFinite("loss")}
	}
	// Counted now: the releasing backward pass recycles the logits' memory.
	top1 := hits(logits, b.Labels, 1)
	loss.BackwardReleasing()
	var names []string
	var grads []*tensor.Tensor
	for _, g := range t.opt.Groups {
		for _, v := range g.Params {
			names, grads = append(names, v.Name), append(grads, v.Value.Grad)
		}
	}
	if k := op.FirstNonFinite(grads); k >= 0 {
		what := "gradient of " + names[k]
		return 0, &NonFiniteError{Epoch: e + 1, Batch: i + 1, What: what, Err: grads[k].CheckFinite(what)}
	}
	t.opt.SetLR(lr)
	t.opt.Step()
	t.state.Batch++
	t.state.LossSum += l * float64(b.N)
	t.state.Top1Hits += top1
	t.state.Seen += b.N
	return l, nil
}

// progress is the report after a step; images and elapsed cover this
// process's part of the epoch.
func (t *trainer) progress(loss float64, images int, elapsed time.Duration) Progress {
	n := t.loader.Len()
	p := Progress{
		Epoch: t.state.Epoch + 1, Epochs: t.cfg.Epochs,
		Batch: t.state.Batch, Batches: n,
		LR:       t.cfg.RateAt(t.state.Epoch, t.state.Batch-1, n),
		Loss:     loss,
		MeanLoss: t.state.LossSum / float64(t.state.Seen),
		Top1:     percent(t.state.Top1Hits, t.state.Seen),
	}
	if s := elapsed.Seconds(); s > 0 {
		p.ImagesPerSec = float64(images) / s
	}
	left := (t.cfg.Epochs-t.state.Epoch)*n - t.state.Batch
	p.ETA = time.Duration(left)*(t.stepTime/time.Duration(t.steps)) + time.Duration(t.cfg.Epochs-t.state.Epoch)*t.evalTime
	return p
}

// save writes the checkpoint: every model variable (BatchNorm statistics
// included), the momentum buffers SGD has, and the state.
func (t *trainer) save() error {
	vars := t.model.Vars()
	tensors := make([]weights.Named, 0, 2*len(vars))
	for _, v := range vars {
		tensors = append(tensors, weights.Named{Name: v.Name, Tensor: v.Value})
	}
	for _, g := range t.opt.Groups {
		for _, v := range g.Params {
			if buf := t.opt.MomentumBuffer(v.Name); buf != nil {
				tensors = append(tensors, weights.Named{Name: momentumPrefix + v.Name, Tensor: buf})
			}
		}
	}
	st, err := json.Marshal(t.state)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	meta := metadata(t.cfg, t.recipe)
	meta[metaState] = string(st)
	if err := weights.SaveSafetensors(t.ckpt, tensors, meta); err != nil {
		return err
	}
	t.saved = &[2]int{t.state.Epoch, t.state.Batch}
	return nil
}

// stop ends a cancelled run, saving where it stands unless the checkpoint
// already holds that. The error wraps ctx.Err(), so errors.Is tells a stop
// from a failure whatever cause the context was cancelled with.
func (t *trainer) stop(ctx context.Context) error {
	why := ctx.Err()
	if cause := context.Cause(ctx); cause != why {
		why = fmt.Errorf("%w (%v)", why, cause)
	}
	if t.saved == nil || *t.saved != [2]int{t.state.Epoch, t.state.Batch} {
		if err := t.save(); err != nil {
			return errors.Join(err, why)
		}
	}
	return fmt.Errorf("train: stopped in epoch %d after batch %d of %d; %s holds the run, resume to continue: %w",
		t.state.Epoch+1, t.state.Batch, t.loader.Len(), t.ckpt, why)
}
