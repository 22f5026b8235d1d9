package gpucheck

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/srmlab/srmlab/bench"
	"github.com/srmlab/srmlab/cuda"
)

// Options configures Run.
type Options struct {
	Kernels cuda.CheckOptions // the fused SRM kernels' own check and timings
	Seed    uint64
	// Models are the zoo models whose training step is compared with the
	// CPU (DefaultModels when nil).
	Models []ModelCase
	// Timed are the ResNet-50 kinds timed ("plain", "srm", "se", "ge");
	// none when empty. Batch 64 at 224 px, as cuda/bench_torch.py.
	Timed         []string
	Warmup, Steps int
	TimedBatch    int    // 64 by default
	TimedNet      string // "resnet50" by default; tests time smaller ones
	SkipKernels   bool
	OpFilter      func(name string) bool // nil: every case
	SkipModules   bool
	ModuleFilter  func(spec string) bool
	// Deterministic runs the comparisons with cuDNN's deterministic
	// algorithms only (cuda.Device.SetDeterministic); the timed steps keep
	// cudnnFind's fastest.
	Deterministic bool
}

// DefaultModels are CIFAR ResNet-20 with each module and an SRM-ResNet-50
// at a small input, small enough for the CPU's float64 side. The batches
// keep BatchNorm over the modules' N·C·1·1 values well posed: with two
// samples its gradient is zero in exact arithmetic and pure rounding noise
// in float32.
var DefaultModels = []ModelCase{
	{"resnet20", 8, 32}, {"srm-resnet20", 8, 32}, {"se-resnet20", 8, 32}, {"ge-resnet20", 8, 32},
	{"srm-resnet50", 4, 64},
}

// StepTime is one timed training step, in cuda/bench_torch.py's form.
type StepTime struct {
	Model    string  `json:"model"`
	MedianMS float64 `json:"median_ms"`
	MinMS    float64 `json:"min_ms"`
	// SyncedMS is the median wall time of a step waited for before the
	// next is queued, as a training loop that reads each loss runs.
	SyncedMS float64 `json:"synced_ms"`
	Steps    int     `json:"steps"`
	PeakMiB  float64 `json:"peak_mib"` // the caching allocator's blocks, live and cached
	// QueuedMS are the queued steps' times in the order they ran, and
	// Started when the first was queued (UTC): a stretch of slow steps
	// shows where it starts and ends, to set beside a log of the GPU's
	// clocks (cuda/check.sh samples nvidia-smi).
	QueuedMS []float64 `json:"queued_ms,omitempty"`
	Started  string    `json:"started,omitempty"`
}

// Report is the outcome of Run; it embeds cuda.Check's report, whose JSON
// fields stay at the top level for cuda/bench_torch.py.
type Report struct {
	*cuda.Report
	ConvBackend string              `json:"conv_backend"`
	Ops         []Result            `json:"ops"`
	Models      []Result            `json:"models"`
	ResNet50    map[string]StepTime `json:"resnet50"`
	// SRMOverhead is (srm − plain)/plain of the ResNet-50 medians,
	// SRMOverheadMin of their minimums: both kinds' steps sometimes run a
	// stretch about 5 ms slower, which moves a median by more than the 3 %
	// target.
	SRMOverhead    *float64 `json:"resnet50_srm_overhead"`
	SRMOverheadMin *float64 `json:"resnet50_srm_overhead_min"`
}

// Failed counts the results over their limits, the kernels' included.
func (r *Report) Failed() int {
	n := 0
	if r.Report != nil {
		n = r.Report.Failed()
	}
	for _, x := range slices.Concat(r.Ops, r.Models) {
		if !x.OK() {
			n++
		}
	}
	return n
}

// Run checks and times d, writing progress and tables to w.
func Run(ctx context.Context, d *cuda.Device, o Options, w io.Writer) (*Report, error) {
	rep := &Report{ResNet50: map[string]StepTime{}}
	if !o.SkipKernels {
		kr, err := cuda.Check(ctx, d, o.Kernels, w)
		rep.Report = kr
		if err != nil {
			return rep, err
		}
	}
	d.SetTF32(false)
	d.SetDeterministic(o.Deterministic)
	start := time.Now()
	rep.Ops = checkOps(d, o.Seed, o.OpFilter)
	if !o.SkipModules {
		for _, c := range moduleCases {
			if o.ModuleFilter == nil || o.ModuleFilter(c.Spec) {
				rep.Ops = append(rep.Ops, checkModule(d, c, o.Seed)...)
			}
		}
	}
	rep.ConvBackend = d.ConvBackend()
	if o.Deterministic {
		rep.ConvBackend += ", deterministic algorithms"
	}
	fmt.Fprintf(w, "\n== operations on the GPU against the CPU engine in float64 (max |err| / max |ref|; %s; %.1f s) ==\n",
		rep.ConvBackend, time.Since(start).Seconds())
	summarize(w, rep.Ops)
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	start = time.Now()
	models := o.Models
	if models == nil {
		models = DefaultModels
	}
	for _, c := range models {
		rep.Models = append(rep.Models, checkModel(d, c, o.Seed)...)
		runtime.GC()
	}
	fmt.Fprintf(w, "\n== training steps of whole models, GPU float32 against CPU float64 (%.1f s) ==\n", time.Since(start).Seconds())
	summarize(w, rep.Models)
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	if len(o.Timed) > 0 {
		d.SetDeterministic(false)
		if err := timeResNet50(ctx, d, o, rep, w); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// summarize prints, per case, the worst of each kind of quantity (values,
// gradients, updated state) and every failure, which keeps the models'
// hundreds of gradients to a few lines.
func summarize(w io.Writer, rs []Result) {
	type key struct{ c, kind string }
	worst := map[key]Result{}
	var order []key
	for _, r := range rs {
		kind := "value"
		switch {
		case r.Err != "":
			kind = "error"
		case strings.HasPrefix(r.Quantity, "grad "):
			kind = "grad"
		case r.Quantity == "out" || r.Quantity == "logits" || r.Quantity == "loss" || strings.HasPrefix(r.Quantity, "ReLU masks"):
			kind = r.Quantity
		}
		k := key{r.Case, kind}
		if !r.OK() {
			fmt.Fprintln(w, r)
		}
		old, seen := worst[k]
		if !seen {
			order = append(order, k)
		}
		if !seen || r.RelErr > old.RelErr || r.RelErr != r.RelErr {
			worst[k] = r
		}
	}
	for _, k := range order {
		if r := worst[k]; r.OK() {
			fmt.Fprintf(w, "%s   (worst %s)\n", r, k.kind)
		}
	}
	fail := 0
	for _, r := range rs {
		if !r.OK() {
			fail++
		}
	}
	fmt.Fprintf(w, "%d quantities, %d over their limits\n", len(rs), fail)
}

// timeResNet50 times the training step of each kind at batch 64, 224 px,
// TF32 convolutions on, as PyTorch's defaults; each step ends by reading
// the loss, so queued work is included.
func timeResNet50(ctx context.Context, d *cuda.Device, o Options, rep *Report, w io.Writer) error {
	d.SetTF32(true)
	defer d.SetTF32(false)
	batch := o.TimedBatch
	if batch == 0 {
		batch = 64
	}
	warmup, steps := max(o.Warmup, 1), max(o.Steps, 1)
	fmt.Fprintf(w, "\n== ResNet-50 training step, batch %d, 224x224, SGD momentum 0.9, TF32 convolutions (%s) ==\n", batch, d.ConvBackend())
	fmt.Fprintf(w, "steps queued back to back, CUDA events between them (as PyTorch is timed); then each waited for\n")
	fmt.Fprintf(w, "%-6s %-14s %10s %10s %10s %10s\n", "kind", "model", "median ms", "min ms", "synced ms", "MiB")
	var inOrder []string
	for _, kind := range o.Timed {
		name := o.TimedNet
		if name == "" {
			name = "resnet50"
		}
		if kind != "plain" {
			name = kind + "-" + name
		}
		t, err := timeStep(ctx, d, name, batch, warmup, steps)
		if err != nil {
			fmt.Fprintf(w, "%-6s %-14s failed: %v\n", kind, name, err)
			continue
		}
		rep.ResNet50[kind] = t
		fmt.Fprintf(w, "%-6s %-14s %10.2f %10.2f %10.2f %10.0f\n", kind, name, t.MedianMS, t.MinMS, t.SyncedMS, t.PeakMiB)
		inOrder = append(inOrder, fmt.Sprintf("%-6s from %s: %s", kind, t.Started, formatMS(t.QueuedMS)))
		runtime.GC()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if len(inOrder) > 0 {
		fmt.Fprintf(w, "each queued step in order, ms (queued from the time given, UTC):\n%s\n", strings.Join(inOrder, "\n"))
	}
	p, okP := rep.ResNet50["plain"]
	s, okS := rep.ResNet50["srm"]
	if okP && okS {
		ov, ovMin := s.MedianMS/p.MedianMS-1, s.MinMS/p.MinMS-1
		rep.SRMOverhead, rep.SRMOverheadMin = &ov, &ovMin
		fmt.Fprintf(w, "SRM adds %+.1f %% to the plain ResNet-50 step by medians, %+.1f %% by minimums\n", 100*ov, 100*ovMin)
	}
	return nil
}

// formatMS lists times in ms with one decimal.
func formatMS(ts []float64) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = strconv.FormatFloat(t, 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}

// timeStep times a model's training step as cuda/bench_torch.py times
// PyTorch's: steps queued back to back with a marker (CUDA event) between
// them, median and minimum of the intervals; then the same number of steps
// each waited for by reading the loss, as a training loop does, whose
// median wall time includes the host's share that queueing ahead hides.
func timeStep(ctx context.Context, d *cuda.Device, name string, batch, warmup, steps int) (StepTime, error) {
	s, err := bench.NewTrainStep(name, batch, d)
	if err != nil {
		return StepTime{}, err
	}
	for range warmup {
		if err := s.Run(); err != nil {
			return StepTime{}, err
		}
	}
	marks := make([]*cuda.Marker, 0, steps+1)
	defer func() {
		for _, m := range marks {
			m.Free()
		}
	}()
	mark := func() error {
		m, err := d.Mark()
		if err == nil {
			marks = append(marks, m)
		}
		return err
	}
	started := time.Now().UTC().Format("15:04:05.000")
	if err := mark(); err != nil {
		return StepTime{}, err
	}
	for range steps {
		if _, err := s.Queue(); err != nil {
			return StepTime{}, err
		}
		if err := mark(); err != nil {
			return StepTime{}, err
		}
	}
	queued := make([]time.Duration, steps)
	for i := range steps {
		if queued[i], err = marks[i+1].Since(marks[i]); err != nil {
			return StepTime{}, err
		}
	}
	var synced []time.Duration
	for range steps {
		if err := ctx.Err(); err != nil {
			return StepTime{}, err
		}
		t0 := time.Now()
		if err := s.Run(); err != nil {
			return StepTime{}, err
		}
		synced = append(synced, time.Since(t0))
	}
	ms := func(t time.Duration) float64 { return float64(t) / float64(time.Millisecond) }
	inOrder := make([]float64, steps)
	for i, t := range queued {
		inOrder[i] = ms(t)
	}
	sort.Slice(queued, func(i, j int) bool { return queued[i] < queued[j] })
	sort.Slice(synced, func(i, j int) bool { return synced[i] < synced[j] })
	st := d.MemStats()
	return StepTime{Model: name, MedianMS: ms(queued[steps/2]), MinMS: ms(queued[0]), SyncedMS: ms(synced[steps/2]), Steps: steps,
		PeakMiB: float64(st.InUse+st.Cached) / (1 << 20), QueuedMS: inOrder, Started: started}, nil
}
