package cuda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseShape reads "NxCxHxW", e.g. "64x256x56x56".
func ParseShape(s string) (Shape, error) {
	parts := strings.Split(s, "x")
	if len(parts) != 4 {
		return Shape{}, fmt.Errorf("shape %q: want NxCxHxW", s)
	}
	var v [4]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return Shape{}, fmt.Errorf("shape %q: bad size %q", s, p)
		}
		v[i] = n
	}
	return Shape{v[0], v[1], v[2], v[3]}, nil
}

// BenchmarkShapes are the SRM positions of ResNet-50 at 224 px, batch 64
// (after the last BN of each stage's blocks), and of a CIFAR ResNet's first
// stage at batch 128.
var BenchmarkShapes = []Shape{{64, 256, 56, 56}, {64, 512, 28, 28}, {64, 1024, 14, 14}, {64, 2048, 7, 7}, {128, 64, 32, 32}}

// checkShapes cover every kernel variant geometryFor can pick, with
// batches large enough for the BN statistics to mean something.
var checkShapes = []Shape{
	{16, 24, 1, 2}, {16, 24, 3, 3}, {16, 24, 4, 4}, {16, 24, 8, 8}, {16, 24, 5, 5}, {16, 24, 7, 7}, {16, 24, 10, 10}, {16, 24, 13, 13}, {16, 24, 14, 14},
	{8, 12, 20, 20}, {16, 24, 28, 28}, {8, 12, 32, 40}, {8, 12, 56, 56}, {4, 6, 64, 100}, {8, 12, 33, 33}, {4, 6, 96, 96},
	{37, 5, 9, 9},
}

// Error limits: statistics, gates and outputs against float64 at 1e-5 (the
// issue's bar for pooling and gates); gradients pass through the BN
// backward's sums of nearly cancelling terms, and get 1e-4.
const (
	forwardLimit  = 1e-5
	gradientLimit = 1e-4
)

// CheckResult is one quantity of one kernel check against the reference.
type CheckResult struct {
	Shape    Shape
	Quantity string  // e.g. "train gate", "dx"
	Kernel   string  // the kernel that produced it
	RelErr   float64 // max |gpu - ref| / max |ref|
	Limit    float64 // largest RelErr that passes
}

// OK reports whether the error is within the limit (NaN never is).
func (r CheckResult) OK() bool { return r.RelErr <= r.Limit }

// String is one line of Check's report.
func (r CheckResult) String() string {
	verdict := "ok"
	if !r.OK() {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%-14s %-21s %-24s %9.2e  (limit %.0e) %s", r.Shape, r.Quantity, r.Kernel, r.RelErr, r.Limit, verdict)
}

// Timing is one timed operation.
type Timing struct {
	Shape    string   // as Shape.String writes it
	Variant  string   // Report.Variants: role (new, old or new=old), layout and order, e.g. "new g16f4 rev"
	Op       string   // "eval_fwd", "train_fwd", "train_fwd_bwd"; "srm_tail_fwd", "srm_tail_bwd", "plain_tail_fwd", "plain_tail_bwd"
	MedianUS float64  // microseconds
	MinUS    float64  // microseconds
	Bytes    int64    // the bytes the kernels must move, counted as in srm.cu's header
	GBs      float64  // Bytes / median
	OfCopy   float64  // GBs over the copy kernel's
	Kernels  []string // the kernels of one run, in order
	// KernelUS is, in Report.Launches, the median time of each kernel of
	// a run, an event recorded after each launch: the gap before a launch
	// counts as its. MedianUS is then their sum.
	KernelUS []float64 `json:",omitempty"`
	// KernelUse is, in Report.Launches, what each kernel takes of an SM;
	// KernelUseError says why it is missing.
	KernelUse      []KernelUse `json:",omitempty"`
	KernelUseError string      `json:",omitempty"`
}

// Report is the outcome of Check.
type Report struct {
	Date     string // UTC, RFC 3339
	Device   Info
	Compiler string  // Device.CompilerInfo after the run
	PDL      bool    // SRM's and the tails' kernels under programmatic dependent launch (Device.SetPDL)
	CopyGBs  float64 // copy kernel, bytes read + written per second
	PeakGBs  float64 // from the memory clock and bus width; 0 if unknown
	Checks   []CheckResult
	Timings  []Timing
	Variants []Timing // with CheckOptions.Variants: the timed shapes under each plane-kernel layout and order
	Launches []Timing // the training passes of SRM and the SRM tail, with each kernel's time (KernelUS)
	// LaunchGapUS is the time a do-nothing kernel takes in the Launches
	// table's timing (an event after every launch): what each of its
	// kernels' times includes besides the kernel's own work.
	LaunchGapUS float64 `json:",omitempty"`
	Reps        int     // timed runs per operation
	Warmup      int     // untimed runs before them
	CheckedBig  bool    // whether the benchmark shapes were checked too
}

// Failed counts the checks over their limit.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if !c.OK() {
			n++
		}
	}
	return n
}

// CheckOptions configures Check.
type CheckOptions struct {
	Shapes     []Shape // timed shapes (BenchmarkShapes when empty)
	Warmup     int     // untimed runs before timing
	Reps       int     // timed runs; the median is reported
	Seed       uint64  // for inputs and parameters
	CheckLarge bool    // also check the timed shapes against the reference (the block tail with SRM only)
	// Variants also checks and times the SRM and block-tail passes of each
	// timed shape under every plane-kernel layout geometryFor chose between
	// (its choice, the previous one, neighbouring group shapes), each with
	// the second passes in forward and in reverse plane order.
	Variants bool

	checkShapes []Shape // replaces checkShapes in tests, where kernels run emulated
}

// Check runs every SRM kernel on random inputs and compares the results
// with the float64 reference, then the block tail's (with SRM and plain)
// against the float64 composition of BatchNorm, SRM, shortcut and ReLU;
// then it times the fused eval forward, training forward, and training
// forward+backward on the benchmark shapes against a copy kernel's
// bandwidth, and the block tail's forward and backward passes likewise.
// With opt.Variants it also checks and times those operations under each
// plane-kernel layout and plane order the fused kernels choose between
// (Report.Variants). Progress and tables go to w.
func Check(ctx context.Context, d *Device, opt CheckOptions, w io.Writer) (*Report, error) {
	if len(opt.Shapes) == 0 {
		opt.Shapes = BenchmarkShapes
	}
	opt.Reps = max(opt.Reps, 1)
	info := d.Info()
	rep := &Report{Date: time.Now().UTC().Format(time.RFC3339), Device: info, PDL: d.PDL(), PeakGBs: info.PeakBandwidth() / 1e9,
		Reps: opt.Reps, Warmup: opt.Warmup, CheckedBig: opt.CheckLarge}
	fmt.Fprintf(w, "device: %s, %s, %d SMs, %.1f GiB, L2 %d MiB, driver %d.%d (%s)\n", info.Name, info.Arch(), info.SMs,
		float64(info.TotalMem)/(1<<30), info.L2Bytes>>20, info.Driver/1000, info.Driver%1000/10, info.Library)
	rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed))

	fmt.Fprintf(w, "\n== correctness against float64 (max |err| / max |ref|) ==\n")
	shapes := slices.Clone(checkShapes)
	if opt.checkShapes != nil {
		shapes = slices.Clone(opt.checkShapes)
	}
	if opt.CheckLarge {
		shapes = append(shapes, opt.Shapes...)
	}
	for _, s := range shapes {
		if err := checkCase(ctx, w, rep, s, "", func() ([]CheckResult, error) { return checkSRMCase(d, s, geometryFor, rng) }); err != nil {
			return rep, err
		}
	}
	rep.Compiler = d.CompilerInfo()
	fmt.Fprintf(w, "kernels: %s\n", rep.Compiler)
	summary(w, rep.Checks)

	// The block tail, with and without SRM, one of the two accumulating
	// into its gradients, alternately. The timed shapes are checked with
	// SRM only: their float64 reference is what takes the time, and the
	// plain tail runs the same plane kernels.
	fmt.Fprintf(w, "\n== block tail against float64 (max |err| / max |ref|) ==\n")
	first := len(rep.Checks)
	for i, s := range shapes {
		large := opt.CheckLarge && i >= len(shapes)-len(opt.Shapes)
		for _, gated := range []bool{true, false} {
			if large && !gated {
				continue
			}
			acc := (i%2 == 1) == gated
			label := fmt.Sprintf("%-5s %-10s", tailKind(gated), accumulation(acc))
			if err := checkCase(ctx, w, rep, s, label, func() ([]CheckResult, error) { return checkTailCase(d, s, gated, acc, geometryFor, rng) }); err != nil {
				return rep, err
			}
		}
	}
	summary(w, rep.Checks[first:])

	if opt.Variants {
		if err := checkVariants(ctx, d, opt.Shapes, w, rep, rng); err != nil {
			return rep, err
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if err := timeAll(ctx, d, opt, w, rep, rng); err != nil {
		return rep, err
	}
	rep.Compiler = d.CompilerInfo()
	return rep, nil
}

// timeAll times the copy kernel, then the fused SRM kernels and the block
// tails on opt's shapes, then their variants when asked.
func timeAll(ctx context.Context, d *Device, opt CheckOptions, w io.Writer, rep *Report, rng *rand.Rand) (err error) {
	if rep.CopyGBs, err = timeCopy(d, opt, w); err != nil {
		return err
	}
	flush, err := newL2Flush(d)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, flush.free()) }()
	fmt.Fprintf(w, "\n== timings: median of %d after %d warm-up runs (CUDA events, L2 flushed before each run) ==\n", opt.Reps, opt.Warmup)
	timePlans := func(s Shape, ops []string) ([]Timing, error) {
		return timeOps(d, s, ops, rng, func(op string, p *Plan) (Timing, error) {
			return timePlan(d, s, op, p, opMaps[op], opt, rep.CopyGBs, flush.plan)
		})
	}
	if err := timeShapes(ctx, w, rep, opt.Shapes, func(s Shape) ([]Timing, error) { return timePlans(s, srmOps) }); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n== block tail timings: median of %d after %d warm-up runs, L2 flushed before each; xcopy is the fraction of the bandwidth floor (4 maps forward, 7 backward, at the copy kernel's speed) ==\n", opt.Reps, opt.Warmup)
	if err := timeShapes(ctx, w, rep, opt.Shapes, func(s Shape) ([]Timing, error) { return timePlans(s, tailOps) }); err != nil {
		return err
	}
	if err := timeLaunches(ctx, d, opt, w, rep, flush.plan, rng); err != nil {
		return err
	}
	if opt.Variants {
		return timeVariants(ctx, d, opt, w, rep, flush.plan, rng)
	}
	return nil
}

// launchOps are the operations timeLaunches breaks down, in order (the
// tail's backward reads what its forward leaves).
var launchOps = []string{"train_fwd_bwd", "srm_tail_fwd", "srm_tail_bwd"}

// timeLaunches times each kernel of SRM's and the SRM tail's training
// passes on opt's shapes into rep.Launches, and prints them: where a
// pass's time goes, between its kernels and the gaps before them.
func timeLaunches(ctx context.Context, d *Device, opt CheckOptions, w io.Writer, rep *Report, flush *Plan, rng *rand.Rand) error {
	fmt.Fprintf(w, "\n== each kernel's time: median us of %d runs, an event after every launch (the gap before a launch counts as its), L2 flushed before each run; [registers a thread, blocks an SM at the launch's size, local memory a thread] ==\n", opt.Reps)
	gap, err := timeLaunchGap(d, opt, flush)
	if err != nil {
		return fmt.Errorf("launch gap: %w", err)
	}
	rep.LaunchGapUS = gap
	fmt.Fprintf(w, "launch gap: a copy of 4 floats, timed the same way, takes %.1f us (each kernel below includes about as much)\n", gap)
	for _, s := range opt.Shapes {
		if err := ctx.Err(); err != nil {
			return err
		}
		ts, err := timeOps(d, s, launchOps, rng, func(op string, p *Plan) (Timing, error) { return timeKernels(d, s, op, p, opt, flush) })
		if err != nil {
			return fmt.Errorf("kernel times of %v: %w", s, err)
		}
		for _, t := range ts {
			parts := make([]string, len(t.Kernels))
			for j, k := range t.Kernels {
				parts[j] = fmt.Sprintf("%s %.1f", k, t.KernelUS[j])
				if t.KernelUse == nil {
					continue
				}
				u := t.KernelUse[j]
				parts[j] += fmt.Sprintf(" [%d reg, %d/SM", u.Registers, u.BlocksPerSM)
				if u.LocalBytes > 0 {
					parts[j] += fmt.Sprintf(", %d B local", u.LocalBytes)
				}
				parts[j] += "]"
			}
			fmt.Fprintf(w, "%-14s %-14s %8.1f = %s\n", s, t.Op, t.MedianUS, strings.Join(parts, " + "))
			if t.KernelUseError != "" {
				fmt.Fprintf(w, "%-14s %-14s (no registers: %s)\n", s, t.Op, t.KernelUseError)
			}
		}
		rep.Launches = append(rep.Launches, ts...)
	}
	return nil
}

// timeLaunchGap times six launches of a one-block copy of 4 floats as
// timeKernels times the passes' kernels, and returns their mean: what a
// launch costs there when its kernel does next to nothing, the share of
// the per-channel kernels' times that is not theirs.
func timeLaunchGap(d *Device, opt CheckOptions, flush *Plan) (gapUS float64, err error) {
	bufs, err := allocFloats(d, 4, 4)
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, freeAll(bufs...)) }()
	one, err := d.CopyPlan(bufs[1], bufs[0], 4)
	if err != nil {
		return 0, err
	}
	p := one
	for range 5 {
		if p, err = p.Then(one); err != nil {
			return 0, err
		}
	}
	t, err := timeKernels(d, Shape{}, "launch gap", p, opt, flush)
	if err != nil {
		return 0, err
	}
	return t.MedianUS / float64(len(t.KernelUS)), nil
}

// timeKernels times each launch of one operation's plan on shape s (an
// event after every launch), with flush run untimed before every run: the
// median of each, and their sum as the MedianUS.
func timeKernels(d *Device, s Shape, op string, p *Plan, opt CheckOptions, flush *Plan) (Timing, error) {
	runs, err := d.timeRuns(flush, p, opt.Warmup, opt.Reps, true)
	if err != nil {
		return Timing{}, fmt.Errorf("%s: %w", op, err)
	}
	// The registers are an aid to reading the times: a driver that will
	// not tell them costs the table its brackets, not the run.
	t := Timing{Shape: s.String(), Op: op, Kernels: p.Kernels()}
	if t.KernelUse, err = d.kernelUse(p); err != nil {
		t.KernelUse, t.KernelUseError = nil, err.Error()
	}
	for j := range t.Kernels {
		times := make([]time.Duration, len(runs))
		for i, r := range runs {
			times[i] = r[j]
		}
		med, _ := medianMin(times)
		t.KernelUS = append(t.KernelUS, us(med))
		t.MedianUS += us(med)
	}
	return t, nil
}

// l2Flush is a copy through twice the L2 cache, run untimed before each
// timed run: a run that reads its planes in the order the previous run
// left them in L2 (the second passes go in reverse) would otherwise start
// on cached data, which a layer of a network, reading what the layer
// before it wrote, does not. PyTorch's side (bench_torch.py) is flushed
// alike.
type l2Flush struct {
	plan *Plan
	bufs []*Buffer
}

func newL2Flush(d *Device) (*l2Flush, error) {
	l2 := d.Info().L2Bytes
	if l2 <= 0 {
		l2 = 64 << 20 // unknown: more than any current GPU's
	}
	n := 2 * l2 / 4 / 4 * 4
	bufs, err := allocFloats(d, n, n)
	if err != nil {
		return nil, err
	}
	plan, err := d.CopyPlan(bufs[1], bufs[0], n)
	if err != nil {
		return nil, errors.Join(err, freeAll(bufs...))
	}
	return &l2Flush{plan, bufs}, nil
}

func (f *l2Flush) free() error { return freeAll(f.bufs...) }

func tailKind(gated bool) string {
	if gated {
		return "SRM"
	}
	return "plain"
}

func accumulation(acc bool) string {
	if acc {
		return "accumulate"
	}
	return "overwrite"
}

// checkCase runs one check case, adds its results to rep and prints its
// worst quantity (and every failure) to w, after the shape and label.
func checkCase(ctx context.Context, w io.Writer, rep *Report, s Shape, label string, check func() ([]CheckResult, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	res, err := check()
	if err != nil {
		return fmt.Errorf("check %v %s: %w", s, strings.TrimSpace(label), err)
	}
	rep.Checks = append(rep.Checks, res...)
	worst := res[0]
	for _, r := range res {
		if !r.OK() {
			fmt.Fprintln(w, r)
		}
		if r.RelErr/r.Limit > worst.RelErr/worst.Limit || math.IsNaN(r.RelErr) {
			worst = r
		}
	}
	if label != "" {
		label += " "
	}
	fmt.Fprintf(w, "%-14s %s%2d quantities, worst %s %.2e (limit %.0e)\n", s, label, len(res), worst.Quantity, worst.RelErr, worst.Limit)
	return nil
}

// summary prints how many of the checks failed, or that all passed.
func summary(w io.Writer, checks []CheckResult) {
	failed := 0
	for _, c := range checks {
		if !c.OK() {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "%d CHECKS FAILED\n", failed)
	} else {
		fmt.Fprintf(w, "all %d checks passed\n", len(checks))
	}
}

// relErr is max|got - want| / max|want|: the error relative to the
// tensor's scale, so that values near zero do not blow it up.
func relErr(got []float32, want []float64) float64 {
	var num, den float64
	for i := range want {
		num = max(num, math.Abs(float64(got[i])-want[i]))
		den = max(den, math.Abs(want[i]))
	}
	if math.IsNaN(num) {
		return math.Inf(1)
	}
	if den == 0 {
		return num
	}
	return num / den
}

// upload copies float64 values to a new device buffer as float32.
func upload(d *Device, v []float64) (*Buffer, error) {
	b, err := d.AllocFloat32(len(v))
	if err != nil {
		return nil, err
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return b, b.CopyFrom(f)
}

// widen rounds v to float32 and back, so that the reference sees exactly
// the inputs the GPU does.
func widen(v []float64) []float64 {
	for i, x := range v {
		v[i] = float64(float32(x))
	}
	return v
}

func download(b *Buffer, n int) ([]float32, error) {
	out := make([]float32, n)
	return out, b.CopyTo(out)
}

// poison fills buffers with NaN, so that a value a kernel failed to write
// fails the comparison instead of passing on leftovers.
func poison(bufs ...*Buffer) error {
	var errs []error
	for _, b := range bufs {
		nan := make([]float32, b.Len())
		for i := range nan {
			nan[i] = float32(math.NaN())
		}
		errs = append(errs, b.CopyFrom(nan))
	}
	return errors.Join(errs...)
}

// run poisons the plan's outputs, runs it and waits for it, so that a
// kernel that faults is named in the error.
func run(d *Device, p *Plan, outputs ...*Buffer) error {
	if err := poison(outputs...); err != nil {
		return err
	}
	if err := errors.Join(d.Run(p), d.Synchronize()); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(p.Kernels(), ", "), err)
	}
	return nil
}

// randomSRM returns a reference layer with parameters away from their
// initial values, so that every term of the gradient is exercised, rounded
// to float32 as the device holds them.
func randomSRM(rng *rand.Rand, c int) *refSRM {
	r := &refSRM{c: c, eps: 1e-5, momentum: 0.1}
	for range c {
		r.cfc = append(r.cfc, rng.NormFloat64(), rng.NormFloat64())
		r.gamma = append(r.gamma, 0.5+rng.Float64())
		r.beta = append(r.beta, rng.Float64()-0.5)
		r.runningMean = append(r.runningMean, rng.NormFloat64())
		r.runningVar = append(r.runningVar, 0.5+rng.Float64())
	}
	for _, v := range [][]float64{r.cfc, r.gamma, r.beta, r.runningMean, r.runningVar} {
		widen(v)
	}
	return r
}

// randomInput draws planes with their own offsets and scales, like feature
// maps after a BatchNorm, so that means are not all near zero; float32
// values, as the device holds them.
func randomInput(rng *rand.Rand, s Shape) []float64 {
	x := make([]float64, s.Len())
	L := s.PlaneSize()
	for p := range s.Planes() {
		mu, sd := 2*rng.Float64()-1, 0.5+1.5*rng.Float64()
		for i := p * L; i < (p+1)*L; i++ {
			x[i] = mu + sd*rng.NormFloat64()
		}
	}
	return widen(x)
}

// randomNormal draws n standard normal float32 values.
func randomNormal(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return widen(v)
}

// checkRun holds one check case's device buffers and results; after its
// first error it does nothing more, and the case returns that error.
type checkRun struct {
	d    *Device
	s    Shape
	bufs []*Buffer
	res  []CheckResult
	err  error
}

// up uploads v to a new buffer that free returns.
func (r *checkRun) up(v []float64) *Buffer {
	if r.err != nil {
		return nil
	}
	b, err := upload(r.d, v)
	if b != nil {
		r.bufs = append(r.bufs, b)
	}
	r.err = err
	return b
}

// compare records the error of b's first len(want) values against want.
func (r *checkRun) compare(q, kernel string, b *Buffer, want []float64, limit float64) {
	if r.err != nil {
		return
	}
	var got []float32
	if got, r.err = download(b, len(want)); r.err == nil {
		r.res = append(r.res, CheckResult{Shape: r.s, Quantity: q, Kernel: kernel, RelErr: relErr(got, want), Limit: limit})
	}
}

// done frees the buffers up made and returns the results and the first
// error.
func (r *checkRun) done() ([]CheckResult, error) {
	return r.res, errors.Join(r.err, freeAll(r.bufs...))
}

// checkSRMCase runs eval forward, training forward and backward on random
// data of shape s, with the plane kernels' geometry from pick, and compares
// every output with the reference.
func checkSRMCase(d *Device, s Shape, pick picker, rng *rand.Rand) ([]CheckResult, error) {
	ref := randomSRM(rng, s.C)
	x, dout := randomInput(rng, s), randomNormal(rng, s.Len())

	r := &checkRun{d: d, s: s}
	l := &SRM{dev: d, C: s.C, Eps: 1e-5, Momentum: 0.1}
	l.CFC, l.Gamma, l.Beta, l.RunningMean, l.RunningVar = r.up(ref.cfc), r.up(ref.gamma), r.up(ref.beta), r.up(ref.runningMean), r.up(ref.runningVar)
	xb, doutb := r.up(x), r.up(dout)
	outb, dxb := r.up(dout), r.up(dout)
	if r.err != nil {
		return r.done()
	}
	ws, err := l.NewWorkspace(s)
	if r.err = err; err != nil {
		return r.done()
	}
	grads, err := l.NewGrads()
	if r.err = err; err != nil {
		return nil, errors.Join(err, ws.Free(), freeAll(r.bufs...))
	}
	r.bufs = append(r.bufs, ws.Mean, ws.Std, ws.Gate, ws.ZHat, ws.RStd, ws.dot, ws.k0, ws.k2, grads.CFC, grads.Gamma, grads.Beta)

	// Eval forward, with the running statistics as uploaded.
	evalRef := ref.forward(x, s, false)
	plan, err := l.forwardEval(xb, outb, nil, s, pick)
	if r.err = errors.Join(err, run(d, plan, outb)); r.err != nil {
		return r.done()
	}
	r.compare("eval out", plan.Kernels()[0], outb, evalRef.out, forwardLimit)

	// Training forward: batch statistics, running-statistics update.
	trainRef := ref.forward(x, s, true)
	if plan, r.err = l.forwardTrain(xb, outb, ws, pick); r.err == nil {
		r.err = run(d, plan, outb, ws.Mean, ws.Std, ws.Gate, ws.ZHat, ws.RStd)
	}
	if r.err != nil {
		return r.done()
	}
	k := plan.Kernels()
	r.compare("train mean", k[0], ws.Mean, trainRef.mean, forwardLimit)
	r.compare("train std", k[0], ws.Std, trainRef.std, forwardLimit)
	r.compare("train zhat", k[1], ws.ZHat, trainRef.zhat, forwardLimit)
	r.compare("train gate", k[1], ws.Gate, trainRef.gate, forwardLimit)
	r.compare("train rstd", k[1], ws.RStd, trainRef.rstd, forwardLimit)
	r.compare("running mean", k[1], l.RunningMean, trainRef.runningMean, forwardLimit)
	r.compare("running var", k[1], l.RunningVar, trainRef.runningVr, forwardLimit)
	r.compare("train out", k[2], outb, trainRef.out, forwardLimit)

	// Backward of that training forward.
	g := ref.backward(x, dout, s, trainRef)
	if plan, r.err = l.backward(xb, doutb, dxb, ws, grads, pick); r.err == nil {
		r.err = run(d, plan, dxb, grads.CFC, grads.Gamma, grads.Beta)
	}
	if r.err != nil {
		return r.done()
	}
	k = plan.Kernels()
	r.compare("dcfc", k[1], grads.CFC, g.dcfc, gradientLimit)
	r.compare("dgamma", k[1], grads.Gamma, g.dgamma, gradientLimit)
	r.compare("dbeta", k[1], grads.Beta, g.dbeta, gradientLimit)
	r.compare("dx", k[2], dxb, g.dx, gradientLimit)
	return r.done()
}

// checkTailCase runs a block tail's forward and backward passes on random
// data of shape s, with an SRM when gated, and compares every output with
// refTail. With acc every gradient is added to random values already in
// its buffer (and dx reads the gradient past the ReLU from dout and out
// again); without, it is written over NaNs. The gradients are held to the
// forward limit, not SRM's looser one: the tail's per-channel sums run in
// double on plane sums centred on the plane means, and come out within
// 1e-6 of float64. pick gives the plane kernels' geometry.
func checkTailCase(d *Device, s Shape, gated, acc bool, pick picker, rng *rand.Rand) ([]CheckResult, error) {
	c := s.C
	ref := &refTail{bn: refBatchNorm{eps: 1e-5, momentum: 0.1}}
	for range c {
		ref.bn.gamma = append(ref.bn.gamma, 0.5+rng.Float64())
		ref.bn.beta = append(ref.bn.beta, rng.Float64()-0.5)
		ref.bn.runningMean = append(ref.bn.runningMean, rng.NormFloat64())
		ref.bn.runningVar = append(ref.bn.runningVar, 0.5+rng.Float64())
	}
	for _, v := range [][]float64{ref.bn.gamma, ref.bn.beta, ref.bn.runningMean, ref.bn.runningVar} {
		widen(v)
	}
	name := "plain tail "
	if gated {
		ref.srm, name = randomSRM(rng, c), "SRM tail "
	}
	x, short, dout := randomInput(rng, s), randomNormal(rng, s.Len()), randomNormal(rng, s.Len())

	r := &checkRun{d: d, s: s}
	bn := BN{Gamma: r.up(ref.bn.gamma), Beta: r.up(ref.bn.beta), RunningMean: r.up(ref.bn.runningMean),
		RunningVar: r.up(ref.bn.runningVar), Eps: 1e-5, Momentum: 0.1}
	var l *SRM
	if gated {
		l = &SRM{dev: d, C: c, Eps: 1e-5, Momentum: 0.1, CFC: r.up(ref.srm.cfc), Gamma: r.up(ref.srm.gamma),
			Beta: r.up(ref.srm.beta), RunningMean: r.up(ref.srm.runningMean), RunningVar: r.up(ref.srm.runningVar)}
	}
	xb, shortb, doutb, outb := r.up(x), r.up(short), r.up(dout), r.up(dout)
	if r.err != nil {
		return r.done()
	}
	t, err := d.BlockTail(c, bn, l)
	if r.err = err; err != nil {
		return r.done()
	}
	ws, err := t.NewWorkspace(s)
	if r.err = err; err != nil {
		return r.done()
	}
	r.bufs = append(r.bufs, ws.Mean, ws.M2, ws.Gain, ws.Bias, ws.psum, ws.dot, ws.k0, ws.k2)

	f := ref.forward(x, short, s)
	plan, err := t.forward(xb, shortb, outb, ws, pick)
	written := []*Buffer{outb, ws.Mean, ws.M2, ws.Gain, ws.Bias}
	if gated {
		r.bufs, written = append(r.bufs, ws.Gate), append(written, ws.Gate)
	}
	if r.err = err; err == nil {
		r.err = run(d, plan, written...)
	}
	if r.err != nil {
		return r.done()
	}
	k := plan.Kernels()
	r.compare(name+"out", k[2], outb, f.out, forwardLimit)
	r.compare(name+"BN run mean", k[1], bn.RunningMean, f.bn.runningMean, forwardLimit)
	r.compare(name+"BN run var", k[1], bn.RunningVar, f.bn.runningVar, forwardLimit)
	if gated {
		r.compare(name+"gate", k[1], ws.Gate, f.srm.gate, forwardLimit)
		r.compare(name+"SRM run mean", k[1], l.RunningMean, f.srm.runningMean, forwardLimit)
		r.compare(name+"SRM run var", k[1], l.RunningVar, f.srm.runningVr, forwardLimit)
	}

	out32, err := download(outb, s.Len())
	if r.err = err; err != nil {
		return r.done()
	}
	passed := make([]bool, len(out32))
	for i, v := range out32 {
		passed[i] = v > 0
	}
	g := ref.backward(dout, passed, s, f)
	// The gradients' buffers, their starting values, and the reference's
	// gradients, which acc adds to those values.
	wants := [][]float64{g.dx, g.dshort, g.dgamma, g.dbeta}
	if gated {
		wants = append(wants, g.srm.dcfc, g.srm.dgamma, g.srm.dbeta)
	}
	bufs := make([]*Buffer, len(wants))
	for i, want := range wants {
		init := make([]float64, len(want))
		if acc {
			init = randomNormal(rng, len(want))
			for j := range want {
				want[j] += init[j]
			}
		}
		bufs[i] = r.up(init)
	}
	if r.err != nil {
		return r.done()
	}
	grads := &TailGrads{Gamma: bufs[2], Beta: bufs[3]}
	if gated {
		grads.SRM = &SRMGrads{CFC: bufs[4], Gamma: bufs[5], Beta: bufs[6]}
	}
	if plan, r.err = t.backward(xb, outb, doutb, bufs[0], bufs[1], ws, grads, acc, acc, acc, pick); r.err == nil {
		if acc {
			r.err = errors.Join(d.Run(plan), d.Synchronize())
		} else {
			r.err = run(d, plan, bufs...)
		}
	}
	if r.err != nil {
		return r.done()
	}
	k = plan.Kernels()
	for i, q := range []string{"dx", "dshort", "BN dgamma", "BN dbeta", "SRM dcfc", "SRM dgamma", "SRM dbeta"}[:len(wants)] {
		kernel := k[1]
		switch q {
		case "dx":
			kernel = k[2]
		case "dshort":
			kernel = k[0]
		}
		r.compare(name+q, kernel, bufs[i], wants[i], forwardLimit)
	}
	return r.done()
}

// timeCopy measures the copy kernel on the largest timed tensor, which is
// the bandwidth a streaming kernel can hope for.
func timeCopy(d *Device, opt CheckOptions, w io.Writer) (float64, error) {
	n := 0
	for _, s := range opt.Shapes {
		n = max(n, s.Len())
	}
	n = (n + 3) / 4 * 4
	src, err := d.AllocFloat32(n)
	if err != nil {
		return 0, err
	}
	defer src.Free()
	dst, err := d.AllocFloat32(n)
	if err != nil {
		return 0, err
	}
	defer dst.Free()
	if err := src.CopyFrom(make([]float32, n)); err != nil {
		return 0, err
	}
	p, err := d.CopyPlan(dst, src, n)
	if err != nil {
		return 0, err
	}
	times, err := d.Time(p, opt.Warmup, opt.Reps)
	if err != nil {
		return 0, err
	}
	med, _ := medianMin(times)
	gbs := 8 * float64(n) / med.Seconds() / 1e9
	fmt.Fprintf(w, "\ncopy kernel: %.1f MB read + written in %.1f us = %.0f GB/s", 8*float64(n)/1e6, us(med), gbs)
	if peak := d.Info().PeakBandwidth(); peak > 0 {
		fmt.Fprintf(w, " (%.2f of the %.0f GB/s the memory clock implies)", gbs/(peak/1e9), peak/1e9)
	}
	fmt.Fprintln(w)
	return gbs, nil
}

func us(t time.Duration) float64 { return float64(t) / float64(time.Microsecond) }

func medianMin(ts []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ts)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return m, s[0]
}

// timeShapes runs timing on each shape, adds the results to rep and
// prints them as a table to w.
func timeShapes(ctx context.Context, w io.Writer, rep *Report, shapes []Shape, timing func(Shape) ([]Timing, error)) error {
	fmt.Fprintf(w, "%-14s %-14s %10s %10s %8s %6s  %s\n", "shape", "op", "median us", "min us", "GB/s", "xcopy", "kernels")
	for _, s := range shapes {
		if err := ctx.Err(); err != nil {
			return err
		}
		ts, err := timing(s)
		if err != nil {
			return fmt.Errorf("timing %v: %w", s, err)
		}
		for _, t := range ts {
			fmt.Fprintf(w, "%-14s %-14s %10.1f %10.1f %8.0f %6.2f  %s\n", t.Shape, t.Op, t.MedianUS, t.MinUS, t.GBs, t.OfCopy, strings.Join(t.Kernels, ","))
		}
		rep.Timings = append(rep.Timings, ts...)
	}
	return nil
}

// timePlan times one operation's plan that moves maps maps of shape s,
// with flush, unless nil, run untimed before every run.
func timePlan(d *Device, s Shape, op string, p *Plan, maps int, opt CheckOptions, copyGBs float64, flush *Plan) (Timing, error) {
	times, err := d.timeAfter(flush, p, opt.Warmup, opt.Reps)
	if err != nil {
		return Timing{}, fmt.Errorf("%s: %w", op, err)
	}
	med, lo := medianMin(times)
	t := Timing{Shape: s.String(), Op: op, MedianUS: us(med), MinUS: us(lo), Bytes: int64(maps) * int64(4*s.Len()), Kernels: p.Kernels()}
	t.GBs = float64(t.Bytes) / med.Seconds() / 1e9
	if copyGBs > 0 {
		t.OfCopy = t.GBs / copyGBs
	}
	return t, nil
}

// fillRandom fills b with values uniform in [-scale, scale), through host,
// a slice of b's length: random inputs, never zeros, which can run faster
// than real data.
func fillRandom(b *Buffer, host []float32, scale float64, rng *rand.Rand) error {
	for i := range host {
		host[i] = float32(scale * (2*rng.Float64() - 1))
	}
	return b.CopyFrom(host)
}

// timedOps is what cuda-check's timings run on: an SRM, the block tail
// with it and the plain one, their workspaces and gradients, and random
// maps of one shape (never zeros, which can run faster than real data;
// parameters random too, so that the gates vary).
type timedOps struct {
	s                               Shape
	srm                             *SRM
	ws                              *SRMWorkspace
	grads                           *SRMGrads
	tails                           map[string]*timedTail // "srm_tail_", "plain_tail_"
	x, short, out, dout, dx, dshort *Buffer
	frees                           []func() error
}

type timedTail struct {
	t     *Tail
	ws    *TailWorkspace
	grads *TailGrads
}

// opMaps are the maps each timed operation must move: SRM's eval forward
// reads and writes once, training forward reads x twice, forward+backward
// adds x and dout twice each and dx; a tail's forward reads x twice and
// short and writes out, its backward (gradients written, not accumulated)
// moves 7 (see srm.cu).
var opMaps = map[string]int{"eval_fwd": 2, "train_fwd": 3, "train_fwd_bwd": 8,
	"srm_tail_fwd": 4, "srm_tail_bwd": 7, "plain_tail_fwd": 4, "plain_tail_bwd": 7}

func newTimedOps(d *Device, s Shape, rng *rand.Rand) (f *timedOps, err error) {
	f = &timedOps{s: s, tails: map[string]*timedTail{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, f.free())
		}
	}()
	n, c := s.Len(), s.C
	if f.srm, err = d.NewSRM(c); err != nil {
		return nil, err
	}
	f.frees = append(f.frees, f.srm.Free)
	bufs, err := allocFloats(d, n, n, n, n, n, n, c, c, c, c)
	if err != nil {
		return f, err
	}
	f.frees = append(f.frees, func() error { return freeAll(bufs...) })
	f.x, f.short, f.out, f.dout, f.dx, f.dshort = bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5]
	bn := BN{Gamma: bufs[6], Beta: bufs[7], RunningMean: bufs[8], RunningVar: bufs[9], Eps: 1e-5, Momentum: 0.1}
	host := make([]float32, n)
	ones := make([]float32, c)
	for i := range ones {
		ones[i] = 1
	}
	if err := errors.Join(fillRandom(f.x, host, 2, rng), fillRandom(f.short, host, 1, rng), fillRandom(f.dout, host, 1, rng),
		fillRandom(f.srm.CFC, host[:2*c], 1, rng), bn.Gamma.CopyFrom(ones), bn.RunningVar.CopyFrom(ones),
		fillRandom(bn.Beta, host[:c], 0.5, rng), fillRandom(bn.RunningMean, host[:c], 0.5, rng)); err != nil {
		return f, err
	}
	if f.ws, err = f.srm.NewWorkspace(s); err != nil {
		return f, err
	}
	f.frees = append(f.frees, f.ws.Free)
	if f.grads, err = f.srm.NewGrads(); err != nil {
		return f, err
	}
	f.frees = append(f.frees, f.grads.Free)
	for name, srm := range map[string]*SRM{"srm_tail_": f.srm, "plain_tail_": nil} {
		tt := &timedTail{}
		if tt.t, err = d.BlockTail(c, bn, srm); err != nil {
			return f, err
		}
		if tt.ws, err = tt.t.NewWorkspace(s); err != nil {
			return f, err
		}
		f.frees = append(f.frees, tt.ws.Free)
		if tt.grads, err = tt.t.NewGrads(); err != nil {
			return f, err
		}
		f.frees = append(f.frees, tt.grads.Free)
		f.tails[name] = tt
	}
	return f, nil
}

func (f *timedOps) free() error {
	var errs []error
	for _, free := range f.frees {
		errs = append(errs, free())
	}
	return errors.Join(errs...)
}

// plan plans op (a key of opMaps) with the plane kernels' geometry from
// pick. A backward pass reads what its forward pass left in out and the
// workspace: time the forward first.
func (f *timedOps) plan(op string, pick picker) (*Plan, error) {
	switch op {
	case "eval_fwd":
		return f.srm.forwardEval(f.x, f.out, nil, f.s, pick)
	case "train_fwd":
		return f.srm.forwardTrain(f.x, f.out, f.ws, pick)
	case "train_fwd_bwd":
		train, err := f.srm.forwardTrain(f.x, f.out, f.ws, pick)
		if err != nil {
			return nil, err
		}
		back, err := f.srm.backward(f.x, f.dout, f.dx, f.ws, f.grads, pick)
		if err != nil {
			return nil, err
		}
		return train.Then(back)
	}
	for name, tt := range f.tails {
		switch op {
		case name + "fwd":
			return tt.t.forward(f.x, f.short, f.out, tt.ws, pick)
		case name + "bwd":
			return tt.t.backward(f.x, f.out, f.dout, f.dx, f.dshort, tt.ws, tt.grads, false, false, false, pick)
		}
	}
	return nil, fmt.Errorf("cuda: no timed operation %q", op)
}

// timeOps times ops (keys of opMaps, each backward after its forward) on
// one shape with geometryFor's kernels, each with timing.
func timeOps(d *Device, s Shape, ops []string, rng *rand.Rand, timing func(op string, p *Plan) (Timing, error)) (ts []Timing, err error) {
	f, err := newTimedOps(d, s, rng)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, f.free()) }()
	for _, op := range ops {
		p, err := f.plan(op, geometryFor)
		if err != nil {
			return ts, err
		}
		t, err := timing(op, p)
		if err != nil {
			return ts, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// variantShape is the small shape on which checkVariants checks a timed
// shape's layouts: the same planes, 8 x 13 of them, which leaves a partial
// block for every group size.
func variantShape(s Shape) Shape { return Shape{8, 13, s.H, s.W} }

// checkVariants checks, for each plane size of the timed shapes, every
// layout timeVariants times, with the second passes in reverse order (the
// other checks run geometryFor's, and the order changes no bits), against
// the float64 reference: SRM, and the block tail with SRM accumulating and
// plain overwriting its gradients.
func checkVariants(ctx context.Context, d *Device, shapes []Shape, w io.Writer, rep *Report, rng *rand.Rand) error {
	fmt.Fprintf(w, "\n== plane-kernel variants against float64, reverse order (max |err| / max |ref|) ==\n")
	first := len(rep.Checks)
	seen := map[int]bool{}
	for _, ts := range shapes {
		s := variantShape(ts)
		if seen[s.PlaneSize()] {
			continue
		}
		seen[s.PlaneSize()] = true
		for _, g := range geometryVariants(s.PlaneSize(), s.Planes()) {
			g.reverse = true
			pick := func(int, int, bool) geometry { return g }
			label := fmt.Sprintf("%-6s rev", g.tag())
			if err := checkCase(ctx, w, rep, s, fmt.Sprintf("%s %-21s", label, "SRM"), func() ([]CheckResult, error) {
				return checkSRMCase(d, s, pick, rng)
			}); err != nil {
				return err
			}
			for _, gated := range []bool{true, false} {
				l := fmt.Sprintf("%s %-5s tail %-10s", label, tailKind(gated), accumulation(gated))
				if err := checkCase(ctx, w, rep, s, l, func() ([]CheckResult, error) {
					return checkTailCase(d, s, gated, gated, pick, rng)
				}); err != nil {
					return err
				}
			}
		}
	}
	summary(w, rep.Checks[first:])
	return nil
}

// srmOps, tailOps and variantOps are the operations the timing tables
// time, in their order.
var (
	srmOps  = []string{"eval_fwd", "train_fwd", "train_fwd_bwd"}
	tailOps = []string{"srm_tail_fwd", "srm_tail_bwd", "plain_tail_fwd", "plain_tail_bwd"}
)

// variantOps are the operations timeVariants times, in its table's order.
var variantOps = []string{"eval_fwd", "train_fwd_bwd", "srm_tail_fwd", "srm_tail_bwd"}

// timeVariants times each timed shape's operations under every layout of
// geometryVariants, in forward and reverse plane order, into rep.Variants,
// and prints a line per shape, layout and order, each run after flush
// (see l2Flush).
func timeVariants(ctx context.Context, d *Device, opt CheckOptions, w io.Writer, rep *Report, flush *Plan, rng *rand.Rand) error {
	fmt.Fprintf(w, "\n== plane-kernel variants: median us and xcopy, L2 flushed before each run; new is geometryFor's layout, old the "+
		"previous choice; rev runs the second passes in reverse plane order; * marks geometryFor's choice for the forward passes, ^ for the backward where it differs ==\n")
	fmt.Fprintf(w, "%-14s %-18s", "shape", "variant")
	for _, op := range variantOps {
		fmt.Fprintf(w, " %17s", op)
	}
	fmt.Fprintln(w)
	for _, s := range opt.Shapes {
		if err := ctx.Err(); err != nil {
			return err
		}
		ts, err := timeShapeVariants(d, s, opt, rep.CopyGBs, flush, rng, w)
		rep.Variants = append(rep.Variants, ts...)
		if err != nil {
			return fmt.Errorf("timing variants of %v: %w", s, err)
		}
	}
	return nil
}

// timeShapeVariants is timeVariants on one shape: eval forward (one pass,
// so forward order only), SRM's training forward and backward, and the
// SRM block tail's forward and backward passes, on random inputs.
func timeShapeVariants(d *Device, s Shape, opt CheckOptions, copyGBs float64, flush *Plan, rng *rand.Rand, w io.Writer) (ts []Timing, err error) {
	f, err := newTimedOps(d, s, rng)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, f.free()) }()
	L, P := s.PlaneSize(), s.Planes()
	fwd, bwd, prev := geometryFor(L, P, false), geometryFor(L, P, true), previousGeometry(L, P)
	for _, g := range geometryVariants(L, P) {
		role := "new"
		if g.tag() == prev.tag() {
			role = "old"
			if g.tag() == fwd.tag() || g.tag() == bwd.tag() {
				role = "new=old"
			}
		}
		for _, rev := range []bool{false, true} {
			g.reverse = rev
			pick := func(int, int, bool) geometry { return g }
			order := "fwd"
			if rev {
				order = "rev"
			}
			label := fmt.Sprintf("%s %s %s", role, g.tag(), order)
			mark := " "
			switch g {
			case fwd:
				mark = "*" // geometryFor's for the forward passes (and the backward where ^ is absent)
			case bwd:
				mark = "^"
			}
			fmt.Fprintf(w, "%-14s %-18s", s, label+mark)
			// The tail's forward runs before its backward, which reads
			// what it leaves in out and the workspace.
			for _, op := range variantOps {
				if op == "eval_fwd" && rev {
					fmt.Fprintf(w, " %17s", "-") // one pass: no second to reverse
					continue
				}
				p, err := f.plan(op, pick)
				if err != nil {
					return ts, fmt.Errorf("%s: %w", label, err)
				}
				t, err := timePlan(d, s, op, p, opMaps[op], opt, copyGBs, flush)
				if err != nil {
					return ts, fmt.Errorf("%s: %w", label, err)
				}
				t.Variant = label
				ts = append(ts, t)
				fmt.Fprintf(w, " %10.1f %6.2f", t.MedianUS, t.OfCopy)
			}
			fmt.Fprintln(w)
		}
	}
	fastestVariants(w, s, ts)
	return ts, nil
}

// fastestVariants prints, below a shape's variant rows, the variant with
// the smallest median for each operation.
func fastestVariants(w io.Writer, s Shape, ts []Timing) {
	fmt.Fprintf(w, "%-14s %-18s", s, "fastest")
	for _, op := range variantOps {
		var best *Timing
		for i := range ts {
			if t := &ts[i]; t.Op == op && (best == nil || t.MedianUS < best.MedianUS) {
				best = t
			}
		}
		if best == nil {
			fmt.Fprintf(w, " %17s", "-")
			continue
		}
		fmt.Fprintf(w, " %17s", best.Variant)
	}
	fmt.Fprintln(w)
}
