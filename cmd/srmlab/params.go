package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/srmlab/srmlab/srm"
)

// defaultParamModels are the models of the SRM paper's tables: plain, SE,
// GE-θ and SRM ResNets for ImageNet and CIFAR.
var defaultParamModels = []string{
	"resnet50", "se-resnet50", "ge-resnet50", "srm-resnet50",
	"resnet101", "se-resnet101", "ge-resnet101", "srm-resnet101",
	"resnet20", "se-resnet20", "ge-resnet20", "srm-resnet20",
	"resnet56", "se-resnet56", "ge-resnet56", "srm-resnet56",
}

func init() {
	register("params", "parameter counts and multiply-accumulates of the model zoo", runParams)
}

// runParams prints one row per model and shortcut option. CIFAR models get
// a row for each of shortcut options A and B unless -shortcut picks one;
// ImageNet models only have B. caffe_gmacs, the Caffe-layout figure the
// SRM paper's GFLOPs follow, is left empty for CIFAR models.
func runParams(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("params", flag.ContinueOnError)
	asCSV := fs.Bool("csv", false, "write CSV instead of an aligned table")
	models := fs.String("models", "", "comma-separated model names, e.g. srm:avg+max-resnet20 (default: plain, SE, GE-θ and SRM ResNet-50, -101, -20 and -56)")
	shortcut := fs.String("shortcut", "", "CIFAR shortcut option, A or B (default: a row for each)")
	size := fs.Int("size", 0, "input side in pixels (default 224 for ImageNet, 32 for CIFAR models)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: srmlab params [--csv] [--models a,b,...] [--shortcut A|B] [--size px]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	shortcuts := []string{"A", "B"}
	switch *shortcut {
	case "":
	case "A", "B":
		shortcuts = []string{*shortcut}
	default:
		return fmt.Errorf("-shortcut %q: want A or B", *shortcut)
	}
	names := defaultParamModels
	if *models != "" {
		names = strings.Split(*models, ",")
	}
	rows, err := paramRows(ctx, names, shortcuts, *size)
	if err != nil {
		return err
	}
	if *asCSV {
		w := csv.NewWriter(os.Stdout)
		w.WriteAll(rows)
		return w.Error()
	}
	printAligned(os.Stdout, rows)
	return nil
}

// paramRows sizes each model, once per shortcut option for CIFAR models,
// and returns the table with its header.
func paramRows(ctx context.Context, names, shortcuts []string, size int) ([][]string, error) {
	rows := [][]string{{"model", "shortcut", "params", "gmacs", "caffe_gmacs"}}
	for _, name := range names {
		name = strings.TrimSpace(name)
		_, depth, err := srm.ParseName(name)
		if err != nil {
			return nil, err
		}
		options := []string{"B"}
		if slices.Contains(srm.CIFARDepths, depth) {
			options = shortcuts
		}
		for _, sc := range options {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			s, err := srm.Count(name, srm.Options{Shortcut: sc, InputSize: size})
			if err != nil {
				return nil, err
			}
			caffe := ""
			if s.CaffeMACs > 0 {
				caffe = strconv.FormatFloat(s.CaffeMACs/1e9, 'f', 4, 64)
			}
			rows = append(rows, []string{name, sc, strconv.Itoa(s.Params), strconv.FormatFloat(s.MACs/1e9, 'f', 4, 64), caffe})
		}
	}
	return rows, nil
}

// printAligned writes rows as a table with the first column left-aligned
// and the numeric ones right-aligned; an empty cell shows as "-".
func printAligned(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len(cell))
		}
	}
	for _, row := range rows {
		line := fmt.Sprintf("%-*s", widths[0], row[0])
		for i, cell := range row[1:] {
			if cell == "" {
				cell = "-"
			}
			line += fmt.Sprintf("  %*s", widths[i+1], cell)
		}
		fmt.Fprintln(w, line)
	}
}
