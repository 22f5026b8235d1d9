package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gocarina/gocsv"
	"github.com/srmlab/srmlab/bench"
	"github.com/srmlab/srmlab/blas"
	"github.com/srmlab/srmlab/onednn"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
	"github.com/srmlab/srmlab/torchref"
)

func init() {
	register("bench", "time CIFAR training steps in srmlab and in PyTorch", runBench)
}

// torchKinds are the modules torchref's PyTorch models have, in their
// default form; other specs are timed in srmlab only.
var torchKinds = []string{"", "srm", "se", "ge"}

// benchRow is one model at one thread count, a line of the table and a
// row of --csv. Missing measurements are 0.
type benchRow struct {
	Threads       int     `csv:"threads"`
	Model         string  `csv:"model"`
	StepMS        float64 `csv:"srmlab_step_ms"`
	TorchStepMS   float64 `csv:"torch_step_ms"`
	Ratio         float64 `csv:"torch_over_srmlab"`
	Overhead      float64 `csv:"srmlab_overhead_pct"`
	TorchOverhead float64 `csv:"torch_overhead_pct"`
	EvalIPS       float64 `csv:"srmlab_eval_images_per_s"`
	TorchEvalIPS  float64 `csv:"torch_eval_images_per_s"`
	PeakMiB       float64 `csv:"srmlab_peak_mib"`
	TorchPeakMiB  float64 `csv:"torch_peak_mib"`
}

// runBench times one training step (batch 128, 32x32, SGD with momentum) of
// each model in srmlab and in PyTorch through torchref's peer, alternating
// single steps so that both meet the same load on a shared machine, at
// each thread count asked for, and prints the medians with their ratio,
// each module's overhead over the plain ResNet of its depth, and on request
// evaluation throughput and peak memory.
func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	models := fs.String("models", "resnet20,srm-resnet20", "comma-separated CIFAR model names")
	warmup := fs.Int("warmup", 3, "untimed steps before timing")
	steps := fs.Int("steps", 10, "timed steps; the median is reported")
	threads := fs.String("threads", strconv.Itoa(runtime.GOMAXPROCS(0)), "comma-separated thread counts, each used by srmlab (GOMAXPROCS, oneDNN) and PyTorch alike")
	eval := fs.Bool("eval", false, "also time evaluation-mode forward passes (images/s)")
	memory := fs.Bool("memory", false, "also measure each training step's peak memory, each model in a fresh process (Linux)")
	csvOut := fs.Bool("csv", false, "print CSV rows instead of the table")
	noTorch := fs.Bool("no-torch", false, "skip the PyTorch peer")
	memoryOf := fs.String("memory-of", "", "measure one model's training-step peak memory in this process and print it as JSON (what --memory runs in a fresh process per model)")
	device := deviceFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: srmlab bench [--models a,b,...] [--threads 1,2] [--eval] [--memory] [--csv] [--warmup n] [--steps n] [--no-torch] [--device cpu|cuda]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	counts, err := parseCounts(*threads)
	if err != nil {
		return err
	}
	if *steps < 1 || *warmup < 0 {
		return fmt.Errorf("need -steps >= 1 and -warmup >= 0")
	}
	if *memoryOf != "" { // the child process of --memory
		return printPeak(*memoryOf, counts[0], *steps)
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
	if *memory && dev != nil {
		return fmt.Errorf("--memory measures the CPU's resident memory; drop it or use --device cpu")
	}
	peerDevice := "cpu"
	where := fmt.Sprintf("%s; %s", blas.Name(), onednn.Name())
	if dev != nil {
		where, peerDevice = dev.String(), "cuda"
	}
	var p *torchref.Peer
	if !*noTorch && len(peer) > 0 {
		if p, err = torchref.StartPeer(ctx, peerDevice); err != nil {
			fmt.Fprintf(os.Stderr, "srmlab bench: no PyTorch column: %v\n", err)
		} else {
			defer p.Close()
		}
	}
	if !*csvOut {
		fmt.Printf("batch %d, 32x32, SGD momentum 0.9; median of %d steps after %d, alternating srmlab and PyTorch\nsrmlab on %s\n",
			bench.Batch, *steps, *warmup, where)
	}
	var rows []benchRow
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, t := range counts {
		runtime.GOMAXPROCS(t)
		r := &benchRun{names: names, peer: peer, p: p, dev: dev, threads: t, warmup: *warmup, steps: *steps}
		table, err := r.measure(ctx, *eval)
		if err != nil {
			return err
		}
		if *memory {
			if err := r.peaks(ctx, table); err != nil {
				return err
			}
		}
		rows = append(rows, table...)
		if !*csvOut {
			if err := printBench(table, *eval, *memory); err != nil {
				return err
			}
		}
	}
	if *csvOut {
		return gocsv.Marshal(rows, os.Stdout)
	}
	return nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--threads %q: want positive counts separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchRun measures the models at one thread count.
type benchRun struct {
	names, peer     []string
	p               *torchref.Peer // nil: no PyTorch column
	dev             tensor.Device
	threads         int
	warmup, steps   int
	ours, theirs    map[string][]float64
	oursEv, theirEv map[string][]float64
}

// measure times every model's steps, srmlab's and PyTorch's in turn, one
// step at a time, after their warm-up steps.
func (r *benchRun) measure(ctx context.Context, eval bool) ([]benchRow, error) {
	steps := map[string]*bench.TrainStep{}
	for _, n := range r.names {
		s, err := bench.NewTrainStep(n, bench.Batch, r.dev)
		if err != nil {
			return nil, err
		}
		steps[n] = s
	}
	r.ours, r.theirs, r.oursEv, r.theirEv = map[string][]float64{}, map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	kinds := []string{"train"}
	if eval {
		kinds = append(kinds, "eval")
	}
	for _, kind := range kinds {
		ours, theirs := r.ours, r.theirs
		if kind == "eval" {
			ours, theirs = r.oursEv, r.theirEv
		}
		for i := -r.warmup; i < r.steps; i++ {
			for _, n := range r.names {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				s := steps[n]
				run := s.Run
				if kind == "eval" {
					run = s.Eval
				}
				t0 := time.Now()
				if err := run(); err != nil {
					return nil, fmt.Errorf("%s: %w", n, err)
				}
				if ms := time.Since(t0).Seconds() * 1e3; i >= 0 {
					ours[n] = append(ours[n], ms)
				}
				if r.p == nil || !slices.Contains(r.peer, n) {
					continue
				}
				warm, timed := 0, 1
				if i < 0 {
					warm, timed = 1, 0
				}
				t, err := r.p.Times(kind, n, r.threads, warm, timed)
				if err != nil {
					return nil, err
				}
				theirs[n] = append(theirs[n], t...)
			}
		}
	}
	return r.rows(), nil
}

// rows turns the times into table rows: medians, ratios, and overheads
// over the plain ResNet of the same depth where that was timed too.
func (r *benchRun) rows() []benchRow {
	med := func(m map[string][]float64, n string) float64 {
		if len(m[n]) == 0 {
			return 0
		}
		return torchref.Median(m[n])
	}
	ips := func(ms float64) float64 {
		if ms == 0 {
			return 0
		}
		return bench.Batch / (ms / 1e3)
	}
	overhead := func(m map[string][]float64, n string) float64 {
		_, depth, _ := srm.ParseName(n)
		for _, b := range r.names {
			if spec, d, _ := srm.ParseName(b); d == depth && spec.Kind == "" && b != n && med(m, b) > 0 && med(m, n) > 0 {
				return 100 * (med(m, n)/med(m, b) - 1)
			}
		}
		return 0
	}
	var rows []benchRow
	for _, n := range r.names {
		row := benchRow{
			Threads: r.threads, Model: n,
			StepMS: med(r.ours, n), TorchStepMS: med(r.theirs, n),
			Overhead: overhead(r.ours, n), TorchOverhead: overhead(r.theirs, n),
			EvalIPS: ips(med(r.oursEv, n)), TorchEvalIPS: ips(med(r.theirEv, n)),
		}
		if row.TorchStepMS > 0 {
			row.Ratio = row.TorchStepMS / row.StepMS
		}
		rows = append(rows, row)
	}
	return rows
}

// peaks fills in each model's peak memory, measured in fresh processes:
// this binary run with --memory-of, and PyTorch's peer with --memory.
func (r *benchRun) peaks(ctx context.Context, rows []benchRow) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for i := range rows {
		n := rows[i].Model
		out, err := exec.CommandContext(ctx, self, "bench", "--memory-of", n,
			"--threads", strconv.Itoa(r.threads), "--steps", "3").Output()
		if err != nil {
			return fmt.Errorf("%s: measuring memory: %w", n, err)
		}
		var m struct{ MiB float64 }
		if err := json.Unmarshal(out, &m); err != nil {
			return fmt.Errorf("%s: memory child printed %q: %w", n, out, err)
		}
		rows[i].PeakMiB = m.MiB
		if r.p != nil && slices.Contains(r.peer, n) {
			if rows[i].TorchPeakMiB, err = torchref.PeakMemory(ctx, n, r.threads, 3); err != nil {
				return err
			}
		}
	}
	return nil
}

// printPeak is the --memory-of child: it runs steps training steps of the
// model and prints the peak memory they needed as JSON.
func printPeak(name string, threads, steps int) error {
	runtime.GOMAXPROCS(threads)
	s, err := bench.NewTrainStep(name, bench.Batch, nil)
	if err != nil {
		return err
	}
	grew, err := bench.PeakRSS(func() error {
		for range steps {
			if err := s.Run(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]float64{"mib": float64(grew) / (1 << 20)})
}

func printBench(rows []benchRow, eval, memory bool) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "\n%d threads\t\n", rows[0].Threads)
	head := "model\tsrmlab ms/step\tPyTorch ms/step\tPyTorch/srmlab\tsrmlab overhead\tPyTorch overhead\t"
	if eval {
		head += "srmlab eval img/s\tPyTorch eval img/s\t"
	}
	if memory {
		head += "srmlab peak MiB\tPyTorch peak MiB\t"
	}
	fmt.Fprintln(w, head)
	num := func(v float64, format string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	for _, r := range rows {
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t", r.Model, num(r.StepMS, "%.1f"), num(r.TorchStepMS, "%.1f"),
			num(r.Ratio, "%.2f"), num(r.Overhead, "%+.1f%%"), num(r.TorchOverhead, "%+.1f%%"))
		if eval {
			line += fmt.Sprintf("%s\t%s\t", num(r.EvalIPS, "%.0f"), num(r.TorchEvalIPS, "%.0f"))
		}
		if memory {
			line += fmt.Sprintf("%s\t%s\t", num(r.PeakMiB, "%.0f"), num(r.TorchPeakMiB, "%.0f"))
		}
		fmt.Fprintln(w, line)
	}
	return w.Flush()
}
