package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/srmlab/srmlab/analysis"
	"github.com/srmlab/srmlab/report"
)

func init() {
	summaries := map[string]string{
		"compare": "train none/SE/GE/SRM over seeds on the bundled and given data (compare.csv)",
		"ablate":  "SRM pooling and CFC-vs-MLP ablation on bundled textures (ablation.csv)",
		"dtd":     "the compared models on each of DTD's ten splits, from --data dtd:DIR (dtd.csv)",
		"prune":   "channel-pruning curves of the compared models by gate, BN |γ| and random rankings (pruning.csv)",
		"domains": "per-domain and leave-one-domain-out accuracy (domains.csv, loo.csv)",
		"gates":   "per-class and per-domain gate statistics of SE and SRM (gates.csv, gate_variance.csv)",
	}
	for _, step := range analysis.Steps {
		register(step, summaries[step], func(ctx context.Context, args []string) error {
			c, err := parseAnalysis(step, args)
			if err != nil {
				return err
			}
			return c.RunStep(ctx, step)
		})
	}
	register("reproduce", "the paper's analyses end to end on bundled (and given) data, then the report", runReproduce)
	register("report", "HTML and Markdown report of a results folder beside the paper's numbers", runReport)
}

// parseAnalysis reads the flags every analysis step shares; --quick (the
// default) and --full pick the preset that other flags then amend.
func parseAnalysis(name string, args []string) (analysis.Config, error) {
	c := analysis.Quick()
	for _, a := range args {
		if a == "--full" || a == "-full" {
			c = analysis.Full()
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Bool("quick", true, "the quick preset: about 10 minutes on 2 cores (default)")
	fs.Bool("full", false, "the full preset: bundled sets at full size, 3 seeds, 30 epochs (hours)")
	c.Flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return c, err
	}
	if c.Out == "" {
		return c, fmt.Errorf("--out is required")
	}
	c.Log = os.Stderr
	return c, nil
}

// runReproduce is the README's main job: every step, then the report in
// OUT/report.
func runReproduce(ctx context.Context, args []string) error {
	c, err := parseAnalysis("reproduce", args)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := analysis.Reproduce(ctx, c); err != nil {
		return err
	}
	dir := filepath.Join(c.Out, "report")
	if err := report.Build(c.Out, dir); err != nil {
		return err
	}
	fmt.Printf("reproduce: %.0f s; report: %s\n", time.Since(start).Seconds(), filepath.Join(dir, "index.html"))
	return nil
}

func runReport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("in", "", "results folder (the --out of reproduce or of the analysis steps)")
	out := fs.String("out", "", "report folder (default IN/report)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return fmt.Errorf("--in is required")
	}
	if *out == "" {
		*out = filepath.Join(*in, "report")
	}
	if err := report.Build(*in, *out); err != nil {
		return err
	}
	fmt.Println(filepath.Join(*out, "index.html"))
	return nil
}
