package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"weak"
)

// ConvGeom is one NCHW convolution: input N×C×H×W, filters
// K×(C/Groups)×R×S, output N×K×OutH()×OutW(). It is a cross-correlation
// (no filter flip) with zero padding, as in PyTorch's Conv2d; dilation is 1.
type ConvGeom struct{ N, C, H, W, K, R, S, StrideH, StrideW, PadH, PadW, Groups int }

// OutH is the output height, 0 when the filter does not fit.
func (g ConvGeom) OutH() int { return outSize(g.H, g.R, g.StrideH, g.PadH) }

// OutW is the output width, 0 when the filter does not fit.
func (g ConvGeom) OutW() int { return outSize(g.W, g.S, g.StrideW, g.PadW) }

func outSize(in, filter, stride, pad int) int {
	if stride <= 0 || in+2*pad < filter {
		return 0
	}
	return (in+2*pad-filter)/stride + 1
}

// String writes the geometry for messages, e.g.
// "conv 64x3x224x224 * 64x3x7x7 stride 2x2 pad 3x3 groups 1".
func (g ConvGeom) String() string {
	return fmt.Sprintf("conv %dx%dx%dx%d * %dx%dx%dx%d stride %dx%d pad %dx%d groups %d",
		g.N, g.C, g.H, g.W, g.K, g.C/max(g.Groups, 1), g.R, g.S, g.StrideH, g.StrideW, g.PadH, g.PadW, g.Groups)
}

// Validate reports what is wrong with the geometry: sizes, strides and
// groups must be positive, padding not negative, Groups must divide C and
// K, the filter must fit the padded input, and each tensor must have
// fewer than 2³¹ values (cuDNN's and cuBLAS's int sizes).
func (g ConvGeom) Validate() error {
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{{"N", g.N, 1}, {"C", g.C, 1}, {"H", g.H, 1}, {"W", g.W, 1}, {"K", g.K, 1}, {"R", g.R, 1}, {"S", g.S, 1},
		{"StrideH", g.StrideH, 1}, {"StrideW", g.StrideW, 1}, {"PadH", g.PadH, 0}, {"PadW", g.PadW, 0}, {"Groups", g.Groups, 1}} {
		if f.v < f.min || f.v > math.MaxInt32 {
			return fmt.Errorf("cuda: %v: %s = %d out of range", g, f.name, f.v)
		}
	}
	if g.C%g.Groups != 0 || g.K%g.Groups != 0 {
		return fmt.Errorf("cuda: %v: %d groups do not divide %d input and %d output channels", g, g.Groups, g.C, g.K)
	}
	if g.OutH() == 0 || g.OutW() == 0 {
		return fmt.Errorf("cuda: %v: the %dx%d filter does not fit the padded %dx%d input", g, g.R, g.S, g.H, g.W)
	}
	for _, t := range []struct {
		name string
		dims []int
	}{{"input", []int{g.N, g.C, g.H, g.W}}, {"filter", []int{g.K, g.C / g.Groups, g.R, g.S}}, {"output", []int{g.N, g.K, g.OutH(), g.OutW()}}} {
		if !fitsInt32(t.dims...) {
			return fmt.Errorf("cuda: %v: the %s has 2³¹ values or more", g, t.name)
		}
	}
	return nil
}

// fitsInt32 reports whether the product of positive dims is below 2³¹.
func fitsInt32(dims ...int) bool {
	p := 1
	for _, d := range dims {
		if d > math.MaxInt32/p {
			return false
		}
		p *= d
	}
	return true
}

func (g ConvGeom) inLen() int     { return g.N * g.C * g.H * g.W }
func (g ConvGeom) filterLen() int { return g.K * g.C / g.Groups * g.R * g.S }
func (g ConvGeom) outLen() int    { return g.N * g.K * g.OutH() * g.OutW() }

// ConvForward queues y = conv(x, w) (no bias).
func (d *Device) ConvForward(g ConvGeom, x, w, y *Buffer) error {
	return d.conv(g, convFwd, false, [3]*Buffer{x, w, y})
}

// ConvBackwardData queues dx = dL/dx given w and dy = dL/dy, or adds it to
// dx when accumulate is set.
func (d *Device) ConvBackwardData(g ConvGeom, w, dy, dx *Buffer, accumulate bool) error {
	return d.conv(g, convBwdData, accumulate, [3]*Buffer{dx, w, dy})
}

// ConvBackwardFilter queues dw = dL/dw given x and dy = dL/dy, or adds it
// to dw when accumulate is set.
func (d *Device) ConvBackwardFilter(g ConvGeom, x, dy, dw *Buffer, accumulate bool) error {
	return d.conv(g, convBwdFilter, accumulate, [3]*Buffer{x, dw, dy})
}

// conv checks the arguments, given by role (x, w, y; see roleX), and
// queues the direction's computation with cuDNN or, without it, im2col and
// cuBLAS.
func (d *Device) conv(g ConvGeom, dir convDir, accumulate bool, bufs [3]*Buffer) error {
	if err := g.Validate(); err != nil {
		return err
	}
	names := [3]string{"x", "w", "y"}
	if dir != convFwd {
		names = [3]string{"x", "w", "dy"}
		names[convOperands[dir][2]] = "d" + names[convOperands[dir][2]]
	}
	return d.exec.do(func() error {
		for role, n := range [3]int{g.inLen(), g.filterLen(), g.outLen()} {
			if p := d.bufferProblem(bufs[role], n); p != "" {
				return fmt.Errorf("cuda: %s %v: %s %s", dir, g, names[role], p)
			}
		}
		out := convOperands[dir][2]
		for role, b := range bufs {
			if role != out && overlaps(b, bufs[out]) {
				return fmt.Errorf("cuda: %s %v: %s overlaps %s", dir, g, names[out], names[role])
			}
		}
		ptrs := [3]uint64{bufs[0].ptr, bufs[1].ptr, bufs[2].ptr}
		beta := float32(0)
		if accumulate {
			beta = 1
		}
		m := d.math()
		dnn, blas, err := m.convBackend(d)
		if err != nil {
			return err
		}
		if dnn != nil {
			return dnn.convolve(d, g, m.mode, dir, ptrs, beta)
		}
		return d.im2colConv(blas, g, dir, ptrs, beta)
	})
}

// SetTF32 sets the math cuDNN convolutions may use: on allows TF32 tensor
// cores (CUDNN_DEFAULT_MATH, PyTorch's default cudnn.allow_tf32 = True),
// off keeps strict FP32 (CUDNN_FMA_MATH), as the accuracy checks need. The
// default is off. cuBLAS, and so Gemm and the im2col path, always computes
// in strict FP32, as PyTorch's matmuls do by default.
func (d *Device) SetTF32(on bool) {
	d.exec.do(func() error { d.math().mode.tf32 = on; return nil })
}

// SetDeterministic restricts cuDNN convolutions to the algorithms cuDNN
// reports deterministic, which give the same bits on every run (PyTorch's
// cudnn.deterministic); a convolution with none fails. The default is off:
// cudnnFind's fastest may sum with atomics, in an order that varies. The
// im2col path is deterministic either way; MaxPoolBackward is not (it
// scatters with atomics where windows overlap).
func (d *Device) SetDeterministic(on bool) {
	d.exec.do(func() error { d.math().mode.deterministic = on; return nil })
}

// ConvBackend loads the libraries if that has not happened yet and says
// what the convolutions run on, e.g. "cuDNN 9.19.0 (libcudnn.so.9)" or
// "im2col + cuBLAS 13.1.0 (...); cuDNN unavailable: ...", or why they
// cannot run.
func (d *Device) ConvBackend() string {
	var s string
	d.exec.do(func() error {
		m := d.math()
		dnn, blas, err := m.convBackend(d)
		switch {
		case err != nil:
			s = err.Error()
		case dnn != nil:
			s = dnn.desc
		default:
			s = fmt.Sprintf("im2col + %s; %v", blas.desc, m.dnnErr)
		}
		return nil
	})
	return s
}

// mathLibs is a device's cuBLAS and cuDNN state, used on the CUDA thread
// only. Each library is loaded on first use and a failure is remembered,
// so that every later call reports the same cause.
type mathLibs struct {
	loadBLAS func() (blasAPI, string, error) // the API and where it came from
	loadDNN  func() (dnnAPI, string, error)
	mode     convMode

	blas    *blasState
	blasErr error
	dnn     *dnnState
	dnnErr  error
}

// mathOf holds each open Device's mathLibs. It is keyed weakly so that a
// Device that is no longer referenced takes its entry with it.
var mathOf sync.Map // weak.Pointer[Device] -> *mathLibs

// math returns the device's library state, creating it with loaders that
// search this machine on first use.
func (d *Device) math() *mathLibs {
	key := weak.Make(d)
	if m, ok := mathOf.Load(key); ok {
		return m.(*mathLibs)
	}
	m := &mathLibs{
		loadBLAS: func() (blasAPI, string, error) {
			l, err := loadCUBLAS(hostEnv)
			if err != nil {
				return nil, "", err
			}
			return l, l.path, nil
		},
		loadDNN: func() (dnnAPI, string, error) {
			l, err := loadCUDNN(hostEnv)
			if err != nil {
				return nil, "", err
			}
			where := l.path
			if l.notPreloaded != "" {
				where += "; not preloaded: " + l.notPreloaded
			}
			return l, where, nil
		},
	}
	if prev, loaded := mathOf.LoadOrStore(key, m); loaded {
		return prev.(*mathLibs)
	}
	runtime.AddCleanup(d, func(k weak.Pointer[Device]) { mathOf.Delete(k) }, key)
	return m
}

// cublas returns the cuBLAS state, loading the library on first use.
func (m *mathLibs) cublas() (*blasState, error) {
	if m.blas == nil && m.blasErr == nil {
		api, where, err := m.loadBLAS()
		if err == nil {
			m.blas, err = newBLASState(api, where)
		}
		if err != nil {
			m.blasErr = fmt.Errorf("cuBLAS unavailable: %w", err)
		}
	}
	return m.blas, m.blasErr
}

// cudnn returns the cuDNN state, loading the library on first use. NVRTC
// and cuBLAS are loaded first: cuDNN's engines dlopen them by soname, and
// find them that way even where their folder is not on the loader's path.
func (m *mathLibs) cudnn(d *Device) (*dnnState, error) {
	if m.dnn == nil && m.dnnErr == nil {
		d.kern.nvrtc()
		m.cublas()
		api, where, err := m.loadDNN()
		if err == nil {
			m.dnn, err = newDNNState(api, where)
		}
		if err != nil {
			m.dnnErr = fmt.Errorf("cuDNN unavailable: %w", err)
		}
	}
	return m.dnn, m.dnnErr
}

// convBackend returns cuDNN's state when cuDNN works, else cuBLAS's for
// the im2col path, else an error naming both causes.
func (m *mathLibs) convBackend(d *Device) (*dnnState, *blasState, error) {
	dnn, derr := m.cudnn(d)
	if derr == nil {
		return dnn, nil, nil
	}
	blas, berr := m.cublas()
	if berr == nil {
		return nil, blas, nil
	}
	return nil, nil, fmt.Errorf("cuda: convolutions need cuDNN or cuBLAS (set %s or %s to the library): %w",
		envLibCUDNN, envLibCUBLAS, errors.Join(derr, berr))
}

// The im2col path: each image's receptive fields are copied into a column
// matrix (kernels/conv.cu, which has the layout) so that each group's
// convolution is one GEMM, and the groups of an image one strided-batched
// GEMM. Per image, with G groups, Cg = C/G and Kg = K/G channels per group,
// Q = Cg·R·S rows of the column matrix per group and P = OutH·OutW:
//
//	forward          y_g  (Kg×P) = W_g (Kg×Q) · col_g (Q×P)
//	backward data    col_g (Q×P) = W_gᵀ · dy_g (Kg×P), then col2im adds col into dx
//	backward filter  dW_g (Kg×Q) += dy_g · col_gᵀ, summed over the images
//
// A 1×1 filter with stride 1 and no padding needs no column matrix: the
// image is its own.
const convSource = "conv.cu"

func (d *Device) im2colConv(blas *blasState, g ConvGeom, dir convDir, ptrs [3]uint64, beta float32) (err error) {
	G, P := g.Groups, g.OutH()*g.OutW()
	Cg, Kg := g.C/G, g.K/G
	Q := Cg * g.R * g.S
	direct := g.R == 1 && g.S == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 0 && g.PadW == 0
	var col uint64
	if !direct {
		if !fitsInt32(g.C, g.R, g.S, P) {
			return fmt.Errorf("cuda: %s %v: the column matrix of one image has 2³¹ values or more", dir, g)
		}
		if col, _, err = d.alloc.get(uint64(4 * g.C * g.R * g.S * P)); err != nil {
			return err
		}
		// Back to the cache once everything is queued; see dnnState.convolve.
		defer func() { err = errors.Join(err, d.alloc.put(col)) }()
	}
	imgIn, imgOut := uint64(4*g.C*g.H*g.W), uint64(4*g.K*P)
	x, w, y := ptrs[roleX], ptrs[roleW], ptrs[roleY]
	// image queues the work for the image with input (x or dx) at xn and
	// output (y or dy) at yn.
	image := func(xn, yn uint64, first bool) error {
		switch dir {
		case convFwd:
			b := xn
			if !direct {
				if err := d.im2col(g, xn, col); err != nil {
					return err
				}
				b = col
			}
			return blas.gemm(false, false, Kg, P, Q, 1, w, Q, Kg*Q, b, P, Q*P, 0, yn, P, Kg*P, G)
		case convBwdData:
			if direct {
				return blas.gemm(true, false, Q, P, Kg, 1, w, Q, Kg*Q, yn, P, Kg*P, beta, xn, P, Q*P, G)
			}
			if err := blas.gemm(true, false, Q, P, Kg, 1, w, Q, Kg*Q, yn, P, Kg*P, 0, col, P, Q*P, G); err != nil {
				return err
			}
			return d.col2im(g, col, xn, beta != 0)
		default:
			b := xn
			if !direct {
				if err := d.im2col(g, xn, col); err != nil {
					return err
				}
				b = col
			}
			bt := beta
			if !first {
				bt = 1 // the sum over the batch
			}
			return blas.gemm(false, true, Kg, Q, P, 1, yn, P, Kg*P, b, P, Q*P, bt, w, Q, Kg*Q, G)
		}
	}
	for n := range uint64(g.N) {
		if err := image(x+n*imgIn, y+n*imgOut, n == 0); err != nil {
			return err
		}
	}
	return nil
}

// im2col queues conv_im2col for one image at x into col.
func (d *Device) im2col(g ConvGeom, x, col uint64) error {
	return d.launchNow(kernelRef{convSource, "conv_im2col"}, g.C*g.R*g.S*g.OutH()*g.OutW(),
		x, col, int32(g.C), int32(g.H), int32(g.W), int32(g.R), int32(g.S), int32(g.OutH()), int32(g.OutW()),
		int32(g.StrideH), int32(g.StrideW), int32(g.PadH), int32(g.PadW))
}

// col2im queues conv_col2im, which writes (or adds to) one image's dx.
func (d *Device) col2im(g ConvGeom, col, dx uint64, accumulate bool) error {
	acc := int32(0)
	if accumulate {
		acc = 1
	}
	return d.launchNow(kernelRef{convSource, "conv_col2im"}, g.C*g.H*g.W,
		col, dx, int32(g.C), int32(g.H), int32(g.W), int32(g.R), int32(g.S), int32(g.OutH()), int32(g.OutW()),
		int32(g.StrideH), int32(g.StrideW), int32(g.PadH), int32(g.PadW), acc)
}

// launchNow queues one grid-stride kernel over n items from the CUDA
// thread, with enough blocks to fill the device.
func (d *Device) launchNow(k kernelRef, n int, args ...any) error {
	p := &Plan{dev: d}
	if err := p.add(k, min((n+maxBlock-1)/maxBlock, 16*max(d.info.SMs, 1)), maxBlock, args...); err != nil {
		return err
	}
	return d.launchPlan(p)
}
