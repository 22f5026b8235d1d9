// Package bench times srmlab's training step, the unit its speed is
// compared with PyTorch's in: the benchmarks of this package and the
// "srmlab bench" command, which runs torchref's PyTorch peer beside it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/optim"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

// The step the PyTorch peer (torchref's torch_step.py) also times: He et
// al.'s CIFAR recipe, batch 128 of 32x32 images, SGD with momentum 0.9 and
// weight decay 1e-4.
const (
	Batch       = 128
	lr          = 0.1
	momentum    = 0.9
	weightDecay = 1e-4
)

// TrainStep is one model with a fixed random batch and its optimiser.
type TrainStep struct {
	// Model is the network being trained; tests read its parameters.
	Model  *srm.Model
	opt    *optim.SGD
	x      *tensor.Tensor
	labels []int
}

// NewTrainStep builds the named model (srm.NewModel with default options)
// in training mode and a random batch of batch images at its input size,
// on dev (a GPU from cuda.Open; nil for the CPU).
func NewTrainStep(name string, batch int, dev tensor.Device) (*TrainStep, error) {
	m, err := srm.NewModel(name, srm.Options{})
	if err != nil {
		return nil, err
	}
	if err := m.To(dev); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(1, 2))
	size := m.Options.InputSize
	x := tensor.New(tensor.Float32, batch, 3, size, size)
	x.FillNormal(r, 0, 1)
	if x, err = x.To(dev); err != nil {
		return nil, err
	}
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = r.IntN(m.Options.Classes)
	}
	opt := optim.NewSGD(m.Vars(), lr, momentum, weightDecay, false)
	return &TrainStep{Model: m, opt: opt, x: x, labels: labels}, nil
}

// Run takes one step: forward, cross-entropy, backward, SGD update. On a
// GPU it returns once the step has run, not when it is queued, by reading
// the loss as a training loop does.
func (s *TrainStep) Run() error {
	loss, err := s.Queue()
	if err == nil && s.Model.Device() != nil {
		err = tensor.Recover(func() { loss.Item() })
	}
	return err
}

// Queue takes one step like Run but, on a GPU, returns as soon as the
// step's work is queued, with the loss still to be computed: steps queued
// back to back are how PyTorch's GPU benchmarks time them.
func (s *TrainStep) Queue() (loss *tensor.Tensor, err error) {
	s.opt.ZeroGrad()
	logits, err := s.Model.Forward(s.x)
	if err != nil {
		return nil, err
	}
	var lossErr error
	err = tensor.Recover(func() {
		if loss, lossErr = op.CrossEntropy(logits, s.labels); lossErr == nil {
			loss.BackwardReleasing()
			s.opt.Step()
		}
	})
	return loss, errors.Join(lossErr, err)
}

// Eval runs the model's forward pass on the batch in evaluation mode (the
// running BatchNorm statistics), as inference does, and returns the model
// to training mode. On a GPU it returns once the pass has run.
func (s *TrainStep) Eval() error {
	s.Model.Eval()
	defer s.Model.Train()
	logits, err := s.Model.Forward(s.x)
	if err == nil && s.Model.Device() != nil {
		err = tensor.Recover(func() { logits.At(0) })
	}
	return err
}

// Median runs s warmup times untimed, then steps times, and returns the
// median duration, which one slow step on a shared machine does not move.
func (s *TrainStep) Median(ctx context.Context, warmup, steps int) (time.Duration, error) {
	if steps < 1 || warmup < 0 {
		return 0, fmt.Errorf("bench: %d warm-up and %d timed steps", warmup, steps)
	}
	times := make([]time.Duration, 0, steps)
	for i := range warmup + steps {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t0 := time.Now()
		if err := s.Run(); err != nil {
			return 0, err
		}
		if i >= warmup {
			times = append(times, time.Since(t0))
		}
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}
