package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/srmlab/srmlab/bench"
	"github.com/srmlab/srmlab/blas"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/torchref"
)

func init() {
	register("bench", "time CIFAR training steps in srmlab and in PyTorch", runBench)
}

// torchKinds are the modules torchref's PyTorch models have, in their
// default form; other specs are timed in srmlab only.
var torchKinds = []string{"", "srm", "se", "ge"}

// runBench times one training step (batch 128, 32x32, SGD with momentum) of
// each model in srmlab, then in PyTorch through torchref's peer on as many
// threads as srmlab has cores, one after the other so that neither slows
// the other, and prints both with their ratio.
func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	models := fs.String("models", "resnet20,srm-resnet20", "comma-separated CIFAR model names")
	warmup := fs.Int("warmup", 3, "untimed steps before timing")
	steps := fs.Int("steps", 10, "timed steps; the median is reported")
	threads := fs.Int("threads", runtime.GOMAXPROCS(0), "PyTorch threads (srmlab uses GOMAXPROCS)")
	noTorch := fs.Bool("no-torch", false, "skip the PyTorch peer")
	device := deviceFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: srmlab bench [--models a,b,...] [--warmup n] [--steps n] [--threads n] [--no-torch] [--device cpu|cuda]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *steps < 1 || *warmup < 0 || *threads < 1 {
		return fmt.Errorf("need -steps >= 1, -warmup >= 0 and -threads >= 1")
	}
	names := strings.Split(*models, ",")
	var peer []string // the models PyTorch has
	for _, n := range names {
		spec, depth, err := srm.ParseName(n)
		if err != nil {
			return err
		}
		if !slices.Contains(srm.CIFARDepths, depth) {
			return fmt.Errorf("%s: bench times CIFAR models (depths %v)", n, srm.CIFARDepths)
		}
		if slices.Contains(torchKinds, spec.String()) {
			peer = append(peer, n)
		}
	}

	dev, release, err := openDevice(*device)
	if err != nil {
		return err
	}
	defer release()
	where := fmt.Sprintf("%d cores, %s", runtime.GOMAXPROCS(0), blas.Name())
	peerDevice := "cpu"
	if dev != nil {
		where, peerDevice = dev.String(), "cuda"
	}
	fmt.Printf("batch %d, 32x32, SGD momentum 0.9; median of %d steps after %d; srmlab on %s\n",
		bench.Batch, *steps, *warmup, where)
	ours := map[string]float64{}
	for _, n := range names {
		s, err := bench.NewTrainStep(n, bench.Batch, dev)
		if err != nil {
			return err
		}
		d, err := s.Median(ctx, *warmup, *steps)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		ours[n] = d.Seconds() * 1e3
	}
	theirs := map[string]float64{}
	switch {
	case *noTorch || len(peer) == 0:
	default:
		var err error
		if theirs, err = torchref.StepTimes(ctx, peer, peerDevice, *threads, *warmup, *steps); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(os.Stderr, "srmlab bench: no PyTorch column: %v\n", err)
		} else {
			fmt.Printf("PyTorch on %s, %d threads, OPENBLAS_CORETYPE=%s\n", peerDevice, *threads, os.Getenv("OPENBLAS_CORETYPE"))
		}
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "model\tsrmlab ms/step\tPyTorch ms/step\tPyTorch/srmlab\t")
	for _, n := range names {
		pt, ratio := "-", "-"
		if t, ok := theirs[n]; ok {
			pt, ratio = fmt.Sprintf("%.1f", t), fmt.Sprintf("%.2f", t/ours[n])
		}
		fmt.Fprintf(w, "%s\t%.1f\t%s\t%s\t\n", n, ours[n], pt, ratio)
	}
	return w.Flush()
}
