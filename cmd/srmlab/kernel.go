package main

import (
	"context"
	"flag"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/srmlab/srmlab/kernel"
)

func init() {
	register("kernel", "Jupyter kernel: run it, or install its kernelspec", runKernel)
}

func runKernel(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "install" {
		return installKernel(args[1:])
	}
	fs := flag.NewFlagSet("kernel", flag.ContinueOnError)
	conn := fs.String("connection-file", "", "Jupyter connection file (Jupyter passes it)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: srmlab kernel --connection-file FILE\n       srmlab kernel install [--user] [--prefix DIR]\n\nJupyter starts the kernel; install its kernelspec first.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *conn == "" {
		fs.Usage()
		return flag.ErrHelp
	}
	// main's context ends on SIGINT, but for a kernel SIGINT means
	// "interrupt the cell" (kernel.Run handles it); only SIGTERM ends it.
	kctx, stop := signal.NotifyContext(context.WithoutCancel(ctx), syscall.SIGTERM)
	defer stop()
	return kernel.Run(kctx, *conn)
}

func installKernel(args []string) error {
	fs := flag.NewFlagSet("kernel install", flag.ContinueOnError)
	user := fs.Bool("user", false, "install for the current user (Jupyter's user data directory)")
	prefix := fs.String("prefix", "", "install under `DIR`/share/jupyter, e.g. a virtual environment")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	exe, err := kernel.Executable()
	if err != nil {
		return err
	}
	data, err := kernel.DataDir(*user, *prefix)
	if err != nil {
		return err
	}
	dir, err := kernel.NewSpec(exe).Install(data, kernel.Name)
	if err != nil {
		return err
	}
	fmt.Printf("installed kernelspec %q in %s\n", kernel.Name, dir)
	return nil
}
