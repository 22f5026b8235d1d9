package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/srmlab/srmlab/tensor"
)

// Config describes one training run. Start from DefaultConfig, which holds
// He et al.'s CIFAR recipe, and set Model, Data, Epochs and Out.
//
// The fields with a JSON name define the run: they are stored in the
// checkpoint, and a resumed run must repeat them exactly, since any of them
// changes the weights it ends with. The others only say where and how fast.
type Config struct {
	// Model is a zoo name (see srm.NewModel), e.g. "srm-resnet20".
	Model string `json:"model"`
	// Data is a data set spec for datasets.Open, e.g. "textures" or
	// "cifar10:/data/cifar-10-batches-bin".
	Data string `json:"data"`
	// Recipe picks augmentation and input size: "cifar", "imagenet", or
	// "" to choose from the images' size (see NewRecipe).
	Recipe string `json:"recipe"`

	Epochs int `json:"epochs"`
	Batch  int `json:"batch"`

	// LR, Momentum, WeightDecay and Nesterov set SGD as torch.optim.SGD
	// does; weight decay skips SRM's cfc and BatchNorm, as in the
	// official code (optim.NewSGD).
	LR          float64 `json:"lr"`
	Momentum    float64 `json:"momentum"`
	WeightDecay float64 `json:"weight_decay"`
	Nesterov    bool    `json:"nesterov"`

	// Schedule shapes the learning rate over the run: "step" multiplies
	// it by Gamma at each of Milestones, "cosine" anneals it to zero
	// along half a cosine, step by step, and "constant" keeps it.
	Schedule string `json:"schedule"`
	// Milestones are epoch counts, as in PyTorch's MultiStepLR: once
	// Milestones[i] epochs are done, the rate has been multiplied by
	// Gamma i+1 times. Empty means 50 % and 75 % of Epochs, rounded up,
	// the CIFAR recipe; the ImageNet recipe is {30, 60}.
	Milestones []int   `json:"milestones"`
	Gamma      float64 `json:"gamma"`
	// WarmupEpochs ramps the rate up linearly, step by step, from LR/W
	// at the first step (W the number of warm-up steps) to the
	// schedule's rate, a remedy for large batches.
	WarmupEpochs int `json:"warmup_epochs"`

	// Seed fixes the initial weights, the shuffle and the augmentation,
	// and with them every bit of the run (see the package documentation).
	Seed uint64 `json:"seed"`

	// Out is the run folder (see the package documentation).
	Out string `json:"-"`
	// Resume continues the run in Out from its checkpoint instead of
	// starting one; the run-defining fields must match the checkpoint's
	// (ReadConfig returns them).
	Resume bool `json:"-"`
	// CheckpointEvery also writes the checkpoint every so many batches
	// within an epoch, for epochs long enough that losing one hurts;
	// 0 writes it at epoch ends (and on cancellation) only.
	CheckpointEvery int `json:"-"`
	// Workers is the number of decoding goroutines (0: GOMAXPROCS); it
	// does not change any result.
	Workers int `json:"-"`
	// Device runs the training on a GPU (cuda.Open); nil is the CPU. The
	// checkpoint does not depend on it: a run may resume on the other one,
	// but the GPU's results equal the CPU's only to rounding, and the
	// same seed gives the same bits on the CPU only.
	Device tensor.Device `json:"-"`
}

// DefaultConfig returns He et al.'s CIFAR recipe, which the SRM paper's
// CIFAR experiments follow: batch 128, SGD with learning rate 0.1, momentum
// 0.9 and weight decay 1e-4, the rate divided by 10 at 50 % and 75 % of the
// run, seed 1.
func DefaultConfig() Config {
	return Config{
		Batch:       128,
		LR:          0.1,
		Momentum:    0.9,
		WeightDecay: 1e-4,
		Schedule:    "step",
		Gamma:       0.1,
		Seed:        1,
	}
}

// Schedules lists the values Config.Schedule takes.
var Schedules = []string{"step", "cosine", "constant"}

// normalized checks c and fills in the default milestones, so that the
// stored configuration spells out everything the run depends on.
func (c Config) normalized() (Config, error) {
	var bad []string
	if c.Model == "" {
		bad = append(bad, "no model")
	}
	if c.Data == "" {
		bad = append(bad, "no data")
	}
	if c.Out == "" {
		bad = append(bad, "no run folder (Out)")
	}
	if c.Epochs < 1 {
		bad = append(bad, fmt.Sprintf("%d epochs", c.Epochs))
	}
	if c.Batch < 1 {
		bad = append(bad, fmt.Sprintf("batch %d", c.Batch))
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) || c.Momentum < 0 || c.WeightDecay < 0 || (c.Nesterov && c.Momentum == 0) {
		bad = append(bad, fmt.Sprintf("SGD with lr %g, momentum %g, weight decay %g, nesterov %v", c.LR, c.Momentum, c.WeightDecay, c.Nesterov))
	}
	if !slices.Contains(Schedules, c.Schedule) {
		bad = append(bad, fmt.Sprintf("schedule %q (want one of %s)", c.Schedule, strings.Join(Schedules, ", ")))
	}
	if c.Schedule == "step" {
		if !(c.Gamma > 0) {
			bad = append(bad, fmt.Sprintf("gamma %g", c.Gamma))
		}
		c.Milestones = c.milestones()
		if !slices.IsSorted(c.Milestones) || c.Milestones[0] < 1 {
			bad = append(bad, fmt.Sprintf("milestones %v (want increasing epoch counts from 1)", c.Milestones))
		}
	}
	if c.WarmupEpochs < 0 || c.WarmupEpochs > c.Epochs {
		bad = append(bad, fmt.Sprintf("%d warm-up epochs", c.WarmupEpochs))
	}
	if c.CheckpointEvery < 0 || c.Workers < 0 {
		bad = append(bad, fmt.Sprintf("checkpoint every %d batches, %d workers", c.CheckpointEvery, c.Workers))
	}
	if len(bad) > 0 {
		return c, fmt.Errorf("train: bad config: %s", strings.Join(bad, "; "))
	}
	return c, nil
}

// RateAt is the learning rate of step batch of epoch epoch (both counted
// from 0) in a run of batches steps per epoch. It depends on nothing else,
// which is what lets a resumed run pick the schedule up mid-epoch.
func (c Config) RateAt(epoch, batch, batches int) float64 {
	t := float64(epoch*batches + batch)
	warm := float64(c.WarmupEpochs * batches)
	rate := c.LR
	if t < warm {
		rate *= (t + 1) / warm
	}
	switch c.Schedule {
	case "step":
		for _, m := range c.milestones() {
			if epoch >= m {
				rate *= c.Gamma
			}
		}
	case "cosine":
		if t >= warm {
			total := float64(c.Epochs * batches)
			rate *= 0.5 * (1 + math.Cos(math.Pi*(t-warm)/(total-warm)))
		}
	}
	return rate
}

// milestones are c.Milestones or their default, 50 % and 75 % of the
// epochs rounded up, so that a short run of E epochs keeps at least half of
// them at the full rate.
func (c Config) milestones() []int {
	if len(c.Milestones) > 0 {
		return c.Milestones
	}
	return []int{(c.Epochs + 1) / 2, (3*c.Epochs + 3) / 4}
}

// identity is the JSON of the run-defining fields.
func (c Config) identity() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain fields always marshal
	}
	return string(b)
}

// sameRun compares the run-defining fields of the configuration a
// checkpoint was written with and the one given now, naming every field
// that differs.
func sameRun(saved, now Config) error {
	var a, b map[string]json.RawMessage
	if err := json.Unmarshal([]byte(saved.identity()), &a); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(now.identity()), &b); err != nil {
		return err
	}
	var diffs []string
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			diffs = append(diffs, fmt.Sprintf("%s %s (now %s)", k, v, b[k]))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	slices.Sort(diffs)
	return fmt.Errorf("train: %s continues a run with other settings: %s; resume with the run's own settings (ReadConfig) or start another run folder",
		now.Out, strings.Join(diffs, ", "))
}
