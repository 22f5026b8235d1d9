package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/srmlab/srmlab/cuda"
	"github.com/srmlab/srmlab/gpucheck"
)

func init() {
	register("cuda-check", "check the GPU path against the CPU and time it (needs a GPU)", func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("cuda-check", flag.ContinueOnError)
		gpu := fs.Int("gpu", 0, "GPU number")
		reps := fs.Int("reps", 30, "timed runs per operation (the median is reported)")
		warmup := fs.Int("warmup", 5, "untimed runs before timing")
		seed := fs.Uint64("seed", 1, "random seed for inputs and parameters")
		large := fs.Bool("check-large", true, "also check the timed shapes against the float64 reference (slower)")
		variants := fs.Bool("variants", true, "also check and time the timed shapes' SRM and block-tail passes under each candidate plane-kernel layout, second passes in forward and reverse plane order (a table; Variants in the JSON)")
		jsonOut := fs.String("json", "", "write the report as JSON to this file")
		timed := fs.String("resnet50", "plain,srm,se,ge", "ResNet-50 kinds whose training step (batch 64, 224 px) is timed; empty for none")
		r50Steps := fs.Int("r50-steps", 20, "timed ResNet-50 steps per kind (the median is reported)")
		r50Warmup := fs.Int("r50-warmup", 5, "untimed ResNet-50 steps before timing")
		cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the host side to this file (go tool pprof)")
		pdl := fs.Bool("pdl", false, "launch the SRM and block-tail kernels under programmatic dependent launch in every check and timing (cuda.Device.SetPDL: compute capability 9.0 and a CUDA 12 driver; default: SRMLAB_PDL, else off)")
		deterministic := fs.Bool("deterministic", false, "compare with the CPU using only cuDNN's deterministic convolution algorithms (the timed steps keep the fastest)")
		var names []string
		for _, s := range cuda.BenchmarkShapes {
			names = append(names, s.String())
		}
		shapeList := fs.String("shapes", strings.Join(names, ","), "timed shapes, NxCxHxW, comma-separated")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		var shapes []cuda.Shape
		for _, f := range strings.Split(*shapeList, ",") {
			s, err := cuda.ParseShape(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			shapes = append(shapes, s)
		}
		d, err := cuda.Open(*gpu)
		if err != nil {
			return err
		}
		if flagSet(fs, "pdl") {
			if err := d.SetPDL(*pdl); err != nil {
				return errors.Join(err, d.Close())
			}
		}
		if d.PDL() {
			fmt.Println("launches: SRM's and the block tails' kernels under programmatic dependent launch")
		} else {
			fmt.Println("launches: SRM's and the block tails' kernels the ordinary way")
		}
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		var kinds []string
		if *timed != "" {
			kinds = strings.Split(*timed, ",")
		}
		rep, err := gpucheck.Run(ctx, d, gpucheck.Options{
			Kernels: cuda.CheckOptions{Shapes: shapes, Warmup: *warmup, Reps: *reps, Seed: *seed, CheckLarge: *large, Variants: *variants},
			Seed:    *seed, Timed: kinds, Warmup: *r50Warmup, Steps: *r50Steps, Deterministic: *deterministic,
		}, os.Stdout)
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		if *jsonOut != "" && rep != nil {
			data, jerr := json.MarshalIndent(rep, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(*jsonOut, append(data, '\n'), 0o644)
			}
			if err == nil {
				err = jerr
			}
		}
		if err != nil {
			return err
		}
		if n := rep.Failed(); n > 0 {
			return fmt.Errorf("%d checks over their limits", n)
		}
		return nil
	})
}

func init() {
	register("cuda-compare", "cuda-check JSON reports side by side: fused-op and ResNet-50 times against the first (no GPU needed)", func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("cuda-compare", flag.ContinueOnError)
		fs.Usage = func() {
			fmt.Fprintln(fs.Output(), "usage: srmlab cuda-compare BASE.json OTHER.json ... (cuda-check -json reports; each column is named after its file)")
		}
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() < 2 {
			fs.Usage()
			return errors.New("cuda-compare needs two reports or more")
		}
		var names []string
		var runs []*gpucheck.Report
		for _, path := range fs.Args() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var r gpucheck.Report
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("%s: not a cuda-check report: %w", path, err)
			}
			names = append(names, strings.TrimSuffix(filepath.Base(path), ".json"))
			runs = append(runs, &r)
		}
		return gpucheck.CompareRuns(os.Stdout, names, runs)
	})
}
