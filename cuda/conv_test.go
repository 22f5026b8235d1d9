package cuda

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"
)

func TestConvGeom(t *testing.T) {
	g := ConvGeom{N: 2, C: 4, H: 9, W: 8, K: 6, R: 3, S: 3, StrideH: 2, StrideW: 1, PadH: 1, PadW: 0, Groups: 2}
	if g.OutH() != 5 || g.OutW() != 6 || g.Validate() != nil {
		t.Errorf("%v: out %dx%d, %v", g, g.OutH(), g.OutW(), g.Validate())
	}
	if s := g.String(); s != "conv 2x4x9x8 * 6x2x3x3 stride 2x1 pad 1x0 groups 2" {
		t.Errorf("String %q", s)
	}
	for _, c := range []struct {
		change func(*ConvGeom)
		want   string
	}{
		{func(g *ConvGeom) { g.N = 0 }, "N = 0 out of range"},
		{func(g *ConvGeom) { g.StrideW = 0 }, "StrideW = 0 out of range"},
		{func(g *ConvGeom) { g.PadH = -1 }, "PadH = -1 out of range"},
		{func(g *ConvGeom) { g.Groups = 3 }, "3 groups do not divide 4 input and 6 output channels"},
		{func(g *ConvGeom) { g.K = 5 }, "2 groups do not divide"},
		{func(g *ConvGeom) { g.R = 12 }, "the 12x3 filter does not fit the padded 9x8 input"},
		{func(g *ConvGeom) { g.S = 9 }, "does not fit"},
		{func(g *ConvGeom) { g.N, g.C, g.H, g.W = 1<<20, 2, 1<<6, 1<<5 }, "the input has 2³¹ values or more"},
		{func(g *ConvGeom) { g.H, g.W, g.R, g.S, g.PadH, g.PadW, g.StrideH = 1<<14, 12000, 1, 1, 0, 0, 1 }, "the output has 2³¹ values or more"},
	} {
		h := g
		c.change(&h)
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", h, err, c.want)
		}
	}
	if (ConvGeom{H: 3, R: 3, StrideH: 0}).OutH() != 0 || (ConvGeom{H: 2, R: 5, PadH: 1, StrideH: 2}).OutH() != 0 {
		t.Error("OutH of a bad geometry is not 0")
	}
}

func TestConvAlgoPerfLayout(t *testing.T) {
	var p convAlgoPerf
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"algo", unsafe.Offsetof(p.Algo), 0}, {"status", unsafe.Offsetof(p.Status), 4}, {"time", unsafe.Offsetof(p.Time), 8},
		{"memory", unsafe.Offsetof(p.Memory), 16}, {"determinism", unsafe.Offsetof(p.Determinism), 24},
		{"mathType", unsafe.Offsetof(p.MathType), 28}, {"sizeof", unsafe.Sizeof(p), 48},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, cuDNN has it at %d", f.name, f.got, f.want)
		}
	}
}

// refConv is a float64 CPU convolution: the forward output for x and w,
// and the gradients for dy.
func refConv(g ConvGeom, x, w, dy []float32) (y, dx, dw []float64) {
	OH, OW := g.OutH(), g.OutW()
	Cg, Kg := g.C/g.Groups, g.K/g.Groups
	y = make([]float64, g.outLen())
	dx = make([]float64, g.inLen())
	dw = make([]float64, g.filterLen())
	for n := range g.N {
		for k := range g.K {
			for oh := range OH {
				for ow := range OW {
					yi := ((n*g.K+k)*OH+oh)*OW + ow
					for cg := range Cg {
						c := k/Kg*Cg + cg
						for r := range g.R {
							for s := range g.S {
								h, wd := oh*g.StrideH-g.PadH+r, ow*g.StrideW-g.PadW+s
								if h < 0 || h >= g.H || wd < 0 || wd >= g.W {
									continue
								}
								xi := ((n*g.C+c)*g.H+h)*g.W + wd
								wi := ((k*Cg+cg)*g.R+r)*g.S + s
								y[yi] += float64(x[xi]) * float64(w[wi])
								dx[xi] += float64(w[wi]) * float64(dy[yi])
								dw[wi] += float64(x[xi]) * float64(dy[yi])
							}
						}
					}
				}
			}
		}
	}
	return y, dx, dw
}

// convRelErr is max |got - (base + want)| / max |base + want|, base nil for 0.
func convRelErr(got []float32, base []float32, want []float64) float64 {
	var worst, scale float64
	for i, w := range want {
		if base != nil {
			w += float64(base[i])
		}
		d := math.Abs(float64(got[i]) - w)
		if math.IsNaN(d) {
			return math.NaN()
		}
		worst, scale = max(worst, d), max(scale, math.Abs(w))
	}
	return worst / scale
}

func nanFilled(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return v
}

// TestConvIm2colEmulated runs the im2col + cuBLAS path end to end: the
// host code, conv.cu's kernels in the CPU emulator and SGEMM in the fake
// cuBLAS, against the float64 reference, in all three directions, with and
// without accumulation. Outputs written without accumulation start as NaN,
// so that reading them would show.
func TestConvIm2colEmulated(t *testing.T) {
	emu := emulator(t)
	geoms := []ConvGeom{
		{N: 2, C: 3, H: 7, W: 6, K: 4, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, Groups: 1},
		{N: 2, C: 4, H: 9, W: 8, K: 6, R: 3, S: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 1},
		{N: 2, C: 4, H: 6, W: 7, K: 6, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, Groups: 2},
		{N: 2, C: 4, H: 7, W: 7, K: 4, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, Groups: 4},   // depthwise
		{N: 2, C: 3, H: 8, W: 7, K: 6, R: 3, S: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, Groups: 3},   // depthwise, multiplier 2
		{N: 2, C: 6, H: 5, W: 5, K: 4, R: 1, S: 1, StrideH: 1, StrideW: 1, PadH: 0, PadW: 0, Groups: 1},   // 1x1: no column matrix
		{N: 2, C: 4, H: 5, W: 3, K: 6, R: 1, S: 1, StrideH: 1, StrideW: 1, PadH: 0, PadW: 0, Groups: 2},   // 1x1, groups
		{N: 2, C: 6, H: 7, W: 7, K: 4, R: 1, S: 1, StrideH: 2, StrideW: 2, PadH: 0, PadW: 0, Groups: 1},   // 1x1 downsampling
		{N: 2, C: 3, H: 15, W: 13, K: 4, R: 7, S: 7, StrideH: 2, StrideW: 2, PadH: 3, PadW: 3, Groups: 1}, // ResNet stem
		{N: 2, C: 2, H: 6, W: 5, K: 3, R: 3, S: 1, StrideH: 2, StrideW: 1, PadH: 2, PadW: 0, Groups: 1},   // unequal sides, pad > stride
		{N: 1, C: 1, H: 1, W: 1, K: 1, R: 1, S: 1, StrideH: 1, StrideW: 1, PadH: 0, PadW: 0, Groups: 1},   // one value
		{N: 1, C: 1, H: 2, W: 2, K: 2, R: 3, S: 3, StrideH: 3, StrideW: 3, PadH: 1, PadW: 1, Groups: 1},   // 1x1 output
	}
	if testing.Short() {
		geoms = []ConvGeom{geoms[1], geoms[3], geoms[5]}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, g := range geoms {
		t.Run(g.String(), func(t *testing.T) {
			d, drv, _ := openFake(t)
			drv.emulator = emu
			useFakeLibs(d, newFakeBLAS(drv), nil)
			if be := d.ConvBackend(); !strings.HasPrefix(be, "im2col + cuBLAS 13.1.0 (fake-cublas); cuDNN unavailable: no cuDNN here") {
				t.Fatalf("backend %q", be)
			}
			X, W, DY := gaussFloats(rng, g.inLen()), gaussFloats(rng, g.filterLen()), gaussFloats(rng, g.outLen())
			Y, DX, DW := refConv(g, X, W, DY)
			x, w, dy := devFloats(t, d, X), devFloats(t, d, W), devFloats(t, d, DY)
			y := devFloats(t, d, nanFilled(g.outLen()))
			// run runs one call and checks that the call gave back the
			// column matrix it took.
			run := func(what string, call func() error) {
				t.Helper()
				inUse := d.MemStats().InUse
				err := call()
				if drv.emuErr != nil {
					err = drv.emuErr
				}
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if now := d.MemStats().InUse; now != inUse {
					t.Errorf("%s: %d bytes in use after, %d before", what, now, inUse)
				}
			}
			run("forward", func() error { return d.ConvForward(g, x, w, y) })
			if e := convRelErr(hostFloats(t, y, g.outLen()), nil, Y); !(e <= 1e-5) {
				t.Errorf("forward: relative error %.3g", e)
			}
			for _, acc := range []bool{false, true} {
				dx0, dw0 := nanFilled(g.inLen()), nanFilled(g.filterLen())
				var baseX, baseW []float32
				if acc {
					dx0, dw0 = gaussFloats(rng, g.inLen()), gaussFloats(rng, g.filterLen())
					baseX, baseW = dx0, dw0
				}
				dx, dw := devFloats(t, d, dx0), devFloats(t, d, dw0)
				run("backward data", func() error { return d.ConvBackwardData(g, w, dy, dx, acc) })
				run("backward filter", func() error { return d.ConvBackwardFilter(g, x, dy, dw, acc) })
				if e := convRelErr(hostFloats(t, dx, g.inLen()), baseX, DX); !(e <= 1e-5) {
					t.Errorf("backward data, accumulate %v: relative error %.3g", acc, e)
				}
				if e := convRelErr(hostFloats(t, dw, g.filterLen()), baseW, DW); !(e <= 1e-5) {
					t.Errorf("backward filter, accumulate %v: relative error %.3g", acc, e)
				}
			}
		})
	}
}

// fakeDNN stands in for cuDNN: it keeps descriptors as Go values, answers
// the algorithm searches with canned results, and records each
// convolution with the math type its descriptor had at the time. It
// computes nothing; the im2col test covers the arithmetic.
type fakeDNN struct {
	drv       *fakeDriver
	next      uintptr
	calls     []string
	fail      map[string]cudnnStatus
	tensors   map[uintptr][6]int32 // format, type, n, c, h, w
	filters   map[uintptr][6]int32 // type, format, k, c, h, w
	convs     map[uintptr]*fakeConvDesc
	found     [3][]convAlgoPerf
	ranked    [3][]convAlgoPerf
	workspace map[int32]uint64 // by algorithm
	outDelta  int32            // added to the output height, to fake a disagreement
	runs      []fakeConvRun
	stream    uintptr
}

type fakeConvDesc struct {
	params [8]int32 // pads, strides, dilations, mode, compute type
	groups int32
	math   int32
}

type fakeConvRun struct {
	dir        convDir
	algo, math int32
	ptrs       [3]uint64
	ws         uint64
	wsBytes    uint64
	alpha      float32
	beta       float32
}

func newFakeDNN(drv *fakeDriver) *fakeDNN {
	return &fakeDNN{drv: drv, next: 0xd000, fail: map[string]cudnnStatus{}, tensors: map[uintptr][6]int32{},
		filters: map[uintptr][6]int32{}, convs: map[uintptr]*fakeConvDesc{}, workspace: map[int32]uint64{}, stream: 99}
}

func (f *fakeDNN) call(name string) cudnnStatus {
	f.calls = append(f.calls, name)
	return f.fail[name]
}

func (f *fakeDNN) count(name string) int {
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (f *fakeDNN) handle() uintptr { f.next++; return f.next }

func (f *fakeDNN) Version() uint64 { return 91900 }
func (f *fakeDNN) ErrorString(s cudnnStatus) string {
	return map[cudnnStatus]string{2000: "CUDNN_STATUS_BAD_PARAM", 3000: "CUDNN_STATUS_NOT_SUPPORTED",
		4000: "CUDNN_STATUS_INTERNAL_ERROR", 1001: "CUDNN_STATUS_NOT_INITIALIZED"}[s]
}
func (f *fakeDNN) Create() (uintptr, cudnnStatus) { return 0xdd, f.call("cudnnCreate") }
func (f *fakeDNN) SetStream(h, stream uintptr) cudnnStatus {
	f.stream = stream
	return f.call("cudnnSetStream")
}
func (f *fakeDNN) CreateTensorDescriptor() (uintptr, cudnnStatus) {
	return f.handle(), f.call("cudnnCreateTensorDescriptor")
}
func (f *fakeDNN) SetTensor4dDescriptor(d uintptr, format, dataType, n, c, h, w int32) cudnnStatus {
	f.tensors[d] = [6]int32{format, dataType, n, c, h, w}
	return f.call("cudnnSetTensor4dDescriptor")
}
func (f *fakeDNN) CreateFilterDescriptor() (uintptr, cudnnStatus) {
	return f.handle(), f.call("cudnnCreateFilterDescriptor")
}
func (f *fakeDNN) SetFilter4dDescriptor(d uintptr, dataType, format, k, c, h, w int32) cudnnStatus {
	f.filters[d] = [6]int32{dataType, format, k, c, h, w}
	return f.call("cudnnSetFilter4dDescriptor")
}
func (f *fakeDNN) CreateConvolutionDescriptor() (uintptr, cudnnStatus) {
	h := f.handle()
	f.convs[h] = &fakeConvDesc{math: -1}
	return h, f.call("cudnnCreateConvolutionDescriptor")
}
func (f *fakeDNN) SetConvolution2dDescriptor(d uintptr, padH, padW, strideH, strideW, dilH, dilW, mode, compute int32) cudnnStatus {
	f.convs[d].params = [8]int32{padH, padW, strideH, strideW, dilH, dilW, mode, compute}
	return f.call("cudnnSetConvolution2dDescriptor")
}
func (f *fakeDNN) SetConvolutionGroupCount(d uintptr, groups int32) cudnnStatus {
	f.convs[d].groups = groups
	return f.call("cudnnSetConvolutionGroupCount")
}
func (f *fakeDNN) SetConvolutionMathType(d uintptr, math int32) cudnnStatus {
	f.convs[d].math = math
	return f.call("cudnnSetConvolutionMathType")
}

// GetConvolution2dForwardOutputDim computes the output shape from the
// descriptors, so that it only agrees when they say what was meant.
func (f *fakeDNN) GetConvolution2dForwardOutputDim(conv, x, w uintptr) (int32, int32, int32, int32, cudnnStatus) {
	c, xt, wt := f.convs[conv], f.tensors[x], f.filters[w]
	p := c.params
	return xt[2], wt[2], (xt[4]+2*p[0]-wt[4])/p[2] + 1 + f.outDelta, (xt[5]+2*p[1]-wt[5])/p[3] + 1,
		f.call("cudnnGetConvolution2dForwardOutputDim")
}

func (f *fakeDNN) FindAlgorithm(dir convDir, h uintptr, ds convDescs, n int32) ([]convAlgoPerf, cudnnStatus) {
	return f.found[dir], f.call(cudnnConvFuncs[dir].find)
}
func (f *fakeDNN) GetAlgorithm(dir convDir, h uintptr, ds convDescs, n int32) ([]convAlgoPerf, cudnnStatus) {
	return f.ranked[dir], f.call(cudnnConvFuncs[dir].heuristic)
}
func (f *fakeDNN) WorkspaceSize(dir convDir, h uintptr, ds convDescs, algo int32) (uint64, cudnnStatus) {
	return f.workspace[algo], f.call(cudnnConvFuncs[dir].workspace)
}

// Convolve checks that the workspace is device memory of the size given.
func (f *fakeDNN) Convolve(dir convDir, h uintptr, alpha float32, ds convDescs, ptrs [3]uint64, algo int32, ws, wsBytes uint64, beta float32) cudnnStatus {
	if s := f.call(cudnnConvFuncs[dir].run); s != 0 {
		return s
	}
	if _, _, ok := f.drv.find(ws, wsBytes); wsBytes > 0 && !ok {
		return 2000
	}
	f.runs = append(f.runs, fakeConvRun{dir: dir, algo: algo, math: f.convs[ds.conv].math, ptrs: ptrs, ws: ws, wsBytes: wsBytes, alpha: alpha, beta: beta})
	return 0
}

// TestCUDNNHostLogic checks the cuDNN path's bookkeeping against a fake
// cuDNN: descriptors made once per geometry and math mode and describing
// the geometry, algorithms chosen from the search results, workspaces
// allocated and returned, beta, and error messages.
func TestCUDNNHostLogic(t *testing.T) {
	d, drv, _ := openFake(t)
	fd := newFakeDNN(drv)
	useFakeLibs(d, newFakeBLAS(drv), fd)
	fd.found[convFwd] = []convAlgoPerf{
		{Algo: 1, Status: 3000, Time: 0.1, MathType: cudnnFMAMath},             // failed: skipped
		{Algo: 2, Time: 0.2, Memory: 64, MathType: cudnnTensorOpMath},          // TF32 only
		{Algo: 3, Time: 0.5, Memory: 3000, MathType: cudnnFMAMath},             // fastest strict one
		{Algo: 0, Time: 0.9, MathType: cudnnFMAMath, Determinism: 1},           // slower, deterministic
		{Algo: 7, Time: 0.3, MathType: cudnnTensorOpMathAllowConversion},       // TF32 only
		{Algo: 5, Status: 4000, Time: 0.01, Memory: 1, MathType: cudnnFMAMath}, // failed
	}
	fd.workspace[3] = 5000
	fd.workspace[2] = 64
	fd.fail[cudnnConvFuncs[convBwdData].find] = 4000
	// Strict FP32 passes over FFT_TILING (3) for backward data.
	fd.ranked[convBwdData] = []convAlgoPerf{{Algo: 0, Status: 3000, Time: -1}, {Algo: 3, Time: -1}, {Algo: 1, Time: -1}}
	fd.found[convBwdFilter] = []convAlgoPerf{{Algo: 1, Time: 2}, {Algo: 3, Time: 1, Memory: 100}}

	g := ConvGeom{N: 2, C: 4, H: 9, W: 8, K: 6, R: 3, S: 3, StrideH: 2, StrideW: 1, PadH: 1, PadW: 0, Groups: 2}
	x, _ := d.AllocFloat32(g.inLen())
	w, _ := d.AllocFloat32(g.filterLen())
	y, _ := d.AllocFloat32(g.outLen())
	before := d.MemStats().InUse
	for range 3 {
		if err := d.ConvForward(g, x, w, y); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.ConvBackwardData(g, w, y, x, true); err != nil {
		t.Fatal(err)
	}
	if err := d.ConvBackwardFilter(g, x, y, w, false); err != nil {
		t.Fatal(err)
	}
	if be := d.ConvBackend(); be != "cuDNN 9.19.0 (fake-cudnn)" {
		t.Errorf("backend %q", be)
	}
	if got := d.MemStats().InUse; got != before {
		t.Errorf("workspaces not returned: %d bytes in use, %d before", got, before)
	}
	for name, want := range map[string]int{
		"cudnnCreate": 1, "cudnnSetStream": 1, "cudnnCreateTensorDescriptor": 2, "cudnnCreateFilterDescriptor": 1,
		"cudnnCreateConvolutionDescriptor": 1, cudnnConvFuncs[convFwd].find: 1, cudnnConvFuncs[convFwd].heuristic: 0,
		cudnnConvFuncs[convBwdData].find: 1, cudnnConvFuncs[convBwdData].heuristic: 1, cudnnConvFuncs[convBwdFilter].find: 1,
		cudnnConvFuncs[convFwd].run: 3,
	} {
		if got := fd.count(name); got != want {
			t.Errorf("%s called %d times, want %d", name, got, want)
		}
	}
	if fd.stream != 0 {
		t.Errorf("handle on stream %d", fd.stream)
	}
	// The descriptors say NCHW float, cross-correlation with float compute,
	// dilation 1, and the geometry.
	var tensors [][6]int32
	for _, v := range fd.tensors {
		tensors = append(tensors, v)
	}
	if len(tensors) != 2 || len(fd.filters) != 1 || len(fd.convs) != 1 {
		t.Fatalf("descriptors %v %v %v", fd.tensors, fd.filters, fd.convs)
	}
	wantTensors := map[[6]int32]bool{{0, 0, 2, 4, 9, 8}: true, {0, 0, 2, 6, 5, 6}: true}
	for _, v := range tensors {
		if !wantTensors[v] {
			t.Errorf("tensor descriptor %v", v)
		}
	}
	for _, v := range fd.filters {
		if v != [6]int32{0, 0, 6, 2, 3, 3} {
			t.Errorf("filter descriptor %v", v)
		}
	}
	for _, c := range fd.convs {
		if c.params != [8]int32{1, 0, 2, 1, 1, 1, cudnnCrossCorrelation, cudnnDataFloat} || c.groups != 2 {
			t.Errorf("convolution descriptor %+v", c)
		}
	}

	want := []fakeConvRun{
		{dir: convFwd, algo: 3, math: cudnnFMAMath, ptrs: [3]uint64{x.ptr, w.ptr, y.ptr}, wsBytes: 5000, beta: 0},
		{dir: convFwd, algo: 3, math: cudnnFMAMath, ptrs: [3]uint64{x.ptr, w.ptr, y.ptr}, wsBytes: 5000, beta: 0},
		{dir: convFwd, algo: 3, math: cudnnFMAMath, ptrs: [3]uint64{x.ptr, w.ptr, y.ptr}, wsBytes: 5000, beta: 0},
		{dir: convBwdData, algo: 1, math: cudnnFMAMath, ptrs: [3]uint64{x.ptr, w.ptr, y.ptr}, wsBytes: 0, beta: 1},
		{dir: convBwdFilter, algo: 3, math: cudnnFMAMath, ptrs: [3]uint64{x.ptr, w.ptr, y.ptr}, wsBytes: 5000, beta: 0}, // the larger of the query and the search
	}
	if len(fd.runs) != len(want) {
		t.Fatalf("%d convolutions, want %d", len(fd.runs), len(want))
	}
	for i, r := range fd.runs {
		if (r.wsBytes > 0) != (r.ws != 0) || r.alpha != 1 {
			t.Errorf("run %d: workspace %#x of %d bytes, alpha %v", i, r.ws, r.wsBytes, r.alpha)
		}
		r.ws, r.alpha = 0, 0
		if r != want[i] {
			t.Errorf("run %d: %+v, want %+v", i, r, want[i])
		}
	}

	// TF32: separate descriptors, the fastest result whatever its math,
	// run in that result's math type.
	d.SetTF32(true)
	if err := d.ConvForward(g, x, w, y); err != nil {
		t.Fatal(err)
	}
	if n := fd.count("cudnnCreateConvolutionDescriptor"); n != 2 {
		t.Errorf("%d convolution descriptors after switching to TF32", n)
	}
	if r := fd.runs[len(fd.runs)-1]; r.algo != 2 || r.math != cudnnTensorOpMath || r.wsBytes != 64 {
		t.Errorf("TF32 run %+v", r)
	}
	d.SetTF32(false)
	if err := d.ConvForward(g, x, w, y); err != nil {
		t.Fatal(err)
	}
	if r := fd.runs[len(fd.runs)-1]; r.algo != 3 || r.math != cudnnFMAMath || fd.count("cudnnCreateConvolutionDescriptor") != 2 {
		t.Errorf("back to strict FP32: run %+v, %d descriptors", r, fd.count("cudnnCreateConvolutionDescriptor"))
	}

	// Deterministic: separate descriptors again, the fastest deterministic
	// result.
	d.SetDeterministic(true)
	if err := d.ConvForward(g, x, w, y); err != nil {
		t.Fatal(err)
	}
	if r := fd.runs[len(fd.runs)-1]; r.algo != 0 || r.math != cudnnFMAMath || fd.count("cudnnCreateConvolutionDescriptor") != 3 {
		t.Errorf("deterministic run %+v, %d descriptors", r, fd.count("cudnnCreateConvolutionDescriptor"))
	}
	d.SetDeterministic(false)

	// Errors carry cuDNN's message.
	fd.fail[cudnnConvFuncs[convFwd].run] = 2000
	err := d.ConvForward(g, x, w, y)
	var e *Error
	if !errors.As(err, &e) || err.Error() != "cudnnConvolutionForward: CUDNN_STATUS_BAD_PARAM (code 2000)" {
		t.Errorf("failed convolution: %v", err)
	}
	delete(fd.fail, cudnnConvFuncs[convFwd].run)

	g2 := g
	g2.N = 1
	fd.fail[cudnnConvFuncs[convFwd].find] = 4000
	fd.ranked[convFwd] = []convAlgoPerf{{Algo: 0, Status: 3000}, {Algo: 1, Status: 2000}}
	err = d.ConvForward(g2, x, w, y)
	for _, want := range []string{"no usable forward algorithm", "algo 0 math 0: CUDNN_STATUS_NOT_SUPPORTED",
		"algo 1 math 0: CUDNN_STATUS_BAD_PARAM", "cudnnFindConvolutionForwardAlgorithm: CUDNN_STATUS_INTERNAL_ERROR (code 4000)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no algorithm: %v lacks %q", err, want)
		}
	}

	g3 := g2
	g3.StrideW = 2
	fd.outDelta = 1
	if err := d.ConvForward(g3, x, w, y); err == nil || !strings.Contains(err.Error(), "cuDNN makes the output of conv 1x4x9x8 * 6x2x3x3 stride 2x2 pad 1x0 groups 2 1x6x6x3, not 1x6x5x3") {
		t.Errorf("disagreeing output shape: %v", err)
	}
}

func TestConvArguments(t *testing.T) {
	d, drv, _ := openFake(t)
	fd := newFakeDNN(drv)
	fd.found[convFwd] = []convAlgoPerf{{Algo: 0}}
	useFakeLibs(d, nil, fd)
	g := ConvGeom{N: 2, C: 3, H: 5, W: 5, K: 4, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1, Groups: 1}
	x, _ := d.AllocFloat32(g.inLen())
	w, _ := d.AllocFloat32(g.filterLen())
	y, _ := d.AllocFloat32(g.outLen())
	short, _ := d.AllocFloat32(g.filterLen() - 1)
	bad := g
	bad.Groups = 2
	for _, c := range []struct {
		err  error
		want string
	}{
		{d.ConvForward(bad, x, w, y), "groups do not divide"},
		{d.ConvForward(g, x, short, y), "forward conv 2x3x5x5 * 4x3x3x3 stride 1x1 pad 1x1 groups 1: w holds 107 floats, needs 108"},
		{d.ConvForward(g, x, w, nil), "y is nil"},
		{d.ConvForward(g, y, w, y), "y overlaps x"},
		{d.ConvBackwardData(g, w, y, short, false), "dx holds 107 floats, needs 150"},
		{d.ConvBackwardData(g, w, y, y, false), "dx overlaps dy"},
		{d.ConvBackwardFilter(g, x, short, w, false), "dy holds 107 floats, needs 200"},
		{d.ConvBackwardFilter(g, x, y, x, true), "dw overlaps x"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%v, want %q", c.err, c.want)
		}
	}
	if len(fd.runs) != 0 {
		t.Errorf("%d convolutions ran for bad arguments", len(fd.runs))
	}
}

// TestConvBackends checks which backend is taken and what is said when a
// library is missing or fails to start.
func TestConvBackends(t *testing.T) {
	g := ConvGeom{N: 1, C: 1, H: 3, W: 3, K: 1, R: 1, S: 1, StrideH: 1, StrideW: 1, Groups: 1}
	for _, c := range []struct {
		name            string
		blas, dnn       bool
		dnnFail         string
		backend, errMsg string
	}{
		{name: "both", blas: true, dnn: true, backend: "cuDNN 9.19.0 (fake-cudnn)"},
		{name: "no cuDNN", blas: true, backend: "im2col + cuBLAS 13.1.0 (fake-cublas); cuDNN unavailable: no cuDNN here"},
		{name: "cuDNN fails to start", blas: true, dnn: true, dnnFail: "cudnnCreate",
			backend: "im2col + cuBLAS 13.1.0 (fake-cublas); cuDNN unavailable: fake-cudnn: cudnnCreate: CUDNN_STATUS_NOT_INITIALIZED (code 1001)"},
		{name: "neither",
			errMsg: "cuda: convolutions need cuDNN or cuBLAS (set SRMLAB_LIBCUDNN or SRMLAB_LIBCUBLAS to the library): cuDNN unavailable: no cuDNN here\ncuBLAS unavailable: no cuBLAS here"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, drv, _ := openFake(t)
			var blas blasAPI
			var dnn dnnAPI
			if c.blas {
				blas = newFakeBLAS(drv)
			}
			if c.dnn {
				fd := newFakeDNN(drv)
				fd.found[convFwd] = []convAlgoPerf{{Algo: 0}}
				if c.dnnFail != "" {
					fd.fail[c.dnnFail] = 1001
				}
				dnn = fd
			}
			useFakeLibs(d, blas, dnn)
			want := c.backend
			if c.errMsg != "" {
				want = c.errMsg
			}
			if got := d.ConvBackend(); got != want {
				t.Errorf("backend %q, want %q", got, want)
			}
			x, _ := d.AllocFloat32(9)
			w, _ := d.AllocFloat32(1)
			y, _ := d.AllocFloat32(9)
			err := d.ConvForward(g, x, w, y)
			if c.errMsg == "" && err != nil {
				t.Error(err)
			}
			if c.errMsg != "" && (err == nil || err.Error() != c.errMsg) {
				t.Errorf("error %v", err)
			}
		})
	}
}

// TestMathStatePerDevice checks that each device has its own library
// state, and that the state goes when its device is collected.
func TestMathStatePerDevice(t *testing.T) {
	d1, _, _ := openFake(t)
	d2, _, _ := openFake(t)
	d1.SetTF32(true)
	d2.SetDeterministic(true)
	var m1, m2 convMode
	d1.exec.do(func() error { m1 = d1.math().mode; return nil })
	d2.exec.do(func() error { m2 = d2.math().mode; return nil })
	if m1 != (convMode{tf32: true}) || m2 != (convMode{deterministic: true}) {
		t.Errorf("modes %+v and %+v", m1, m2)
	}

	d3, err := openWith(newFakeDriver(), "fake", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	d3.SetTF32(true)
	key := weak.Make(d3)
	if _, ok := mathOf.Load(key); !ok {
		t.Fatal("no state for the device")
	}
	if err := d3.Close(); err != nil {
		t.Fatal(err)
	}
	d3 = nil
	for i := 0; ; i++ {
		runtime.GC()
		if _, ok := mathOf.Load(key); !ok {
			break
		}
		if i == 100 {
			t.Fatal("the state of a collected device is still there")
		}
		time.Sleep(time.Millisecond)
	}
}
