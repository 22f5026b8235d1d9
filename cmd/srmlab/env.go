package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"

	"github.com/srmlab/srmlab/blas"
)

func init() {
	register("env", "show the machine, Go version and the BLAS in use", func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("env", flag.ContinueOnError)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		fmt.Printf("go:     %s %s/%s, GOMAXPROCS=%d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
		fmt.Printf("blas:   %s\n", blas.Name())
		if why := blas.FallbackReason(); why != "" {
			fmt.Printf("        (fallback: %s)\n", why)
		}
		return nil
	})
}
