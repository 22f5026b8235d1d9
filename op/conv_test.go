package op

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/srmlab/srmlab/internal/gradcheck"
	"github.com/srmlab/srmlab/tensor"
)

// convCase is one Conv2d configuration: input (n, c, h, w), weight
// (cout, c/groups, kh, kw).
type convCase struct {
	n, c, h, w, cout, kh, kw, stride, pad, groups int
	bias                                          bool
}

func (tc convCase) String() string {
	return fmt.Sprintf("x%dx%dx%dx%d_w%dx%dx%d_s%d_p%d_g%d_b%v", tc.n, tc.c, tc.h, tc.w, tc.cout, tc.kh, tc.kw, tc.stride, tc.pad, tc.groups, tc.bias)
}

var convCases = []convCase{
	{n: 2, c: 3, h: 5, w: 5, cout: 4, kh: 3, kw: 3, stride: 1, pad: 1, groups: 1, bias: true},
	{n: 2, c: 3, h: 6, w: 7, cout: 2, kh: 3, kw: 3, stride: 2, pad: 1, groups: 1, bias: true},
	{n: 1, c: 2, h: 5, w: 6, cout: 3, kh: 3, kw: 3, stride: 1, pad: 0, groups: 1, bias: false},
	{n: 2, c: 2, h: 4, w: 5, cout: 3, kh: 3, kw: 3, stride: 1, pad: 2, groups: 1, bias: true},
	{n: 2, c: 2, h: 7, w: 6, cout: 2, kh: 3, kw: 3, stride: 3, pad: 2, groups: 1, bias: true},
	{n: 2, c: 4, h: 5, w: 5, cout: 6, kh: 3, kw: 3, stride: 1, pad: 1, groups: 2, bias: true},
	{n: 2, c: 4, h: 6, w: 6, cout: 4, kh: 3, kw: 3, stride: 2, pad: 1, groups: 4, bias: true},  // depthwise
	{n: 2, c: 3, h: 5, w: 4, cout: 6, kh: 3, kw: 2, stride: 1, pad: 1, groups: 3, bias: false}, // depthwise, multiplier 2
	{n: 2, c: 3, h: 4, w: 5, cout: 5, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1, bias: true},  // pointwise, no im2col
	{n: 2, c: 4, h: 4, w: 4, cout: 4, kh: 1, kw: 1, stride: 1, pad: 0, groups: 2, bias: false}, // grouped pointwise
	{n: 2, c: 3, h: 5, w: 5, cout: 4, kh: 1, kw: 1, stride: 2, pad: 0, groups: 1, bias: false}, // ResNet projection shortcut
	{n: 2, c: 2, h: 5, w: 6, cout: 3, kh: 1, kw: 3, stride: 1, pad: 1, groups: 1, bias: true},  // non-square kernel
	{n: 2, c: 2, h: 6, w: 5, cout: 3, kh: 3, kw: 1, stride: 2, pad: 0, groups: 1, bias: true},  // non-square kernel, stride 2
	{n: 2, c: 2, h: 4, w: 3, cout: 3, kh: 4, kw: 3, stride: 1, pad: 0, groups: 1, bias: true},  // kernel covers the input: 1x1 output
	{n: 2, c: 2, h: 3, w: 3, cout: 2, kh: 5, kw: 5, stride: 1, pad: 1, groups: 1, bias: false}, // kernel covers the padded input
	{n: 1, c: 2, h: 2, w: 2, cout: 2, kh: 3, kw: 3, stride: 1, pad: 2, groups: 2, bias: true},  // taps that only see padding
}

// pathCases take each route through Conv2d once, each with a bias: im2col
// with the input gradient as a flipped convolution, im2col with col2im
// (strided), the direct depthwise loops, and the 1x1 gemm without im2col.
var pathCases = []convCase{
	{n: 2, c: 3, h: 5, w: 5, cout: 4, kh: 3, kw: 3, stride: 1, pad: 1, groups: 1, bias: true},
	{n: 2, c: 3, h: 6, w: 7, cout: 2, kh: 3, kw: 3, stride: 2, pad: 1, groups: 1, bias: true},
	{n: 2, c: 4, h: 6, w: 6, cout: 4, kh: 3, kw: 3, stride: 2, pad: 1, groups: 4, bias: true},
	{n: 2, c: 3, h: 4, w: 5, cout: 5, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1, bias: true},
}

// newConvCase draws x, w and b (nil without bias) in float64, requiring
// gradients.
func newConvCase(r *rand.Rand, tc convCase) (x, w, b *tensor.Tensor) {
	x = gradcheck.Rand64(r, tc.n, tc.c, tc.h, tc.w)
	w = gradcheck.Rand64(r, tc.cout, tc.c/tc.groups, tc.kh, tc.kw)
	if tc.bias {
		b = gradcheck.Rand64(r, tc.cout)
	}
	return x, w, b
}

// naiveConv2d is the convolution written out from its definition, the
// reference the im2col and direct paths are held to.
func naiveConv2d(x, w, b *tensor.Tensor, stride, pad, groups int) []float64 {
	n, cin, h, wd := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	cout, cg, kh, kw := w.Dim(0), w.Dim(1), w.Dim(2), w.Dim(3)
	oh, ow := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	coutg := cout / groups
	out := make([]float64, 0, n*cout*oh*ow)
	for i := 0; i < n; i++ {
		for oc := 0; oc < cout; oc++ {
			for y := 0; y < oh; y++ {
				for xo := 0; xo < ow; xo++ {
					s := 0.0
					if b != nil {
						s = b.At(oc)
					}
					for c := 0; c < cg; c++ {
						ic := oc/coutg*cg + c
						for ky := 0; ky < kh; ky++ {
							for kx := 0; kx < kw; kx++ {
								iy, ix := y*stride-pad+ky, xo*stride-pad+kx
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								s += x.At(((i*cin+ic)*h+iy)*wd+ix) * w.At(((oc*cg+c)*kh+ky)*kw+kx)
							}
						}
					}
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func TestConv2dForwardMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range convCases {
		t.Run(tc.String(), func(t *testing.T) {
			x, w, b := newConvCase(r, tc)
			got := Conv2d(x, w, b, tc.stride, tc.pad, tc.groups)
			oh, ow := (tc.h+2*tc.pad-tc.kh)/tc.stride+1, (tc.w+2*tc.pad-tc.kw)/tc.stride+1
			if want := []int{tc.n, tc.cout, oh, ow}; fmt.Sprint(got.Shape()) != fmt.Sprint(want) {
				t.Fatalf("shape %v, want %v", got.Shape(), want)
			}
			for i, v := range naiveConv2d(x, w, b, tc.stride, tc.pad, tc.groups) {
				if math.Abs(got.At(i)-v) > 1e-12*(1+math.Abs(v)) {
					t.Fatalf("element %d = %v, want %v", i, got.At(i), v)
				}
			}
		})
	}
}

// TestConv2dGradients checks every case's gradients against finite
// differences in float64, and its float32 results against float64.
func TestConv2dGradients(t *testing.T) {
	cases := make([]opCase, len(convCases))
	for i, tc := range convCases {
		shapes := [][]int{{tc.n, tc.c, tc.h, tc.w}, {tc.cout, tc.c / tc.groups, tc.kh, tc.kw}}
		if tc.bias {
			shapes = append(shapes, []int{tc.cout})
		}
		cases[i] = opCase{name: tc.String(), shapes: shapes, f: func(in []*tensor.Tensor) *tensor.Tensor {
			var b *tensor.Tensor
			if tc.bias {
				b = in[2]
			}
			return Conv2d(in[0], in[1], b, tc.stride, tc.pad, tc.groups)
		}}
	}
	runOpCases(t, cases)
}

// TestConv2dGradientsOnlyWhereNeeded checks that inputs outside the graph
// get no gradient and that each wanted one is still right without the
// others being computed.
func TestConv2dGradientsOnlyWhereNeeded(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range pathCases {
		for _, only := range []string{"x", "w", "b"} {
			t.Run(tc.String()+"_"+only, func(t *testing.T) {
				x, w, b := newConvCase(r, tc)
				all := map[string]*tensor.Tensor{"x": x, "w": w, "b": b}
				for name, v := range all {
					v.SetRequiresGrad(name == only)
				}
				gradcheck.Check(t, func() *tensor.Tensor { return Conv2d(x, w, b, tc.stride, tc.pad, tc.groups) }, []*tensor.Tensor{all[only]}, 40, 1e-6)
				for name, v := range all {
					if name != only && v.Grad != nil {
						t.Errorf("%s got a gradient it does not need", name)
					}
				}
			})
		}
	}
}

// TestConv2dGradientsAccumulate checks that a second backward pass adds to
// the gradients rather than overwriting them, as autograd requires of an
// input used twice.
func TestConv2dGradientsAccumulate(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range pathCases {
		x, w, b := newConvCase(r, tc)
		Conv2d(x, w, b, tc.stride, tc.pad, tc.groups).Backward()
		once := []*tensor.Tensor{x.Grad.Clone(), w.Grad.Clone(), b.Grad.Clone()}
		Conv2d(x, w, b, tc.stride, tc.pad, tc.groups).Backward()
		for k, v := range []*tensor.Tensor{x, w, b} {
			for i := range v.Len() {
				if got, want := v.Grad.At(i), 2*once[k].At(i); math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
					t.Fatalf("%v: input %d element %d = %v after two passes, want %v", tc, k, i, got, want)
				}
			}
		}
	}
}

// convResults32 runs Conv2d forward and backward in float32 on copies of
// x, w and b, returning the output and the gradients of x, w and b.
func convResults32(x, w, b, seed *tensor.Tensor, stride, pad, groups int) []*tensor.Tensor {
	xc, wc, bc := x.As(tensor.Float32).SetRequiresGrad(true), w.As(tensor.Float32).SetRequiresGrad(true), b.As(tensor.Float32).SetRequiresGrad(true)
	out := Conv2d(xc, wc, bc, stride, pad, groups)
	res := []*tensor.Tensor{out.Detach()}
	out.BackwardWith(seed.As(tensor.Float32))
	return append(res, xc.Grad, wc.Grad, bc.Grad)
}

// TestConv2dParallelDeterministic runs a batch large enough to be split
// across goroutines, with an odd worker count so the ranges are uneven: the
// same inputs must give the same bits, and agree with one goroutine.
func TestConv2dParallelDeterministic(t *testing.T) { convPaths(t, testConv2dParallelDeterministic) }

func testConv2dParallelDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []convCase{
		{n: 11, c: 8, h: 12, w: 12, cout: 8, kh: 3, kw: 3, stride: 1, pad: 1, groups: 1, bias: true},
		{n: 11, c: 8, h: 12, w: 12, cout: 8, kh: 3, kw: 3, stride: 2, pad: 1, groups: 8, bias: true},
		{n: 11, c: 8, h: 12, w: 12, cout: 16, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1, bias: true},
	} {
		x, w, b := newConvCase(r, tc)
		shape := Conv2d(x, w, b, tc.stride, tc.pad, tc.groups).Shape()
		seed := tensor.New(tensor.Float64, shape...)
		seed.FillNormal(r, 0, 1)
		run := func(procs int) []*tensor.Tensor {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			return convResults32(x, w, b, seed, tc.stride, tc.pad, tc.groups)
		}
		serial, first, second := run(1), run(3), run(3)
		for k := range serial {
			for i := range serial[k].Len() {
				if math.Float32bits(first[k].F32()[i]) != math.Float32bits(second[k].F32()[i]) {
					t.Fatalf("%v: result %d element %d differs between runs: %v, %v", tc, k, i, first[k].At(i), second[k].At(i))
				}
				if d := math.Abs(first[k].At(i) - serial[k].At(i)); d > 1e-4*(1+math.Abs(serial[k].At(i))) {
					t.Fatalf("%v: result %d element %d: parallel %v, serial %v", tc, k, i, first[k].At(i), serial[k].At(i))
				}
			}
		}
	}
}

func TestConv2dShapeMisuse(t *testing.T) {
	f32 := func(shape ...int) *tensor.Tensor { return tensor.Zeros(shape...) }
	for _, tc := range []struct {
		name                string
		x, w, b             *tensor.Tensor
		stride, pad, groups int
	}{
		{"input not 4-D", f32(3, 5, 5), f32(4, 3, 3, 3), nil, 1, 1, 1},
		{"weight not 4-D", f32(1, 3, 5, 5), f32(4, 27), nil, 1, 1, 1},
		{"channel mismatch", f32(1, 3, 5, 5), f32(4, 2, 3, 3), nil, 1, 1, 1},
		{"groups do not divide input", f32(1, 3, 5, 5), f32(4, 1, 3, 3), nil, 1, 1, 2},
		{"groups do not divide output", f32(1, 4, 5, 5), f32(3, 2, 3, 3), nil, 1, 1, 2},
		{"weight channels per group", f32(1, 4, 5, 5), f32(4, 4, 3, 3), nil, 1, 1, 2},
		{"bias length", f32(1, 3, 5, 5), f32(4, 3, 3, 3), f32(3), 1, 1, 1},
		{"bias rank", f32(1, 3, 5, 5), f32(4, 3, 3, 3), f32(4, 1), 1, 1, 1},
		{"mixed types", f32(1, 3, 5, 5), tensor.New(tensor.Float64, 4, 3, 3, 3), nil, 1, 1, 1},
		{"kernel larger than padded input", f32(1, 3, 2, 5), f32(4, 3, 5, 3), nil, 1, 1, 1},
		{"zero stride", f32(1, 3, 5, 5), f32(4, 3, 3, 3), nil, 0, 1, 1},
		{"negative pad", f32(1, 3, 5, 5), f32(4, 3, 3, 3), nil, 1, -1, 1},
		{"zero groups", f32(1, 3, 5, 5), f32(4, 3, 3, 3), nil, 1, 1, 0},
	} {
		panicsWithShapeError(t, tc.name, func() { Conv2d(tc.x, tc.w, tc.b, tc.stride, tc.pad, tc.groups) })
	}
}

// BenchmarkConv2dResNet20 times forward and backward of the three
// convolution shapes of a CIFAR ResNet-20 stage at batch 128, in float32.
func BenchmarkConv2dResNet20(b *testing.B) {
	for _, s := range []struct{ c, px int }{{16, 32}, {32, 16}, {64, 8}} {
		b.Run(fmt.Sprintf("C%d_%dpx", s.c, s.px), func(b *testing.B) {
			benchConv(b, convCase{n: 128, c: s.c, h: s.px, w: s.px, cout: s.c, kh: 3, kw: 3, stride: 1, pad: 1, groups: 1})
		})
	}
}

// BenchmarkConv2dOther times the other paths: strided downsampling, the
// 1x1 projection shortcut, and a depthwise conv.
func BenchmarkConv2dOther(b *testing.B) {
	for _, c := range []struct {
		name string
		tc   convCase
	}{
		{"3x3_stride2_16to32", convCase{n: 128, c: 16, h: 32, w: 32, cout: 32, kh: 3, kw: 3, stride: 2, pad: 1, groups: 1}},
		{"1x1_64", convCase{n: 128, c: 64, h: 8, w: 8, cout: 64, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1}},
		{"depthwise_64", convCase{n: 128, c: 64, h: 16, w: 16, cout: 64, kh: 3, kw: 3, stride: 1, pad: 1, groups: 64}},
	} {
		b.Run(c.name, func(b *testing.B) { benchConv(b, c.tc) })
	}
}

func benchConv(b *testing.B, tc convCase) {
	r := rand.New(rand.NewPCG(1, 1))
	x := tensor.Zeros(tc.n, tc.c, tc.h, tc.w)
	x.FillNormal(r, 0, 1)
	x.SetRequiresGrad(true)
	w := tensor.Zeros(tc.cout, tc.c/tc.groups, tc.kh, tc.kw)
	w.FillNormal(r, 0, 0.1)
	w.SetRequiresGrad(true)
	seed := Conv2d(x.Detach(), w.Detach(), nil, tc.stride, tc.pad, tc.groups)
	seed.Fill(1)
	for b.Loop() {
		x.ZeroGrad()
		w.ZeroGrad()
		Conv2d(x, w, nil, tc.stride, tc.pad, tc.groups).BackwardWith(seed)
	}
}
