package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/train"
)

func init() {
	register("train", "train a model on a data set (bundled or on disk), resumable to the bit", runTrain)
}

// runTrain parses the flags twice when resuming: first to find the run
// folder, then over the configuration stored there, so that --resume needs
// no other flag and any flag given anyway is checked against the run.
func runTrain(ctx context.Context, args []string) error {
	cfg := train.DefaultConfig()
	fs := trainFlags(&cfg, flag.CommandLine.Output())
	device := deviceFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case cfg.Resume && cfg.Out == "":
		return fmt.Errorf("--resume needs --out, the run folder to continue")
	case cfg.Resume:
		saved, err := train.ReadConfig(cfg.Out)
		if err != nil {
			return err
		}
		again := trainFlags(&saved, io.Discard)
		deviceFlag(again)
		if err := again.Parse(args); err != nil {
			return err
		}
		cfg = saved
	case cfg.Model == "" || cfg.Data == "" || cfg.Epochs == 0 || cfg.Out == "":
		fs.Usage()
		return fmt.Errorf("--model, --data, --epochs and --out are required")
	}

	dev, release, err := openDevice(*device)
	if err != nil {
		return err
	}
	defer release()
	cfg.Device = dev
	verb := "training"
	if cfg.Resume {
		verb = "resuming"
	}
	fmt.Printf("%s %s on %s for %d epochs in %s on %s (Ctrl-C stops after saving a checkpoint)\n", verb, cfg.Model, cfg.Data, cfg.Epochs, cfg.Out, *device)
	res, err := train.Run(ctx, cfg, train.NewTerminal(os.Stdout))
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w\ncontinue with: srmlab train --out %s --resume", err, cfg.Out)
	}
	if err != nil {
		return err
	}
	last := res.Rows[len(res.Rows)-1]
	fmt.Printf("test top-1 %.2f%%, top-5 %.2f%% after %d epochs\n", last.TestTop1, last.TestTop5, last.Epoch)
	fmt.Printf("results in %s:\n  %-24s per-epoch metrics\n  %-24s final weights (srmlab eval, srmlab predict)\n  %-24s last checkpoint (--resume)\n",
		res.Dir, train.MetricsFile, filepath.Base(res.Weights), train.CheckpointFile)
	return nil
}

// trainFlags binds the flags of "srmlab train" to cfg, whose values are the
// defaults shown.
func trainFlags(cfg *train.Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.Model, "model", cfg.Model, "model name, e.g. srm-resnet20 (see srmlab params)")
	fs.StringVar(&cfg.Data, "data", cfg.Data, "data set spec, one of:\n"+datasets.Specs)
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "epochs to train")
	fs.StringVar(&cfg.Out, "out", cfg.Out, "run folder for metrics.csv, checkpoint.safetensors and weights.safetensors")
	fs.BoolVar(&cfg.Resume, "resume", cfg.Resume, "continue the run in --out from its checkpoint, with its settings")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "images per step")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "learning rate")
	fs.Float64Var(&cfg.Momentum, "momentum", cfg.Momentum, "SGD momentum")
	fs.Float64Var(&cfg.WeightDecay, "wd", cfg.WeightDecay, "weight decay (never on SRM's cfc and BatchNorm)")
	fs.BoolVar(&cfg.Nesterov, "nesterov", cfg.Nesterov, "Nesterov momentum")
	fs.StringVar(&cfg.Schedule, "schedule", cfg.Schedule, "learning-rate schedule: "+strings.Join(train.Schedules, ", "))
	fs.Var((*epochList)(&cfg.Milestones), "milestones", "step schedule: epochs after which the rate is multiplied by --gamma, e.g. 30,60 (default 50% and 75% of --epochs)")
	fs.Float64Var(&cfg.Gamma, "gamma", cfg.Gamma, "step schedule: factor at each milestone")
	fs.IntVar(&cfg.WarmupEpochs, "warmup", cfg.WarmupEpochs, "epochs of linear learning-rate warm-up")
	fs.StringVar(&cfg.Recipe, "recipe", cfg.Recipe, "augmentation and input size: cifar or imagenet (default: by image size)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the initial weights, the shuffle and the augmentation")
	fs.IntVar(&cfg.CheckpointEvery, "checkpoint-every", cfg.CheckpointEvery, "also checkpoint every N batches (0: at epoch ends only)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "image decoding goroutines (0: GOMAXPROCS)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: srmlab train --model M --data SPEC --epochs N --out DIR [--batch B] [--lr L] [--seed S] [--device cpu|cuda] [flags]\n       srmlab train --out DIR --resume")
		fs.PrintDefaults()
	}
	return fs
}

// epochList is a comma-separated list of epoch counts.
type epochList []int

func (l *epochList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *epochList) Set(s string) error {
	*l = nil
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("epoch list %q: %w", s, err)
		}
		*l = append(*l, v)
	}
	return nil
}
