package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"

	"github.com/srmlab/srmlab/blas"
	"github.com/srmlab/srmlab/onednn"
)

func init() {
	register("env", "show the machine, Go version, and the BLAS and convolution library in use", func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("env", flag.ContinueOnError)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		fmt.Printf("go:     %s %s/%s, GOMAXPROCS=%d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
		fmt.Printf("blas:   %s\n", blas.Name())
		if why := blas.FallbackReason(); why != "" {
			fmt.Printf("        (fallback: %s)\n", why)
		}
		fmt.Printf("conv:   %s\n", onednn.Name())
		return nil
	})
}
