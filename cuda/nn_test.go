package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The nn.cu kernels run on the CPU emulator through the host API and the
// fake driver (4 SMs), against float64 references written here from the
// CPU engine's definitions (op/, optim/): plain loops, independent of the
// kernels' reduction order.

const nnTol = 1e-5

// nnEnv is the device the checks run on: a fake one (drv), with the
// emulator when a test runs kernels, or a GPU (drv nil).
type nnEnv struct {
	t   *testing.T
	d   *Device
	drv *fakeDriver
	rng *rand.Rand
}

func newNNEnv(t *testing.T, emulate bool) *nnEnv {
	t.Helper()
	var emu string
	if emulate {
		emu = emulator(t)
	}
	d, drv, _ := openFake(t)
	drv.emulator = emu
	return &nnEnv{t: t, d: d, drv: drv, rng: rand.New(rand.NewPCG(7, 11))}
}

// ok fails the test on err, with the emulator's own error when it has one.
func (e *nnEnv) ok(err error) {
	e.t.Helper()
	if e.drv != nil && e.drv.emuErr != nil {
		e.t.Fatal(e.drv.emuErr)
	}
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *nnEnv) up(v []float32) *Buffer {
	e.t.Helper()
	b, err := e.d.AllocFloat32(max(len(v), 1))
	e.ok(err)
	e.ok(b.CopyFrom(v))
	return b
}

func (e *nnEnv) upInt(v []int32) *Buffer {
	e.t.Helper()
	b, err := e.d.AllocFloat32(max(len(v), 1))
	e.ok(err)
	e.ok(b.CopyFromInt32(v))
	return b
}

func (e *nnEnv) down(b *Buffer, n int) []float32 {
	e.t.Helper()
	out := make([]float32, n)
	e.ok(b.CopyTo(out))
	return out
}

func (e *nnEnv) rand(n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*e.rng.Float64())
	}
	return v
}

// free returns the buffers, so that later launches copy less memory
// through the emulator.
func (e *nnEnv) free(bufs ...*Buffer) {
	e.t.Helper()
	e.ok(freeAll(bufs...))
}

// close fails unless got is within nnTol of want relative to want's scale.
func (e *nnEnv) close(what string, got []float32, want []float64) {
	e.t.Helper()
	if r := relErr(got, want); !(r <= nnTol) {
		i := worstAt(got, want)
		e.t.Errorf("%s: relative error %.3g > %.0e (worst at %d: %g, want %g)", what, r, nnTol, i, got[i], want[i])
	}
}

func worstAt(got []float32, want []float64) int {
	w, at := -1.0, 0
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > w || math.IsNaN(d) {
			w, at = d, i
			if math.IsNaN(d) {
				break
			}
		}
	}
	return at
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// nnShort returns short under -short, else all.
func nnShort[T any](all []T, short ...T) []T {
	if testing.Short() {
		return short
	}
	return all
}

// plus is base + v, or v when accumulate is off.
func plus(base []float32, v []float64, accumulate bool) []float64 {
	out := make([]float64, len(v))
	for i := range v {
		out[i] = v[i]
		if accumulate {
			out[i] += float64(base[i])
		}
	}
	return out
}

func refRelu(v float64) float64 { return max(v, 0) }

func refSigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

func oneIfPos(v float32) float64 {
	if v > 0 {
		return 1
	}
	return 0
}

// Sizes around the float4 and warp boundaries, one value, and enough for
// the grid-stride loops to wrap (64 blocks of 256 float4s on 4 SMs).
var nnSizes = []int{1, 3, 4, 33, 1029, 70001}

func TestNNElementwiseEmulated(t *testing.T) {
	e := newNNEnv(t, true)
	for _, n := range nnShort(nnSizes, 3, 1029) {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e.t = t
			e.checkElementwise(n)
		})
	}
}

// checkElementwise runs every elementwise operation on n random values.
func (e *nnEnv) checkElementwise(n int) {
	d := e.d
	xs, as, dys, base := e.rand(n, -2, 2), e.rand(n, -2, 2), e.rand(n, -1, 1), e.rand(n, -1, 1)
	x, a, dy := e.up(xs), e.up(as), e.up(dys)
	y, _ := d.AllocFloat32(n)
	defer e.free(x, a, dy, y)
	want := func(f func(i int) float64) []float64 {
		w := make([]float64, n)
		for i := range w {
			w[i] = f(i)
		}
		return w
	}

	e.ok(d.Fill(y, n, 2.5))
	e.close("Fill", e.down(y, n), want(func(int) float64 { return 2.5 }))
	e.ok(d.Copy(y, x, n))
	e.close("Copy", e.down(y, n), f64(xs))
	e.ok(d.AddInto(y, a, n))
	e.close("AddInto", e.down(y, n), want(func(i int) float64 { return float64(xs[i]) + float64(as[i]) }))
	for _, relu := range []bool{false, true} {
		e.ok(d.Add(x, a, y, n, relu))
		e.close(fmt.Sprintf("Add relu=%v", relu), e.down(y, n), want(func(i int) float64 {
			s := float64(xs[i] + as[i])
			if relu {
				return refRelu(s)
			}
			return s
		}))
	}
	e.ok(d.ReLU(x, y, n))
	ys := e.down(y, n)
	e.close("ReLU", ys, want(func(i int) float64 { return refRelu(float64(xs[i])) }))
	e.ok(d.Copy(y, x, n))
	e.ok(d.ReLU(y, y, n))
	e.close("ReLU in place", e.down(y, n), f64(ys))
	for _, acc := range []bool{false, true} {
		e.ok(y.CopyFrom(base))
		e.ok(d.ReLUBackward(x, dy, y, n, acc))
		e.close(fmt.Sprintf("ReLUBackward acc=%v", acc), e.down(y, n),
			plus(base, want(func(i int) float64 { return float64(dys[i]) * oneIfPos(xs[i]) }), acc))
	}
	e.ok(d.Sigmoid(x, y, n))
	e.close("Sigmoid", e.down(y, n), want(func(i int) float64 { return refSigmoid(float64(xs[i])) }))
	for _, acc := range []bool{false, true} {
		e.ok(y.CopyFrom(base))
		e.ok(d.SigmoidBackward(a, dy, y, n, acc))
		e.close(fmt.Sprintf("SigmoidBackward acc=%v", acc), e.down(y, n),
			plus(base, want(func(i int) float64 { return float64(dys[i]) * float64(as[i]) * (1 - float64(as[i])) }), acc))
	}
}

// TestNNSpecialValues: ReLU passes NaN and maps −0 to 0 as Go's max does;
// sigmoid saturates without overflow.
func TestNNSpecialValues(t *testing.T) {
	e := newNNEnv(t, true)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	in := []float32{nan, float32(math.Copysign(0, -1)), -inf, inf, -100, 100}
	x := e.up(in)
	y, _ := e.d.AllocFloat32(len(in))
	e.ok(e.d.ReLU(x, y, len(in)))
	got := e.down(y, len(in))
	if !math.IsNaN(float64(got[0])) || math.Signbit(float64(got[1])) || got[2] != 0 || got[3] != inf || got[4] != 0 || got[5] != 100 {
		t.Errorf("ReLU of %v = %v", in, got)
	}
	e.ok(e.d.Sigmoid(x, y, len(in)))
	got = e.down(y, len(in))
	if !math.IsNaN(float64(got[0])) || got[1] != 0.5 || got[2] != 0 || got[3] != 1 || got[4] < 0 || got[4] > 1e-40 || got[5] != 1 {
		t.Errorf("Sigmoid of %v = %v", in, got)
	}
}

// planeCases are (planes, plane) pairs: one value, planes not a multiple
// of 4 or 32, float4 planes, and planes large enough for the block and
// split reductions (2×3000: 2 blocks per plane on 4 SMs).
var planeCases = [][2]int{{1, 1}, {3, 5}, {6, 49}, {4, 64}, {37, 9}, {2, 4100}, {2, 3000}, {3, 9001}}

func TestNNScalePlanesEmulated(t *testing.T) {
	e := newNNEnv(t, true)
	for _, c := range nnShort(planeCases, [2]int{6, 49}, [2]int{3, 9001}) {
		P, L := c[0], c[1]
		t.Run(fmt.Sprintf("%dx%d", P, L), func(t *testing.T) {
			e.t = t
			e.checkPlanes(P, L)
		})
	}
}

// checkPlanes runs ScalePlanes and its gradient on P planes of L values.
func (e *nnEnv) checkPlanes(P, L int) {
	d, n := e.d, P*L
	xs, gs, dys, dx0, dg0 := e.rand(n, -2, 2), e.rand(P, 0, 1), e.rand(n, -1, 1), e.rand(n, -1, 1), e.rand(P, -1, 1)
	x, g, dy := e.up(xs), e.up(gs), e.up(dys)
	y, _ := d.AllocFloat32(n)
	dg, _ := d.AllocFloat32(P)
	defer e.free(x, g, dy, y, dg)
	wantY, wantDX, wantDG := make([]float64, n), make([]float64, n), make([]float64, P)
	for p := range P {
		for i := range L {
			j := p*L + i
			wantY[j] = float64(xs[j]) * float64(gs[p])
			wantDX[j] = float64(dys[j]) * float64(gs[p])
			wantDG[p] += float64(dys[j]) * float64(xs[j])
		}
	}
	e.ok(d.ScalePlanes(x, g, y, P, L))
	e.close("ScalePlanes", e.down(y, n), wantY)
	for _, acc := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		e.ok(y.CopyFrom(dx0))
		e.ok(dg.CopyFrom(dg0))
		e.ok(d.ScalePlanesBackward(x, g, dy, y, dg, P, L, acc[0], acc[1]))
		e.close(fmt.Sprintf("ScalePlanesBackward dx acc=%v", acc), e.down(y, n), plus(dx0, wantDX, acc[0]))
		e.close(fmt.Sprintf("ScalePlanesBackward dg acc=%v", acc), e.down(dg, P), plus(dg0, wantDG, acc[1]))
	}
	// dx nil, dg only; then dg nil, dx written over dy.
	e.ok(dg.CopyFrom(dg0))
	e.ok(d.ScalePlanesBackward(x, g, dy, nil, dg, P, L, false, false))
	e.close("ScalePlanesBackward dg only", e.down(dg, P), wantDG)
	e.ok(d.ScalePlanesBackward(nil, g, dy, dy, nil, P, L, false, false))
	e.close("ScalePlanesBackward dx over dy", e.down(dy, n), wantDX)
}

// biasCases are (outer, c, inner): a linear layer's (inner 1), small
// convolutions, float4 planes, and channels split over several blocks.
var biasCases = [][3]int{{1, 1, 1}, {5, 7, 1}, {3, 4, 9}, {2, 3, 64}, {40, 3, 1}, {3, 2, 1500}, {4, 2, 2801}}

func TestNNBiasEmulated(t *testing.T) {
	e := newNNEnv(t, true)
	for _, c := range nnShort(biasCases, [3]int{5, 7, 1}, [3]int{4, 2, 2801}) {
		O, C, I := c[0], c[1], c[2]
		t.Run(fmt.Sprintf("%dx%dx%d", O, C, I), func(t *testing.T) {
			e.t = t
			e.checkBias(O, C, I)
		})
	}
}

// checkBias runs AddBias and SumBias on an O×C×I layout.
func (e *nnEnv) checkBias(O, C, I int) {
	d, n := e.d, O*C*I
	ys, bs, db0 := e.rand(n, -2, 2), e.rand(C, -1, 1), e.rand(C, -1, 1)
	y, b := e.up(ys), e.up(bs)
	db, _ := d.AllocFloat32(C)
	defer e.free(y, b, db)
	wantY, wantDB := make([]float64, n), make([]float64, C)
	for o := range O {
		for ch := range C {
			for i := range I {
				j := (o*C+ch)*I + i
				wantY[j] = float64(ys[j]) + float64(bs[ch])
				wantDB[ch] += float64(ys[j])
			}
		}
	}
	for _, acc := range []bool{false, true} {
		e.ok(db.CopyFrom(db0))
		e.ok(d.SumBias(y, db, O, C, I, acc))
		e.close(fmt.Sprintf("SumBias acc=%v", acc), e.down(db, C), plus(db0, wantDB, acc))
	}
	e.ok(d.AddBias(y, b, O, C, I))
	e.close("AddBias", e.down(y, n), wantY)
}

// refBN is BatchNorm in float64 from the definitions in op/batchnorm.go.
type refBN struct {
	s                      BNShape
	x, gamma, beta, rm, rv []float64
	mean, rstd             []float64 // batch statistics
	y                      []float64
	newRM, newRV           []float64
	momentum, eps          float64
	relu                   bool
	yFloat                 []float32 // y as the GPU stores it, for the mask
	dx, dgamma, dbeta      []float64
	evalY                  []float64
}

func (r *refBN) idx(n, c, i int) int { return (n*r.s.C+c)*r.s.HW + i }

func (r *refBN) forward() {
	s := r.s
	m := float64(s.N * s.HW)
	r.mean, r.rstd = make([]float64, s.C), make([]float64, s.C)
	r.newRM, r.newRV = make([]float64, s.C), make([]float64, s.C)
	r.y, r.evalY = make([]float64, s.Len()), make([]float64, s.Len())
	for c := range s.C {
		var sum, sq float64
		for n := range s.N {
			for i := range s.HW {
				sum += r.x[r.idx(n, c, i)]
			}
		}
		mu := sum / m
		for n := range s.N {
			for i := range s.HW {
				d := r.x[r.idx(n, c, i)] - mu
				sq += d * d
			}
		}
		r.mean[c], r.rstd[c] = mu, 1/math.Sqrt(sq/m+r.eps)
		r.newRM[c] = (1-r.momentum)*r.rm[c] + r.momentum*mu
		r.newRV[c] = (1-r.momentum)*r.rv[c] + r.momentum*sq/(m-1)
		evalRstd := 1 / math.Sqrt(r.rv[c]+r.eps)
		for n := range s.N {
			for i := range s.HW {
				j := r.idx(n, c, i)
				r.y[j] = (r.x[j]-mu)*r.rstd[c]*r.gamma[c] + r.beta[c]
				r.evalY[j] = (r.x[j]-r.rm[c])*evalRstd*r.gamma[c] + r.beta[c]
				if r.relu {
					r.y[j], r.evalY[j] = refRelu(r.y[j]), refRelu(r.evalY[j])
				}
			}
		}
	}
}

// backward uses the float32 y the kernels mask with.
func (r *refBN) backward(dy []float64) {
	s := r.s
	m := float64(s.N * s.HW)
	r.dx, r.dgamma, r.dbeta = make([]float64, s.Len()), make([]float64, s.C), make([]float64, s.C)
	g := make([]float64, s.Len())
	for j := range g {
		g[j] = dy[j]
		if r.relu {
			g[j] *= oneIfPos(r.yFloat[j])
		}
	}
	for c := range s.C {
		var sg, sgx float64
		for n := range s.N {
			for i := range s.HW {
				j := r.idx(n, c, i)
				sg += g[j]
				sgx += g[j] * (r.x[j] - r.mean[c]) * r.rstd[c]
			}
		}
		r.dbeta[c], r.dgamma[c] = sg, sgx
		for n := range s.N {
			for i := range s.HW {
				j := r.idx(n, c, i)
				xh := (r.x[j] - r.mean[c]) * r.rstd[c]
				r.dx[j] = r.gamma[c] * r.rstd[c] * (g[j] - sg/m - xh*sgx/m)
			}
		}
	}
}

// bnShapes: BatchNorm1d (HW 1), odd planes, float4 planes, warp-summed
// channels, and channels split over 2 to 5 blocks (scalar and float4).
var bnShapes = []BNShape{{3, 3, 1}, {37, 2, 1}, {3, 5, 7}, {4, 3, 16}, {2, 1, 1}, {1, 2, 5000}, {3, 2, 2801}, {9, 2, 1024}}

func TestNNBatchNormEmulated(t *testing.T) {
	e := newNNEnv(t, true)
	for _, s := range nnShort(bnShapes, BNShape{3, 5, 7}, BNShape{3, 2, 2801}) {
		for _, relu := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dx%dx%d relu=%v", s.N, s.C, s.HW, relu), func(t *testing.T) {
				e.t = t
				e.checkBN(s, relu, 3)
			})
		}
	}
	// The modules' BatchNorm over (N, C) maps: few values, a mean far
	// larger than their spread, where x − mean must not lose its bits.
	t.Run("4x5x1 mean 300", func(t *testing.T) {
		e.t = t
		e.checkBN(BNShape{4, 5, 1}, false, 300)
	})
}

// checkBN runs BatchNorm's three calls on random data of shape s.
func (e *nnEnv) checkBN(s BNShape, relu bool, offset float64) {
	d := e.d
	n, C := s.Len(), s.C
	// An offset against a spread of 1: the shifted sums must keep the
	// variance, and the backward pass x − mean.
	xs, gs, bs := e.rand(n, offset-1, offset+1), e.rand(C, 0.5, 1.5), e.rand(C, -0.5, 0.5)
	rms, rvs, dys := e.rand(C, -1, 1), e.rand(C, 0.5, 2), e.rand(n, -1, 1)
	dx0, dg0, db0 := e.rand(n, -1, 1), e.rand(C, -1, 1), e.rand(C, -1, 1)
	r := &refBN{s: s, x: f64(xs), gamma: f64(gs), beta: f64(bs), rm: f64(rms), rv: f64(rvs), momentum: 0.1, eps: 1e-5, relu: relu}
	r.forward()
	x, gamma, beta, rm, rv, dy := e.up(xs), e.up(gs), e.up(bs), e.up(rms), e.up(rvs), e.up(dys)
	bufs, err := allocFloats(d, n, 2*C, C, n, C, C)
	e.ok(err)
	y, sm, sr, dx, dgamma, dbeta := bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5]
	defer e.free(append(bufs, x, gamma, beta, rm, rv, dy)...)

	e.ok(d.BatchNormEval(s, x, gamma, beta, rm, rv, y, 1e-5, relu))
	e.close("eval y", e.down(y, n), r.evalY)
	e.ok(d.BatchNormTrain(s, x, gamma, beta, rm, rv, y, sm, sr, 0.1, 1e-5, relu))
	ys := e.down(y, n)
	e.close("train y", ys, r.y)
	pairs := e.down(sm, 2*C)
	means := make([]float32, C)
	for c := range means {
		means[c] = pairs[2*c] + pairs[2*c+1]
	}
	e.close("saveMean", means, r.mean)
	e.close("saveRstd", e.down(sr, C), r.rstd)
	e.close("runMean", e.down(rm, C), r.newRM)
	e.close("runVar", e.down(rv, C), r.newRV)

	if s.N*s.HW == 2 {
		// Two values normalise to ±1 whatever they are: dx
		// is pure rounding (eps/(var+eps) of the gradient).
		return
	}
	r.yFloat = ys
	r.backward(f64(dys))
	for _, acc := range [][2]bool{{false, false}, {true, true}, {true, false}} {
		e.ok(errsJoin(dx.CopyFrom(dx0), dgamma.CopyFrom(dg0), dbeta.CopyFrom(db0)))
		e.ok(d.BatchNormBackward(s, x, y, dy, gamma, sm, sr, dx, dgamma, dbeta, relu, acc[0], acc[1]))
		e.close(fmt.Sprintf("dx acc=%v", acc), e.down(dx, n), plus(dx0, r.dx, acc[0]))
		e.close(fmt.Sprintf("dgamma acc=%v", acc), e.down(dgamma, C), plus(dg0, r.dgamma, acc[1]))
		e.close(fmt.Sprintf("dbeta acc=%v", acc), e.down(dbeta, C), plus(db0, r.dbeta, acc[1]))
	}
	// Parameters only; without relu y is not needed.
	yArg := y
	if !relu {
		yArg = nil
	}
	e.ok(d.BatchNormBackward(s, x, yArg, dy, gamma, sm, sr, nil, dgamma, dbeta, relu, false, false))
	e.close("dgamma, no dx", e.down(dgamma, C), r.dgamma)
	e.close("dbeta, no dx", e.down(dbeta, C), r.dbeta)
}

func errsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// refCE is the mean cross-entropy and its softmax, as op/loss.go.
func refCE(logits []float32, labels []int32, n, k int) (loss float64, probs []float64) {
	probs = make([]float64, n*k)
	for i := range n {
		row := f64(logits[i*k : (i+1)*k])
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(v - mx)
		}
		lse := mx + math.Log(s)
		loss += lse - row[labels[i]]
		for j, v := range row {
			probs[i*k+j] = math.Exp(v - lse)
		}
	}
	return loss / float64(n), probs
}

func TestNNCrossEntropyEmulated(t *testing.T) {
	e := newNNEnv(t, true)
	d := e.d
	for _, c := range [][2]int{{1, 1}, {1, 10}, {5, 3}, {9, 37}, {17, 100}} {
		n, k := c[0], c[1]
		t.Run(fmt.Sprintf("%dx%d", n, k), func(t *testing.T) {
			e.t = t
			e.checkCE(n, k)
		})
	}
	t.Run("NaN", func(t *testing.T) {
		e.t = t
		xs := []float32{1, 2, 3, float32(math.NaN()), 0, 1}
		logits, lab := e.up(xs), e.upInt([]int32{0, 2})
		loss, probs := e.up([]float32{0}), e.up(make([]float32, 6))
		e.ok(d.CrossEntropy(logits, lab, loss, probs, 2, 3))
		if got := e.down(loss, 1)[0]; !math.IsNaN(float64(got)) {
			t.Errorf("loss %v with a NaN logit", got)
		}
	})
}

// checkCE runs CrossEntropy and its gradient on n rows of k logits.
func (e *nnEnv) checkCE(n, k int) {
	d := e.d
	xs := e.rand(n*k, -4, 4)
	xs[0] += 30 // a large logit: the row maximum must be subtracted
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(e.rng.IntN(k))
	}
	wantLoss, wantP := refCE(xs, labels, n, k)
	logits, lab, dloss, base := e.up(xs), e.upInt(labels), e.up([]float32{0.7}), e.rand(n*k, -1, 1)
	bufs, err := allocFloats(d, 1, n*k, n*k)
	e.ok(err)
	loss, probs, dl := bufs[0], bufs[1], bufs[2]
	defer e.free(append(bufs, logits, lab, dloss)...)
	e.ok(d.CrossEntropy(logits, lab, loss, probs, n, k))
	e.close("loss", e.down(loss, 1), []float64{wantLoss})
	ps := e.down(probs, n*k)
	e.close("probs", ps, wantP)
	grad := make([]float64, n*k)
	for i := range n {
		for j := range k {
			v := float64(ps[i*k+j])
			if j == int(labels[i]) {
				v--
			}
			grad[i*k+j] = v * 0.7 / float64(n)
		}
	}
	for _, acc := range []bool{false, true} {
		e.ok(dl.CopyFrom(base))
		e.ok(d.CrossEntropyBackward(probs, lab, dloss, dl, n, k, acc))
		e.close(fmt.Sprintf("dlogits acc=%v", acc), e.down(dl, n*k), plus(base, grad, acc))
	}
}

// refSGD is optim/sgd.go's step in float64.
func refSGD(p, g, buf []float32, lr, wd, mom float64, nesterov, first bool) (np, nb []float64) {
	np, nb = make([]float64, len(p)), make([]float64, len(p))
	for i := range p {
		d := float64(g[i]) + wd*float64(p[i])
		if mom != 0 {
			if first {
				nb[i] = d
			} else {
				nb[i] = mom*float64(buf[i]) + d
			}
			if nesterov {
				d += mom * nb[i]
			} else {
				d = nb[i]
			}
		}
		np[i] = float64(p[i]) - lr*d
	}
	return np, nb
}

// sgdCase is one combination of SGD's settings.
type sgdCase struct {
	wd, mom         float32
	nesterov, first bool
}

// sgdCases: no momentum with and without weight decay, then momentum with
// every combination of weight decay, Nesterov and a fresh buffer.
func sgdCases() []sgdCase {
	cases := []sgdCase{{0, 0, false, false}, {0.1, 0, false, false}}
	for _, wd := range []float32{0, 5e-4} {
		for _, nesterov := range []bool{false, true} {
			for _, first := range []bool{false, true} {
				cases = append(cases, sgdCase{wd, 0.9, nesterov, first})
			}
		}
	}
	return cases
}

func TestNNSGDEmulated(t *testing.T) {
	e := newNNEnv(t, true)
	for _, n := range []int{1, 5, 1030} {
		for _, c := range sgdCases() {
			t.Run(fmt.Sprintf("%d %+v", n, c), func(t *testing.T) {
				e.t = t
				e.checkSGD(n, c)
			})
		}
	}
}

// checkSGD runs one SGD step on n random parameters.
func (e *nnEnv) checkSGD(n int, c sgdCase) {
	d := e.d
	ps, gs, bs := e.rand(n, -1, 1), e.rand(n, -1, 1), e.rand(n, -1, 1)
	if c.first {
		for i := range bs {
			bs[i] = float32(math.NaN()) // a fresh buffer must not be read
		}
	}
	wantP, wantB := refSGD(ps, gs, bs, 0.1, float64(c.wd), float64(c.mom), c.nesterov, c.first)
	p, g := e.up(ps), e.up(gs)
	var buf *Buffer
	if c.mom != 0 {
		buf = e.up(bs)
	}
	defer e.free(p, g, buf)
	e.ok(d.SGDStep(p, g, buf, n, 0.1, c.wd, c.mom, c.nesterov, c.first))
	e.close("p", e.down(p, n), wantP)
	if buf != nil {
		e.close("buf", e.down(buf, n), wantB)
	}
}

func TestNNFirstNonFiniteEmulated(t *testing.T) {
	e := newNNEnv(t, true)
	d := e.d
	sizes := []int{1, 7, 33, 1030}
	bufs := make([]*Buffer, len(sizes))
	clean := make([][]float32, len(sizes))
	for i, n := range sizes {
		clean[i] = e.rand(n, -1e30, 1e30)
		bufs[i] = e.up(clean[i])
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		name  string
		bad   map[[2]int]float32 // (buffer, position) -> value
		lens  []int
		first int
	}{
		{"clean", nil, sizes, -1},
		{"NaN in the one value", map[[2]int]float32{{0, 0}: nan}, sizes, 0},
		{"+Inf last of 7 (the scalar tail)", map[[2]int]float32{{1, 6}: inf}, sizes, 1},
		{"-Inf first of 33", map[[2]int]float32{{2, 0}: -inf}, sizes, 2},
		{"NaN mid 1030", map[[2]int]float32{{3, 517}: nan}, sizes, 3},
		{"NaN last of 1030", map[[2]int]float32{{3, 1029}: nan}, sizes, 3},
		{"two bad buffers", map[[2]int]float32{{3, 1}: inf, {1, 3}: nan}, sizes, 1},
		{"bad value past the length", map[[2]int]float32{{2, 32}: nan}, []int{1, 7, 32, 1030}, -1},
		{"empty length", map[[2]int]float32{{0, 0}: nan}, []int{0, 7, 33, 1030}, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			for i := range sizes {
				v := append([]float32(nil), clean[i]...)
				for at, x := range c.bad {
					if at[0] == i {
						v[at[1]] = x
					}
				}
				e.ok(bufs[i].CopyFrom(v))
			}
			launches := len(e.drv.launches)
			copies := e.drv.count("cuMemcpyDtoH")
			got, err := d.FirstNonFinite(bufs, c.lens)
			e.ok(err)
			if got != c.first {
				t.Errorf("first non-finite buffer %d, want %d", got, c.first)
			}
			nonEmpty := 0
			for _, l := range c.lens {
				if l > 0 {
					nonEmpty++
				}
			}
			if l, cp := len(e.drv.launches)-launches, e.drv.count("cuMemcpyDtoH")-copies; l != 1+nonEmpty || cp != 1 {
				t.Errorf("%d launches and %d copies to the host, want %d and 1", l, cp, 1+nonEmpty)
			}
		})
	}
	if got, err := d.FirstNonFinite(nil, nil); got != -1 || err != nil {
		t.Errorf("no buffers: %d, %v", got, err)
	}
}

func TestNNReductionFor(t *testing.T) {
	d := &Device{info: Info{SMs: 132}}
	for _, c := range []struct {
		s    BNShape
		want reduction
	}{
		{BNShape{64, 64, 112 * 112}, reduction{splits: 17, grid: 64 * 17}}, // ResNet stem: 17 blocks per channel
		{BNShape{64, 2048, 49}, reduction{splits: 1, grid: 2048}},          // 3136 floats per channel
		{BNShape{256, 1000, 1}, reduction{warp: true, splits: 1, grid: 125}},
		{BNShape{1, 64 * 256, 56 * 56}, reduction{warp: true, splits: 1, grid: 2048}}, // gate gradient: 784 float4s per plane
		{BNShape{1, 2, 1 << 20}, reduction{splits: 128, grid: 256}},                   // few huge planes: chunks of 2048 float4s
	} {
		if got := d.reductionFor(c.s); got != c.want {
			t.Errorf("%+v: %+v, want %+v", c.s, got, c.want)
		}
	}
}

// TestNNPlans checks which kernels each operation queues, in one plan,
// without running them.
func TestNNPlans(t *testing.T) {
	e := newNNEnv(t, false)
	d := e.d
	s := BNShape{4, 3, 16}
	b := func(n int) *Buffer {
		buf, err := d.AllocFloat32(n)
		e.ok(err)
		return buf
	}
	x, y, c3, c6 := b(s.Len()), b(s.Len()), b(3), b(6)
	before := d.MemStats().InUse
	for _, c := range []struct {
		run  func() error
		want string
	}{
		{func() error { return d.BatchNormTrain(s, x, c3, c3, c3, c3, y, c6, c3, 0.1, 1e-5, true) }, "nn_bn_stats nn_bn_stats_final nn_bn_apply"},
		{func() error { return d.BatchNormEval(s, x, c3, c3, c3, c3, y, 1e-5, false) }, "nn_bn_eval_coef nn_bn_apply"},
		{func() error { return d.BatchNormBackward(s, x, y, y, c3, c6, c3, x, c3, c3, true, false, false) }, "nn_bn_bwd_sums nn_bn_bwd_final nn_bn_bwd_dx"},
		{func() error { return d.BatchNormBackward(s, x, nil, y, c3, c6, c3, nil, c3, c3, false, false, false) }, "nn_bn_bwd_sums nn_bn_bwd_final"},
		{func() error { return d.ScalePlanesBackward(x, c3, y, x, c3, 3, 16, false, true) }, "nn_chan_dot nn_chan_sum_final nn_scale_planes_bwd"},
		{func() error { return d.SumBias(x, c3, 4, 3, 16, false) }, "nn_chan_sum nn_chan_sum_final"},
		{func() error { return d.SumBias(x, c3, 0, 3, 16, false) }, "nn_fill"},
		{func() error { return d.SumBias(x, c3, 0, 3, 16, true) }, ""},
		{func() error { return d.ReLU(x, y, 0) }, ""},
		{func() error { return d.CrossEntropy(x, c3, c3, y, 3, 5) }, "nn_ce_forward nn_ce_mean"},
		{func() error { return d.SGDStep(x, y, nil, 64, 0.1, 0, 0, false, false) }, "nn_sgd"},
	} {
		n := len(e.drv.launches)
		e.ok(c.run())
		var names []string
		for _, l := range e.drv.launches[n:] {
			names = append(names, l.name)
		}
		if got := strings.Join(names, " "); got != c.want {
			t.Errorf("launches %q, want %q", got, c.want)
		}
	}
	if after := d.MemStats().InUse; after != before {
		t.Errorf("scratch not freed: %d bytes in use, %d before", after, before)
	}
}

// TestNNValidation: wrong sizes and arguments are errors that name the
// argument, and nothing is launched.
func TestNNValidation(t *testing.T) {
	e := newNNEnv(t, false)
	d := e.d
	b := func(n int) *Buffer {
		buf, err := d.AllocFloat32(n)
		e.ok(err)
		return buf
	}
	big, small, c3, c2, c6 := b(64), b(10), b(3), b(2), b(6)
	other, _, _ := openFake(t)
	foreign, err := other.AllocFloat32(64)
	e.ok(err)
	s := BNShape{4, 3, 5}
	for _, c := range []struct {
		err  error
		want string
	}{
		{d.Fill(small, 11, 0), "dst holds 10 floats, needs 11"},
		{d.Copy(big, small, 20), "src holds 10"},
		{d.Copy(small, big, 20), "dst holds 10"},
		{d.ReLU(big, nil, 5), "y is nil"},
		{d.ReLU(foreign, big, 5), "x belongs to another device"},
		{d.Add(big, big, small, 20, false), "y holds 10"},
		{d.AddInto(big, big, -1), "n = -1"},
		{d.ReLUBackward(big, small, big, 20, false), "dy holds"},
		{d.SigmoidBackward(small, big, big, 20, true), "y holds"},
		{d.ScalePlanes(big, c2, big, 3, 4), "g holds 2 floats, needs 3"},
		{d.ScalePlanesBackward(big, c3, big, big, c2, 3, 4, false, false), "dg holds 2"},
		{d.ScalePlanesBackward(small, c3, big, nil, c3, 3, 4, false, false), "x holds 10"},
		{d.ScalePlanes(big, c3, big, -3, 4), "planes = -3"},
		{d.AddBias(big, c2, 2, 3, 4), "b holds 2"},
		{d.SumBias(small, c3, 2, 3, 4, false), "dy holds 10"},
		{d.SumBias(big, c3, 1<<20, 1<<20, 4, false), "too many"},
		{d.BatchNormTrain(s, big, c3, c3, c3, c3, big, c6, c2, 0.1, 1e-5, false), "saveRstd holds 2"},
		{d.BatchNormTrain(BNShape{1, 3, 1}, big, c3, c3, c3, c3, big, c3, c3, 0.1, 1e-5, false), "more than one value per channel"},
		{d.BatchNormTrain(BNShape{0, 3, 4}, big, c3, c3, c3, c3, big, c3, c3, 0.1, 1e-5, false), "empty dimension"},
		{d.BatchNormEval(s, big, c3, c3, c2, c3, big, 1e-5, false), "runMean holds 2"},
		{d.BatchNormBackward(s, big, nil, big, c3, c6, c3, big, c3, c3, true, false, false), "y is nil"},
		{d.BatchNormBackward(s, big, big, big, c3, c6, c3, small, c3, c3, true, false, false), "dx holds 10"},
		{d.BatchNormBackward(s, big, big, big, c3, c6, c3, big, c3, c2, true, false, false), "dbeta holds 2"},
		{d.CrossEntropy(big, c2, c3, big, 3, 5), "labels holds 2"},
		{d.CrossEntropy(big, c3, c3, small, 3, 5), "probs holds 10"},
		{d.CrossEntropy(big, c3, c3, big, 0, 5), "0 rows"},
		{d.CrossEntropyBackward(big, c3, nil, big, 3, 5, false), "dloss is nil"},
		{d.SGDStep(big, big, nil, 5, 0.1, 0, 0.9, false, false), "buf is nil"},
		{d.SGDStep(big, big, big, 5, 0.1, 0, 0, false, false), "buf given with momentum 0"},
		{d.SGDStep(big, big, nil, 5, 0.1, 0, 0, true, false), "Nesterov"},
		{d.SGDStep(big, small, big, 20, 0.1, 0, 0.9, false, false), "g holds 10"},
		{second(d.FirstNonFinite([]*Buffer{big, small}, []int{5, 11})), "bufs[1] holds 10"},
		{second(d.FirstNonFinite([]*Buffer{big}, []int{5, 1})), "1 buffers, 2 lengths"},
		{second(d.FirstNonFinite([]*Buffer{big}, []int{-1})), "lens[0] = -1"},
		{small.CopyFromInt32(make([]int32, 11)), "11 int32s into a buffer of 10"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("error %v, want one saying %q", c.err, c.want)
		}
	}
	if len(e.drv.launches) != 0 {
		t.Errorf("%d launches after invalid calls", len(e.drv.launches))
	}
}
