package cuda

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// cudnnStatus is a cudnnStatus_t; 0 is success.
type cudnnStatus int32

// cuDNN enum values of the legacy API (cudnn_graph.h, cudnn_cnn.h),
// unchanged since cuDNN 7.
const (
	cudnnTensorNCHW       = 0 // cudnnTensorFormat_t
	cudnnDataFloat        = 0 // cudnnDataType_t
	cudnnCrossCorrelation = 1 // cudnnConvolutionMode_t: no filter flip, as PyTorch
	// cudnnMathType_t
	cudnnDefaultMath                 = 0
	cudnnTensorOpMath                = 1
	cudnnTensorOpMathAllowConversion = 2
	cudnnFMAMath                     = 3
	cudnnDeterministic               = 1 // cudnnDeterminism_t
)

// maxAlgos is how many results the algorithm searches may return, more
// than any CUDNN_CONVOLUTION_*_ALGO_COUNT (8, 6 and 7 in cuDNN 9).
const maxAlgos = 16

// convDir is one of the three convolution computations.
type convDir int

const (
	convFwd       convDir = iota // y = conv(x, w)
	convBwdData                  // dx from w and dy
	convBwdFilter                // dw from x and dy
)

func (dir convDir) String() string {
	return [...]string{"forward", "backward-data", "backward-filter"}[dir]
}

// The tensors of a convolution by role, as indices into convDescs.t and
// the pointer triples: for the backward directions y holds dy, and x or w
// the gradient being computed.
const (
	roleX = iota
	roleW
	roleY
)

// convOperands orders each direction's tensors as its cuDNN functions take
// them: the two inputs, then the output.
var convOperands = [3][3]int{
	convFwd:       {roleX, roleW, roleY},
	convBwdData:   {roleW, roleY, roleX},
	convBwdFilter: {roleX, roleY, roleW},
}

// cudnnConvFuncs names each direction's C functions.
var cudnnConvFuncs = [3]struct{ find, heuristic, workspace, run string }{
	convFwd: {"cudnnFindConvolutionForwardAlgorithm", "cudnnGetConvolutionForwardAlgorithm_v7",
		"cudnnGetConvolutionForwardWorkspaceSize", "cudnnConvolutionForward"},
	convBwdData: {"cudnnFindConvolutionBackwardDataAlgorithm", "cudnnGetConvolutionBackwardDataAlgorithm_v7",
		"cudnnGetConvolutionBackwardDataWorkspaceSize", "cudnnConvolutionBackwardData"},
	convBwdFilter: {"cudnnFindConvolutionBackwardFilterAlgorithm", "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
		"cudnnGetConvolutionBackwardFilterWorkspaceSize", "cudnnConvolutionBackwardFilter"},
}

// convDescs are one geometry's descriptors: tensor descriptors for x and
// y and a filter descriptor for w (all opaque pointers), by role, and the
// convolution descriptor.
type convDescs struct {
	t    [3]uintptr
	conv uintptr
}

// convAlgoPerf is cudnnConvolutionFwdAlgoPerf_t; the BwdData and BwdFilter
// structs have the same layout, with their own algorithm enums:
//
//	int32 algo @0, int32 status @4, float32 time @8 (ms), 4 bytes padding,
//	size_t memory @16, int32 determinism @24, int32 mathType @28,
//	int32 reserved[3] @32; sizeof 48.
//
// Go lays the fields out the same way (TestConvAlgoPerfLayout).
type convAlgoPerf struct {
	Algo        int32
	Status      cudnnStatus
	Time        float32
	Memory      uint64
	Determinism int32
	MathType    int32
	_           [3]int32
}

// dnnAPI is the slice of cuDNN's legacy convolution API srmlab uses, in Go
// types, shaped like driverAPI. The descriptor calls mirror the C
// functions; the per-direction calls take the descriptors and device
// pointers by role and direction, and the binding passes them in the
// order of that direction's C function.
type dnnAPI interface {
	Version() uint64
	ErrorString(s cudnnStatus) string
	Create() (uintptr, cudnnStatus)
	SetStream(h, stream uintptr) cudnnStatus
	CreateTensorDescriptor() (uintptr, cudnnStatus)
	SetTensor4dDescriptor(desc uintptr, format, dataType, n, c, h, w int32) cudnnStatus
	CreateFilterDescriptor() (uintptr, cudnnStatus)
	SetFilter4dDescriptor(desc uintptr, dataType, format, k, c, h, w int32) cudnnStatus
	CreateConvolutionDescriptor() (uintptr, cudnnStatus)
	SetConvolution2dDescriptor(desc uintptr, padH, padW, strideH, strideW, dilationH, dilationW, mode, computeType int32) cudnnStatus
	SetConvolutionGroupCount(desc uintptr, groups int32) cudnnStatus
	SetConvolutionMathType(desc uintptr, mathType int32) cudnnStatus
	GetConvolution2dForwardOutputDim(conv, x, w uintptr) (n, c, h, wd int32, s cudnnStatus)
	// FindAlgorithm times the algorithms (cudnnFind*Algorithm), fastest
	// first; GetAlgorithm ranks them by heuristics (*_v7).
	FindAlgorithm(dir convDir, h uintptr, ds convDescs, requested int32) ([]convAlgoPerf, cudnnStatus)
	GetAlgorithm(dir convDir, h uintptr, ds convDescs, requested int32) ([]convAlgoPerf, cudnnStatus)
	WorkspaceSize(dir convDir, h uintptr, ds convDescs, algo int32) (uint64, cudnnStatus)
	// Convolve computes the direction's output from its inputs:
	// out = alpha·result + beta·out.
	Convolve(dir convDir, h uintptr, alpha float32, ds convDescs, ptrs [3]uint64, algo int32, ws, wsBytes uint64, beta float32) cudnnStatus
}

// cudnnLib is dnnAPI over libcudnn.
type cudnnLib struct {
	path string
	// notPreloaded describes sub-libraries that failed to preload; cuDNN
	// may still find them, or not need them.
	notPreloaded string

	cudnnGetVersion                       func() uint64
	cudnnGetErrorString                   func(s cudnnStatus) string
	cudnnCreate                           func(h *uintptr) cudnnStatus
	cudnnSetStream                        func(h, stream uintptr) cudnnStatus
	cudnnCreateTensorDescriptor           func(d *uintptr) cudnnStatus
	cudnnSetTensor4dDescriptor            func(d uintptr, format, dataType, n, c, h, w int32) cudnnStatus
	cudnnCreateFilterDescriptor           func(d *uintptr) cudnnStatus
	cudnnSetFilter4dDescriptor            func(d uintptr, dataType, format, k, c, h, w int32) cudnnStatus
	cudnnCreateConvolutionDescriptor      func(d *uintptr) cudnnStatus
	cudnnSetConvolution2dDescriptor       func(d uintptr, padH, padW, u, v, dilH, dilW, mode, computeType int32) cudnnStatus
	cudnnSetConvolutionGroupCount         func(d uintptr, groups int32) cudnnStatus
	cudnnSetConvolutionMathType           func(d uintptr, mathType int32) cudnnStatus
	cudnnGetConvolution2dForwardOutputDim func(conv, x, w uintptr, n, c, h, wd *int32) cudnnStatus
	// Per direction; the three directions' functions have the same C
	// signatures, with the descriptors in the orders of convOperands.
	find      [3]func(h, in1, in2, conv, out uintptr, requested int32, returned *int32, perf unsafe.Pointer) cudnnStatus
	heuristic [3]func(h, in1, in2, conv, out uintptr, requested int32, returned *int32, perf unsafe.Pointer) cudnnStatus
	workspace [3]func(h, in1, in2, conv, out uintptr, algo int32, bytes *uint64) cudnnStatus
	run       [3]func(h uintptr, alpha unsafe.Pointer, d1 uintptr, p1 uint64, d2 uintptr, p2 uint64, conv uintptr,
		algo int32, ws, wsBytes uint64, beta unsafe.Pointer, d3 uintptr, p3 uint64) cudnnStatus
}

// loadCUDNN opens the first cuDNN of the search that loads and exports the
// legacy convolution API, after preloading its sub-libraries.
func loadCUDNN(env searchEnv) (*cudnnLib, error) {
	var notPreloaded string
	preload := func(path string) error {
		notPreloaded = preloadAll(cudnnSubLibraries(env, path))
		return nil
	}
	l, errs := openFirst(cudnnCandidates(env), preload, func(path string, b *binder) *cudnnLib {
		l := &cudnnLib{path: path, notPreloaded: notPreloaded}
		b.bind(&l.cudnnGetVersion, "cudnnGetVersion")
		b.bind(&l.cudnnGetErrorString, "cudnnGetErrorString")
		b.bind(&l.cudnnCreate, "cudnnCreate")
		b.bind(&l.cudnnSetStream, "cudnnSetStream")
		b.bind(&l.cudnnCreateTensorDescriptor, "cudnnCreateTensorDescriptor")
		b.bind(&l.cudnnSetTensor4dDescriptor, "cudnnSetTensor4dDescriptor")
		b.bind(&l.cudnnCreateFilterDescriptor, "cudnnCreateFilterDescriptor")
		b.bind(&l.cudnnSetFilter4dDescriptor, "cudnnSetFilter4dDescriptor")
		b.bind(&l.cudnnCreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor")
		b.bind(&l.cudnnSetConvolution2dDescriptor, "cudnnSetConvolution2dDescriptor")
		b.bind(&l.cudnnSetConvolutionGroupCount, "cudnnSetConvolutionGroupCount")
		b.bind(&l.cudnnSetConvolutionMathType, "cudnnSetConvolutionMathType")
		b.bind(&l.cudnnGetConvolution2dForwardOutputDim, "cudnnGetConvolution2dForwardOutputDim")
		for dir, f := range cudnnConvFuncs {
			b.bind(&l.find[dir], f.find)
			b.bind(&l.heuristic[dir], f.heuristic)
			b.bind(&l.workspace[dir], f.workspace)
			b.bind(&l.run[dir], f.run)
		}
		return l
	})
	if l == nil {
		return nil, errors.New("no cuDNN library could be opened (install cuDNN 9 or the nvidia-cudnn wheel, or set " +
			envLibCUDNN + "): " + strings.Join(errs, "; "))
	}
	return l, nil
}

// preloadAll dlopens libraries globally, retrying those that failed while
// any succeed (one may need another loaded first), and describes the ones
// that never loaded ("" when all did).
func preloadAll(paths []string) string {
	var errs []string
	for len(paths) > 0 {
		var failed []string
		errs = errs[:0]
		for _, p := range paths {
			if err := openGlobal(p); err != nil {
				failed = append(failed, p)
				errs = append(errs, err.Error())
			}
		}
		if len(failed) == len(paths) {
			break
		}
		paths = failed
	}
	return strings.Join(errs, "; ")
}

// The methods below implement dnnAPI through the C functions bound above.

func (l *cudnnLib) Version() uint64                     { return l.cudnnGetVersion() }
func (l *cudnnLib) ErrorString(s cudnnStatus) string    { return l.cudnnGetErrorString(s) }
func (l *cudnnLib) SetStream(h, st uintptr) cudnnStatus { return l.cudnnSetStream(h, st) }

// created calls one of cuDNN's creators, which return a handle or a
// descriptor through a pointer.
func created(create func(*uintptr) cudnnStatus) (uintptr, cudnnStatus) {
	var h uintptr
	s := create(&h)
	return h, s
}

func (l *cudnnLib) Create() (uintptr, cudnnStatus) { return created(l.cudnnCreate) }

func (l *cudnnLib) CreateTensorDescriptor() (uintptr, cudnnStatus) {
	return created(l.cudnnCreateTensorDescriptor)
}

func (l *cudnnLib) SetTensor4dDescriptor(d uintptr, format, dataType, n, c, h, w int32) cudnnStatus {
	return l.cudnnSetTensor4dDescriptor(d, format, dataType, n, c, h, w)
}

func (l *cudnnLib) CreateFilterDescriptor() (uintptr, cudnnStatus) {
	return created(l.cudnnCreateFilterDescriptor)
}

func (l *cudnnLib) SetFilter4dDescriptor(d uintptr, dataType, format, k, c, h, w int32) cudnnStatus {
	return l.cudnnSetFilter4dDescriptor(d, dataType, format, k, c, h, w)
}

func (l *cudnnLib) CreateConvolutionDescriptor() (uintptr, cudnnStatus) {
	return created(l.cudnnCreateConvolutionDescriptor)
}

func (l *cudnnLib) SetConvolution2dDescriptor(d uintptr, padH, padW, strideH, strideW, dilH, dilW, mode, computeType int32) cudnnStatus {
	return l.cudnnSetConvolution2dDescriptor(d, padH, padW, strideH, strideW, dilH, dilW, mode, computeType)
}

func (l *cudnnLib) SetConvolutionGroupCount(d uintptr, groups int32) cudnnStatus {
	return l.cudnnSetConvolutionGroupCount(d, groups)
}

func (l *cudnnLib) SetConvolutionMathType(d uintptr, mathType int32) cudnnStatus {
	return l.cudnnSetConvolutionMathType(d, mathType)
}

func (l *cudnnLib) GetConvolution2dForwardOutputDim(conv, x, w uintptr) (n, c, h, wd int32, s cudnnStatus) {
	s = l.cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &h, &wd)
	return
}

func (l *cudnnLib) FindAlgorithm(dir convDir, h uintptr, ds convDescs, requested int32) ([]convAlgoPerf, cudnnStatus) {
	return searchAlgos(l.find[dir], dir, h, ds, requested)
}

func (l *cudnnLib) GetAlgorithm(dir convDir, h uintptr, ds convDescs, requested int32) ([]convAlgoPerf, cudnnStatus) {
	return searchAlgos(l.heuristic[dir], dir, h, ds, requested)
}

func searchAlgos(f func(h, in1, in2, conv, out uintptr, requested int32, returned *int32, perf unsafe.Pointer) cudnnStatus,
	dir convDir, h uintptr, ds convDescs, requested int32) ([]convAlgoPerf, cudnnStatus) {
	o := convOperands[dir]
	perf := make([]convAlgoPerf, requested)
	var n int32
	s := f(h, ds.t[o[0]], ds.t[o[1]], ds.conv, ds.t[o[2]], requested, &n, unsafe.Pointer(&perf[0]))
	return perf[:max(0, min(n, requested))], s
}

func (l *cudnnLib) WorkspaceSize(dir convDir, h uintptr, ds convDescs, algo int32) (uint64, cudnnStatus) {
	o := convOperands[dir]
	var n uint64
	s := l.workspace[dir](h, ds.t[o[0]], ds.t[o[1]], ds.conv, ds.t[o[2]], algo, &n)
	return n, s
}

func (l *cudnnLib) Convolve(dir convDir, h uintptr, alpha float32, ds convDescs, p [3]uint64, algo int32, ws, wsBytes uint64, beta float32) cudnnStatus {
	o := convOperands[dir]
	return l.run[dir](h, unsafe.Pointer(&alpha), ds.t[o[0]], p[o[0]], ds.t[o[1]], p[o[1]], ds.conv,
		algo, ws, wsBytes, unsafe.Pointer(&beta), ds.t[o[2]], p[o[2]])
}

// dnnState is a device's cuDNN handle, bound to stream 0, with the
// descriptors and chosen algorithms of every geometry seen so far: a
// training step repeats the same few dozen, and choosing an algorithm
// (cudnnFind runs them all) costs far more than a convolution. The
// descriptors are small host structures kept for the life of the process,
// so none is ever destroyed.
type dnnState struct {
	api    dnnAPI
	handle uintptr
	desc   string // "cuDNN 9.19.0 (path)"
	convs  map[convKey]*dnnConv
}

// convKey is what descriptors and algorithm choices depend on.
type convKey struct {
	g    ConvGeom
	mode convMode
}

// convMode is what the convolutions of a device may use: TF32 tensor cores
// (SetTF32), algorithms that are not deterministic (SetDeterministic).
type convMode struct{ tf32, deterministic bool }

type dnnConv struct {
	ds    convDescs
	algos [3]*convAlgo // chosen on each direction's first use
}

// convAlgo is a chosen algorithm with the math type to run it in and the
// workspace it needs.
type convAlgo struct {
	algo, math int32
	workspace  uint64
}

func newDNNState(api dnnAPI, where string) (*dnnState, error) {
	s := &dnnState{api: api, convs: map[convKey]*dnnConv{}}
	h, st := api.Create()
	if err := s.check("cudnnCreate", st); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	s.handle = h
	if err := s.check("cudnnSetStream", api.SetStream(h, 0)); err != nil {
		return nil, err
	}
	s.desc = fmt.Sprintf("cuDNN %s (%s)", cudnnVersion(api.Version()), where)
	return s, nil
}

// cudnnVersion writes cudnnGetVersion's number as major.minor.patch: it is
// major·10000 + minor·100 + patch since cuDNN 9 (91900 is 9.19.0), and
// major·1000 + minor·100 + patch before (8907 is 8.9.7).
func cudnnVersion(v uint64) string {
	if v >= 90000 {
		return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
	}
	return fmt.Sprintf("%d.%d.%d", v/1000, v/100%10, v%100)
}

// check turns a cuDNN status into nil or an *Error with cuDNN's message.
func (s *dnnState) check(fn string, st cudnnStatus) error {
	if st == 0 {
		return nil
	}
	return &Error{Func: fn, Code: int(st), Message: s.api.ErrorString(st)}
}

// mathMode is the math type a search may use: TF32 tensor cores when
// allowed (PyTorch's cudnn.allow_tf32 default), else strict FP32.
func mathMode(tf32 bool) int32 {
	if tf32 {
		return cudnnDefaultMath
	}
	return cudnnFMAMath
}

// descriptors returns the geometry's descriptors, making them on first use.
func (s *dnnState) descriptors(k convKey) (*dnnConv, error) {
	if c, ok := s.convs[k]; ok {
		return c, nil
	}
	g, api := k.g, s.api
	dims := [3][4]int{roleX: {g.N, g.C, g.H, g.W}, roleW: {g.K, g.C / g.Groups, g.R, g.S}, roleY: {g.N, g.K, g.OutH(), g.OutW()}}
	c := &dnnConv{}
	for role, d := range dims {
		var st cudnnStatus
		if role == roleW {
			if c.ds.t[role], st = api.CreateFilterDescriptor(); st != 0 {
				return nil, s.check("cudnnCreateFilterDescriptor", st)
			}
			st = api.SetFilter4dDescriptor(c.ds.t[role], cudnnDataFloat, cudnnTensorNCHW, int32(d[0]), int32(d[1]), int32(d[2]), int32(d[3]))
			if err := s.check("cudnnSetFilter4dDescriptor", st); err != nil {
				return nil, err
			}
			continue
		}
		if c.ds.t[role], st = api.CreateTensorDescriptor(); st != 0 {
			return nil, s.check("cudnnCreateTensorDescriptor", st)
		}
		st = api.SetTensor4dDescriptor(c.ds.t[role], cudnnTensorNCHW, cudnnDataFloat, int32(d[0]), int32(d[1]), int32(d[2]), int32(d[3]))
		if err := s.check("cudnnSetTensor4dDescriptor", st); err != nil {
			return nil, err
		}
	}
	var st cudnnStatus
	if c.ds.conv, st = api.CreateConvolutionDescriptor(); st != 0 {
		return nil, s.check("cudnnCreateConvolutionDescriptor", st)
	}
	st = api.SetConvolution2dDescriptor(c.ds.conv, int32(g.PadH), int32(g.PadW), int32(g.StrideH), int32(g.StrideW), 1, 1,
		cudnnCrossCorrelation, cudnnDataFloat)
	if err := s.check("cudnnSetConvolution2dDescriptor", st); err != nil {
		return nil, err
	}
	if err := s.check("cudnnSetConvolutionGroupCount", api.SetConvolutionGroupCount(c.ds.conv, int32(g.Groups))); err != nil {
		return nil, err
	}
	if err := s.check("cudnnSetConvolutionMathType", api.SetConvolutionMathType(c.ds.conv, mathMode(k.mode.tf32))); err != nil {
		return nil, err
	}
	// cuDNN's own idea of the output shape: a mismatch means the
	// descriptors do not say what srmlab means.
	n, ch, h, w, st := api.GetConvolution2dForwardOutputDim(c.ds.conv, c.ds.t[roleX], c.ds.t[roleW])
	if err := s.check("cudnnGetConvolution2dForwardOutputDim", st); err != nil {
		return nil, err
	}
	if got := [4]int{int(n), int(ch), int(h), int(w)}; got != dims[roleY] {
		return nil, fmt.Errorf("cuda: cuDNN makes the output of %v %dx%dx%dx%d, not %dx%dx%dx%d", g,
			got[0], got[1], got[2], got[3], dims[roleY][0], dims[roleY][1], dims[roleY][2], dims[roleY][3])
	}
	s.convs[k] = c
	return c, nil
}

// algorithm returns the direction's algorithm, choosing it on first use as
// PyTorch's cudnn.benchmark does: cudnnFind runs every algorithm and the
// fastest that succeeded wins; where Find fails or leaves none, the *_v7
// heuristics' best-ranked one does. Without TF32, results that would use
// tensor-op math are skipped and the FMA math type is forced; in
// deterministic mode, results cuDNN does not call deterministic are.
func (s *dnnState) algorithm(c *dnnConv, g ConvGeom, dir convDir, m convMode) (*convAlgo, error) {
	if a := c.algos[dir]; a != nil {
		return a, nil
	}
	f := cudnnConvFuncs[dir]
	mode := mathMode(m.tf32)
	// The search reads the math type from the descriptor, which the last
	// choice (another direction's) may have changed.
	if err := s.check("cudnnSetConvolutionMathType", s.api.SetConvolutionMathType(c.ds.conv, mode)); err != nil {
		return nil, err
	}
	perf, st := s.api.FindAlgorithm(dir, s.handle, c.ds, maxAlgos)
	findErr := s.check(f.find, st)
	var best *convAlgoPerf
	if findErr == nil {
		best = pickAlgo(dir, perf, m, true)
	}
	if best == nil {
		var herr error
		perf, st = s.api.GetAlgorithm(dir, s.handle, c.ds, maxAlgos)
		if herr = s.check(f.heuristic, st); herr == nil {
			best = pickAlgo(dir, perf, m, false)
		}
		if best == nil {
			kind := "usable"
			if m.deterministic {
				kind = "usable deterministic"
			}
			return nil, errors.Join(fmt.Errorf("cuda: cuDNN has no %s %s algorithm for %v%s", kind, dir, g, s.describe(perf)), findErr, herr)
		}
	}
	math := mode
	if m.tf32 {
		math = best.MathType
	}
	if err := s.check("cudnnSetConvolutionMathType", s.api.SetConvolutionMathType(c.ds.conv, math)); err != nil {
		return nil, err
	}
	ws, st := s.api.WorkspaceSize(dir, s.handle, c.ds, best.Algo)
	if err := s.check(f.workspace, st); err != nil {
		return nil, err
	}
	a := &convAlgo{algo: best.Algo, math: math, workspace: max(ws, best.Memory)}
	c.algos[dir] = a
	return a, nil
}

// transformAlgos are each direction's FFT and Winograd algorithms
// (cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t). They round differently
// from a direct sum, with errors several times larger, so strict FP32, the
// mode the accuracy checks run in, takes them only when nothing else works.
var transformAlgos = [3]map[int32]bool{
	convFwd:       {4: true, 5: true, 6: true, 7: true},
	convBwdData:   {2: true, 3: true, 4: true, 5: true},
	convBwdFilter: {2: true, 4: true, 5: true, 6: true},
}

// pickAlgo returns the usable result with the smallest time (byTime) or
// the first usable one (heuristics, which rank but do not time), or nil.
func pickAlgo(dir convDir, perf []convAlgoPerf, m convMode, byTime bool) *convAlgoPerf {
	tf32 := m.tf32
	pick := func(skipTransforms bool) *convAlgoPerf {
		var best *convAlgoPerf
		for i := range perf {
			p := &perf[i]
			if p.Status != 0 || (!tf32 && (p.MathType == cudnnTensorOpMath || p.MathType == cudnnTensorOpMathAllowConversion)) {
				continue
			}
			if m.deterministic && p.Determinism != cudnnDeterministic {
				continue
			}
			if skipTransforms && transformAlgos[dir][p.Algo] {
				continue
			}
			if best == nil || (byTime && p.Time < best.Time) {
				best = p
			}
		}
		return best
	}
	if best := pick(!tf32); best != nil || tf32 {
		return best
	}
	return pick(false)
}

// describe lists search results for an error message.
func (s *dnnState) describe(perf []convAlgoPerf) string {
	var parts []string
	for _, p := range perf {
		parts = append(parts, fmt.Sprintf("algo %d math %d: %s", p.Algo, p.MathType, s.api.ErrorString(p.Status)))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// convolve queues one convolution of direction dir: ptrs are x, w and y by
// role, and the output is overwritten (beta 0) or added to (beta 1). The
// workspace comes from the caching allocator and goes back as soon as the
// call is queued: the allocator hands a block out again only to work
// queued after it on the same stream.
func (s *dnnState) convolve(d *Device, g ConvGeom, m convMode, dir convDir, ptrs [3]uint64, beta float32) (err error) {
	c, err := s.descriptors(convKey{g, m})
	if err != nil {
		return err
	}
	a, err := s.algorithm(c, g, dir, m)
	if err != nil {
		return err
	}
	if err := s.check("cudnnSetConvolutionMathType", s.api.SetConvolutionMathType(c.ds.conv, a.math)); err != nil {
		return err
	}
	var ws uint64
	if a.workspace > 0 {
		if ws, _, err = d.alloc.get(a.workspace); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, d.alloc.put(ws)) }()
	}
	return s.check(cudnnConvFuncs[dir].run, s.api.Convolve(dir, s.handle, 1, c.ds, ptrs, a.algo, ws, a.workspace, beta))
}
