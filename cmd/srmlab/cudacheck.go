package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/srmlab/srmlab/cuda"
)

func init() {
	register("cuda-check", "check the CUDA kernels against float64 and time them (needs a GPU)", func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("cuda-check", flag.ContinueOnError)
		gpu := fs.Int("gpu", 0, "GPU number")
		reps := fs.Int("reps", 30, "timed runs per operation (the median is reported)")
		warmup := fs.Int("warmup", 5, "untimed runs before timing")
		seed := fs.Uint64("seed", 1, "random seed for inputs and parameters")
		large := fs.Bool("check-large", true, "also check the timed shapes against the float64 reference (slower)")
		jsonOut := fs.String("json", "", "write the report as JSON to this file")
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
		rep, err := cuda.Check(ctx, d, cuda.CheckOptions{Shapes: shapes, Warmup: *warmup, Reps: *reps, Seed: *seed, CheckLarge: *large}, os.Stdout)
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
			return fmt.Errorf("%d of %d checks over their limits", n, len(rep.Checks))
		}
		return nil
	})
}
