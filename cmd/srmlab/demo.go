package main

import (
	"context"
	"flag"
	"fmt"
	"math"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/optim"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
)

func init() {
	register("demo", "a short SRM demo on bundled texture images: forward, a few SGD steps, gate spread", runDemo)
}

// runDemo shows the engine end to end in seconds: SRM's gates start at
// exactly 0.5 (zero CFC weights) and spread apart as the module learns which
// channels' styles tell the textures apart.
func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	model := fs.String("model", "srm-resnet20", "model name (srmlab params lists the paper's)")
	batch := fs.Int("batch", 64, "images in the batch")
	steps := fs.Int("steps", 15, "SGD steps on that batch")
	seed := fs.Uint64("seed", 1, "seed for data and initialisation")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *batch < 2 || *steps < 0 {
		return fmt.Errorf("--batch must be at least 2 and --steps not negative")
	}
	splits, err := datasets.Textures(datasets.BundledConfig{Seed: *seed})
	if err != nil {
		return err
	}
	ds := splits.Train
	n := min(*batch, ds.Len())
	var x *tensor.Tensor
	labels := make([]int, n)
	for i := range n {
		s, err := ds.Sample(i * ds.Len() / n)
		if err != nil {
			return err
		}
		if x == nil {
			x = tensor.Zeros(n, s.Image.C, s.Image.H, s.Image.W)
		}
		copy(x.F32()[i*len(s.Image.Pix):], s.Image.Pix)
		labels[i] = s.Label
	}
	m, err := srm.NewModel(*model, srm.Options{Classes: len(ds.Classes()), InputSize: x.Dim(2), Seed: *seed})
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d parameters, %.4f GMACs per %dx%d image; %d bundled texture images, %d classes\n",
		m.Name, m.Params(), m.MACs()/1e9, x.Dim(2), x.Dim(3), n, len(ds.Classes()))
	m.Eval()
	if _, err := m.Forward(x); err != nil {
		return err
	}
	printGates("eval forward at initialisation", m)
	m.Train()
	opt := optim.NewSGD(m.Vars(), 0.05, 0.9, 1e-4, false)
	for step := 1; step <= *steps; step++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		logits, err := m.Forward(x)
		if err != nil {
			return err
		}
		loss, err := op.CrossEntropy(logits, labels)
		if err != nil {
			return err
		}
		opt.ZeroGrad()
		loss.Backward()
		opt.Step()
		if step == 1 || step == *steps || step%5 == 0 {
			fmt.Printf("step %3d  loss %.4f\n", step, loss.Item())
		}
	}
	m.Eval()
	if _, err := m.Forward(x); err != nil {
		return err
	}
	printGates(fmt.Sprintf("eval forward after %d steps", *steps), m)
	return nil
}

func printGates(title string, m *srm.Model) {
	sites := m.Recalibrators()
	if len(sites) == 0 {
		return
	}
	fmt.Printf("%s: gate mean ± sd per block\n", title)
	for _, s := range sites {
		g := s.Module.Gates()
		if g == nil {
			continue
		}
		mean, sq := 0.0, 0.0
		for _, v := range g.Float64s() {
			mean += v
			sq += v * v
		}
		k := float64(g.Len())
		mean /= k
		fmt.Printf("  %-16s %.4f ± %.4f\n", s.Name, mean, math.Sqrt(math.Max(sq/k-mean*mean, 0)))
	}
}
