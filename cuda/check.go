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
	{16, 24, 1, 2}, {16, 24, 5, 5}, {16, 24, 7, 7}, {16, 24, 10, 10}, {16, 24, 14, 14},
	{16, 24, 28, 28}, {8, 12, 32, 40}, {8, 12, 56, 56}, {4, 6, 64, 100}, {8, 12, 33, 33}, {4, 6, 96, 96},
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
	return fmt.Sprintf("%-14s %-15s %-18s %9.2e  (limit %.0e) %s", r.Shape, r.Quantity, r.Kernel, r.RelErr, r.Limit, verdict)
}

// Timing is one timed operation.
type Timing struct {
	Shape    string   // as Shape.String writes it
	Op       string   // "eval_fwd", "train_fwd" or "train_fwd_bwd"
	MedianUS float64  // microseconds
	MinUS    float64  // microseconds
	Bytes    int64    // the bytes the kernels must move, counted as in srm.cu's header
	GBs      float64  // Bytes / median
	OfCopy   float64  // GBs over the copy kernel's
	Kernels  []string // the kernels of one run, in order
}

// Report is the outcome of Check.
type Report struct {
	Date       string // UTC, RFC 3339
	Device     Info
	Compiler   string  // Device.CompilerInfo after the run
	CopyGBs    float64 // copy kernel, bytes read + written per second
	PeakGBs    float64 // from the memory clock and bus width; 0 if unknown
	Checks     []CheckResult
	Timings    []Timing
	Reps       int  // timed runs per operation
	Warmup     int  // untimed runs before them
	CheckedBig bool // whether the benchmark shapes were checked too
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
	CheckLarge bool    // also check the timed shapes against the reference

	checkShapes []Shape // replaces checkShapes in tests, where kernels run emulated
}

// Check runs every SRM kernel on random inputs and compares the results
// with the float64 reference, then times the fused eval forward, training
// forward, and training forward+backward on the benchmark shapes against a
// copy kernel's bandwidth. Progress and tables go to w.
func Check(ctx context.Context, d *Device, opt CheckOptions, w io.Writer) (*Report, error) {
	if len(opt.Shapes) == 0 {
		opt.Shapes = BenchmarkShapes
	}
	opt.Reps = max(opt.Reps, 1)
	info := d.Info()
	rep := &Report{Date: time.Now().UTC().Format(time.RFC3339), Device: info, PeakGBs: info.PeakBandwidth() / 1e9,
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
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		res, err := checkSRMCase(d, s, rng)
		if err != nil {
			return rep, fmt.Errorf("check %v: %w", s, err)
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
		fmt.Fprintf(w, "%-14s %2d quantities, worst %s %.2e (limit %.0e)\n", s, len(res), worst.Quantity, worst.RelErr, worst.Limit)
	}
	rep.Compiler = d.CompilerInfo()
	fmt.Fprintf(w, "kernels: %s\n", rep.Compiler)
	if n := rep.Failed(); n > 0 {
		fmt.Fprintf(w, "%d CHECKS FAILED\n", n)
	} else {
		fmt.Fprintf(w, "all %d checks passed\n", len(rep.Checks))
	}

	if err := ctx.Err(); err != nil {
		return rep, err
	}
	var err error
	if rep.CopyGBs, err = timeCopy(d, opt, w); err != nil {
		return rep, err
	}
	fmt.Fprintf(w, "\n== timings: median of %d after %d warm-up runs (CUDA events) ==\n", opt.Reps, opt.Warmup)
	fmt.Fprintf(w, "%-14s %-14s %10s %10s %8s %6s  %s\n", "shape", "op", "median us", "min us", "GB/s", "xcopy", "kernels")
	for _, s := range opt.Shapes {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		ts, err := timeSRM(d, s, opt, rep.CopyGBs, rng)
		if err != nil {
			return rep, fmt.Errorf("timing %v: %w", s, err)
		}
		for _, t := range ts {
			fmt.Fprintf(w, "%-14s %-14s %10.1f %10.1f %8.0f %6.2f  %s\n", t.Shape, t.Op, t.MedianUS, t.MinUS, t.GBs, t.OfCopy, strings.Join(t.Kernels, ","))
		}
		rep.Timings = append(rep.Timings, ts...)
	}
	rep.Compiler = d.CompilerInfo()
	return rep, nil
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

// checkSRMCase runs eval forward, training forward and backward on random
// data of shape s and compares every output with the reference.
func checkSRMCase(d *Device, s Shape, rng *rand.Rand) (res []CheckResult, err error) {
	ref := &refSRM{c: s.C, eps: 1e-5, momentum: 0.1}
	for range s.C {
		ref.cfc = append(ref.cfc, rng.NormFloat64(), rng.NormFloat64())
		ref.gamma = append(ref.gamma, 0.5+rng.Float64())
		ref.beta = append(ref.beta, rng.Float64()-0.5)
		ref.runningMean = append(ref.runningMean, rng.NormFloat64())
		ref.runningVar = append(ref.runningVar, 0.5+rng.Float64())
	}
	for _, v := range [][]float64{ref.cfc, ref.gamma, ref.beta, ref.runningMean, ref.runningVar} {
		widen(v)
	}
	x := make([]float64, s.Len())
	dout := make([]float64, s.Len())
	L := s.PlaneSize()
	for p := range s.Planes() {
		mu, sd := 2*rng.Float64()-1, 0.5+1.5*rng.Float64()
		for i := p * L; i < (p+1)*L; i++ {
			x[i] = float64(float32(mu + sd*rng.NormFloat64()))
			dout[i] = float64(float32(rng.NormFloat64()))
		}
	}

	l := &SRM{dev: d, C: s.C, Eps: 1e-5, Momentum: 0.1}
	var bufs []*Buffer
	defer func() { err = errors.Join(err, freeAll(bufs...)) }()
	up := func(v []float64) *Buffer {
		if err != nil {
			return nil
		}
		var b *Buffer
		b, err = upload(d, v)
		if b != nil {
			bufs = append(bufs, b)
		}
		return b
	}
	l.CFC, l.Gamma, l.Beta, l.RunningMean, l.RunningVar = up(ref.cfc), up(ref.gamma), up(ref.beta), up(ref.runningMean), up(ref.runningVar)
	xb, doutb := up(x), up(dout)
	outb, dxb := up(dout), up(dout)
	if err != nil {
		return nil, err
	}
	ws, err := l.NewWorkspace(s)
	if err != nil {
		return nil, err
	}
	grads, err := l.NewGrads()
	if err != nil {
		return nil, errors.Join(err, ws.Free())
	}
	bufs = append(bufs, ws.Mean, ws.Std, ws.Gate, ws.ZHat, ws.RStd, ws.dot, ws.k0, ws.k2, grads.CFC, grads.Gamma, grads.Beta)

	compare := func(q, kernel string, b *Buffer, want []float64, limit float64) {
		if err != nil {
			return
		}
		var got []float32
		if got, err = download(b, len(want)); err == nil {
			res = append(res, CheckResult{Shape: s, Quantity: q, Kernel: kernel, RelErr: relErr(got, want), Limit: limit})
		}
	}

	// Eval forward, with the running statistics as uploaded.
	evalRef := ref.forward(x, s, false)
	plan, err := l.ForwardEval(xb, outb, nil, s)
	if err != nil {
		return nil, err
	}
	if err = run(d, plan, outb); err != nil {
		return nil, err
	}
	compare("eval out", plan.Kernels()[0], outb, evalRef.out, forwardLimit)

	// Training forward: batch statistics, running-statistics update.
	trainRef := ref.forward(x, s, true)
	if plan, err = l.ForwardTrain(xb, outb, ws); err != nil {
		return nil, err
	}
	if err = run(d, plan, outb, ws.Mean, ws.Std, ws.Gate, ws.ZHat, ws.RStd); err != nil {
		return nil, err
	}
	k := plan.Kernels()
	compare("train mean", k[0], ws.Mean, trainRef.mean, forwardLimit)
	compare("train std", k[0], ws.Std, trainRef.std, forwardLimit)
	compare("train zhat", k[1], ws.ZHat, trainRef.zhat, forwardLimit)
	compare("train gate", k[1], ws.Gate, trainRef.gate, forwardLimit)
	compare("train rstd", k[1], ws.RStd, trainRef.rstd, forwardLimit)
	compare("running mean", k[1], l.RunningMean, trainRef.runningMean, forwardLimit)
	compare("running var", k[1], l.RunningVar, trainRef.runningVr, forwardLimit)
	compare("train out", k[2], outb, trainRef.out, forwardLimit)

	// Backward of that training forward.
	g := ref.backward(x, dout, s, trainRef)
	if plan, err = l.Backward(xb, doutb, dxb, ws, grads); err != nil {
		return nil, err
	}
	if err = run(d, plan, dxb, grads.CFC, grads.Gamma, grads.Beta); err != nil {
		return nil, err
	}
	k = plan.Kernels()
	compare("dcfc", k[1], grads.CFC, g.dcfc, gradientLimit)
	compare("dgamma", k[1], grads.Gamma, g.dgamma, gradientLimit)
	compare("dbeta", k[1], grads.Beta, g.dbeta, gradientLimit)
	compare("dx", k[2], dxb, g.dx, gradientLimit)
	return res, err
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

// timeSRM times the three SRM operations on one shape. Inputs are random
// (never zeros: they can run faster than real data); parameters are random
// too so that the gates vary.
func timeSRM(d *Device, s Shape, opt CheckOptions, copyGBs float64, rng *rand.Rand) (ts []Timing, err error) {
	l, err := d.NewSRM(s.C)
	if err != nil {
		return nil, err
	}
	bufs, err := allocFloats(d, s.Len(), s.Len(), s.Len(), s.Len())
	if err != nil {
		return nil, errors.Join(err, l.Free())
	}
	x, out, dout, dx := bufs[0], bufs[1], bufs[2], bufs[3]
	ws, err := l.NewWorkspace(s)
	if err != nil {
		return nil, errors.Join(err, l.Free(), freeAll(bufs...))
	}
	grads, err := l.NewGrads()
	if err != nil {
		return nil, errors.Join(err, l.Free(), freeAll(bufs...), ws.Free())
	}
	defer func() { err = errors.Join(err, l.Free(), freeAll(bufs...), ws.Free(), grads.Free()) }()

	host := make([]float32, s.Len())
	fill := func(b *Buffer, scale float64) error {
		for i := range host {
			host[i] = float32(scale * (2*rng.Float64() - 1))
		}
		return b.CopyFrom(host)
	}
	cfc := make([]float32, 2*s.C)
	for i := range cfc {
		cfc[i] = float32(rng.NormFloat64())
	}
	if err := errors.Join(fill(x, 2), fill(dout, 1), l.CFC.CopyFrom(cfc)); err != nil {
		return nil, err
	}

	eval, err := l.ForwardEval(x, out, nil, s)
	if err != nil {
		return nil, err
	}
	train, err := l.ForwardTrain(x, out, ws)
	if err != nil {
		return nil, err
	}
	back, err := l.Backward(x, dout, dx, ws, grads)
	if err != nil {
		return nil, err
	}
	both, err := train.Then(back)
	if err != nil {
		return nil, err
	}
	S := int64(4 * s.Len())
	for _, op := range []struct {
		name   string
		plan   *Plan
		passes int64
	}{
		{"eval_fwd", eval, 2},
		{"train_fwd", train, 3},
		{"train_fwd_bwd", both, 8},
	} {
		times, err := d.Time(op.plan, opt.Warmup, opt.Reps)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op.name, err)
		}
		med, lo := medianMin(times)
		t := Timing{Shape: s.String(), Op: op.name, MedianUS: us(med), MinUS: us(lo), Bytes: op.passes * S, Kernels: op.plan.Kernels()}
		t.GBs = float64(t.Bytes) / med.Seconds() / 1e9
		if copyGBs > 0 {
			t.OfCopy = t.GBs / copyGBs
		}
		ts = append(ts, t)
	}
	return ts, nil
}
