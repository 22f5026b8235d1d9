package onednn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/srmlab/srmlab/onednn"
)

// refConv computes the convolution and its gradients by their definitions,
// in float64: y[n,o,i,j] = b[o] + Σ x[n,c,i·s−p+u,j·s−p+v]·w[o,c',u,v].
// With dy it returns dx, dw, db instead of y.
func refConv(g onednn.ConvGeom, x, w, b, dy []float32) (y, dx, dw, db []float64) {
	oh, ow := g.Out()
	cg, og := g.C/g.Groups, g.OC/g.Groups
	y = make([]float64, g.N*g.OC*oh*ow)
	dx, dw, db = make([]float64, len(x)), make([]float64, len(w)), make([]float64, g.OC)
	for n := range g.N {
		for o := range g.OC {
			for i := range oh {
				for j := range ow {
					yi := ((n*g.OC+o)*oh+i)*ow + j
					s := 0.0
					if b != nil {
						s = float64(b[o])
					}
					var gy float64
					if dy != nil {
						gy = float64(dy[yi])
						db[o] += gy
					}
					for c := range cg {
						ci := o/og*cg + c
						for u := range g.KH {
							for v := range g.KW {
								r, q := i*g.Stride-g.Pad+u, j*g.Stride-g.Pad+v
								if r < 0 || r >= g.H || q < 0 || q >= g.W {
									continue
								}
								xi, wi := ((n*g.C+ci)*g.H+r)*g.W+q, ((o*cg+c)*g.KH+u)*g.KW+v
								s += float64(x[xi]) * float64(w[wi])
								dx[xi] += gy * float64(w[wi])
								dw[wi] += gy * float64(x[xi])
							}
						}
					}
					y[yi] = s
				}
			}
		}
	}
	return
}

func random(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// relErr is max|got−want| / max|want|.
func relErr(got []float32, want []float64) float64 {
	var d, m float64
	for i, v := range want {
		d = math.Max(d, math.Abs(float64(got[i])-v))
		m = math.Max(m, math.Abs(v))
	}
	return d / math.Max(m, 1e-30)
}

var geoms = []onednn.ConvGeom{
	{N: 2, C: 3, H: 8, W: 8, OC: 16, KH: 3, KW: 3, Stride: 1, Pad: 1},
	{N: 3, C: 16, H: 8, W: 8, OC: 16, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true},
	{N: 2, C: 16, H: 9, W: 9, OC: 32, KH: 3, KW: 3, Stride: 2, Pad: 1},
	{N: 2, C: 32, H: 4, W: 4, OC: 64, KH: 1, KW: 1, Stride: 1, Pad: 0, Bias: true},
	{N: 2, C: 8, H: 7, W: 5, OC: 12, KH: 7, KW: 5, Stride: 3, Pad: 2},
	{N: 2, C: 16, H: 6, W: 6, OC: 16, KH: 3, KW: 3, Stride: 1, Pad: 1, Groups: 16},
	{N: 2, C: 8, H: 6, W: 6, OC: 4, KH: 3, KW: 3, Stride: 2, Pad: 0, Groups: 2, Bias: true},
	{N: 1, C: 4, H: 6, W: 6, OC: 4, KH: 6, KW: 6, Stride: 1, Pad: 0, Groups: 4},
	{N: 2, C: 16, H: 8, W: 8, OC: 16, KH: 3, KW: 3, Stride: 1, Pad: 1, Bias: true, ReLU: true},
}

func TestConv(t *testing.T) {
	if err := onednn.Available(); err != nil {
		t.Skip(err)
	}
	for _, g := range geoms {
		if g.Groups == 0 {
			g.Groups = 1
		}
		t.Run(fmt.Sprintf("%+v", g), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(g.C)))
			oh, ow := g.Out()
			x, w, dy := random(r, g.N*g.C*g.H*g.W), random(r, g.OC*g.C/g.Groups*g.KH*g.KW), random(r, g.N*g.OC*oh*ow)
			var b []float32
			if g.Bias {
				b = random(r, g.OC)
			}
			y := make([]float32, len(dy))
			if err := onednn.ConvForward(g, x, w, b, y, onednn.ConvLayouts{}); err != nil {
				t.Fatal(err)
			}
			want, _, _, _ := refConv(g, x, w, b, nil)
			if g.ReLU {
				for i, v := range want {
					want[i] = max(v, 0)
				}
			}
			_, dx, dw, db := refConv(g, x, w, b, dy)
			if e := relErr(y, want); e > 1e-5 {
				t.Errorf("forward: error %.2g", e)
			}
			// Gradients are added to what the buffers hold, unless told
			// they hold nothing.
			for _, set := range []bool{true, false} {
				gx, gw := random(r, len(x)), random(r, len(w))
				gb := make([]float32, len(b))
				wantX, wantW := make([]float64, len(dx)), make([]float64, len(dw))
				for i := range dx {
					wantX[i] = dx[i]
					if !set {
						wantX[i] += float64(gx[i])
					}
				}
				for i := range dw {
					wantW[i] = dw[i]
					if !set {
						wantW[i] += float64(gw[i])
					}
				}
				d := onednn.ConvGrads{X: gx, W: gw, B: gb, SetX: set, SetW: set}
				if !g.Bias {
					d.B = nil
				}
				if err := onednn.ConvBackward(g, x, w, dy, d, onednn.ConvLayouts{}); err != nil {
					t.Fatal(err)
				}
				if e := relErr(gx, wantX); e > 1e-5 {
					t.Errorf("set %v: input gradient: error %.2g", set, e)
				}
				if e := relErr(gw, wantW); e > 1e-5 {
					t.Errorf("set %v: weight gradient: error %.2g", set, e)
				}
				if g.Bias {
					if e := relErr(gb, db); e > 1e-5 {
						t.Errorf("bias gradient: error %.2g", e)
					}
				}
			}
			if g.Bias { // the bias's gradient alone, the weight's computed into scratch
				gb := make([]float32, g.OC)
				if err := onednn.ConvBackward(g, x, w, dy, onednn.ConvGrads{B: gb}, onednn.ConvLayouts{}); err != nil {
					t.Fatal(err)
				}
				if e := relErr(gb, db); e > 1e-5 {
					t.Errorf("bias gradient alone: error %.2g", e)
				}
			}
		})
	}
}

// TestConvDeterministic runs a training-sized convolution twice: oneDNN's
// reductions must give the same bits.
func TestConvDeterministic(t *testing.T) {
	if err := onednn.Available(); err != nil {
		t.Skip(err)
	}
	g := onednn.ConvGeom{N: 32, C: 16, H: 32, W: 32, OC: 16, KH: 3, KW: 3, Stride: 1, Pad: 1, Groups: 1}
	r := rand.New(rand.NewPCG(3, 4))
	x, w, dy := random(r, 32*16*32*32), random(r, 16*16*9), random(r, 32*16*32*32)
	run := func() (y, dx, dw []float32) {
		y, dx, dw = make([]float32, len(dy)), make([]float32, len(x)), make([]float32, len(w))
		if err := onednn.ConvForward(g, x, w, nil, y, onednn.ConvLayouts{}); err != nil {
			t.Fatal(err)
		}
		if err := onednn.ConvBackward(g, x, w, dy, onednn.ConvGrads{X: dx, W: dw, SetX: true, SetW: true}, onednn.ConvLayouts{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	y1, dx1, dw1 := run()
	y2, dx2, dw2 := run()
	if !slices.Equal(y1, y2) || !slices.Equal(dx1, dx2) || !slices.Equal(dw1, dw2) {
		t.Errorf("two runs differ")
	}
}

func TestConvErrors(t *testing.T) {
	if err := onednn.Available(); err != nil {
		t.Skip(err)
	}
	g := onednn.ConvGeom{N: 1, C: 2, H: 4, W: 4, OC: 2, KH: 3, KW: 3, Stride: 1, Pad: 1, Groups: 1}
	x, w, y := make([]float32, 32), make([]float32, 36), make([]float32, 32)
	for _, c := range []struct {
		name string
		err  error
	}{
		{"short input", onednn.ConvForward(g, x[:31], w, nil, y, onednn.ConvLayouts{})},
		{"bias without one", onednn.ConvForward(g, x, w, make([]float32, 2), y, onednn.ConvLayouts{})},
		{"bad geometry", onednn.ConvForward(onednn.ConvGeom{N: 1, C: 3, H: 4, W: 4, OC: 2, KH: 3, KW: 3, Stride: 1, Groups: 2}, x, w, nil, y, onednn.ConvLayouts{})},
		{"bias gradient without one", onednn.ConvBackward(g, x, w, y, onednn.ConvGrads{B: make([]float32, 2)}, onednn.ConvLayouts{})},
	} {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// blocked converts an (n, c, h, w) map to Blocked16, or back.
func blocked(t *testing.T, s []float32, n, c, h, w int, to bool) []float32 {
	out := make([]float32, len(s))
	if err := onednn.Reorder16(out, s, n, c, h, w, to); err != nil {
		t.Fatal(err)
	}
	return out
}

// A convolution whose maps are handed over in Blocked16 computes what it
// computes in NCHW, and Blocked16 is the layout the convolutions choose
// for 16k channels (which checks the format tag srmlab names it by).
func TestConvBlocked16(t *testing.T) {
	if err := onednn.Available(); err != nil {
		t.Skip(err)
	}
	g := onednn.ConvGeom{N: 2, C: 16, H: 9, W: 9, OC: 32, KH: 3, KW: 3, Stride: 2, Pad: 1, Groups: 1}
	oh, ow := g.Out()
	for _, f := range []func(onednn.ConvGeom) (onednn.Layout, error){onednn.ConvOutLayout, onednn.ConvGradLayout} {
		if lay, err := f(g); err != nil || lay != onednn.Blocked16 {
			t.Fatalf("native layout %v, %v; want Blocked16", lay, err)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	x, w, dy := random(r, g.N*g.C*g.H*g.W), random(r, g.OC*g.C*g.KH*g.KW), random(r, g.N*g.OC*oh*ow)
	y, dx, dw := make([]float32, len(dy)), make([]float32, len(x)), make([]float32, len(w))
	if err := onednn.ConvForward(g, x, w, nil, y, onednn.ConvLayouts{}); err != nil {
		t.Fatal(err)
	}
	if err := onednn.ConvBackward(g, x, w, dy, onednn.ConvGrads{X: dx, W: dw, SetX: true, SetW: true}, onednn.ConvLayouts{}); err != nil {
		t.Fatal(err)
	}
	all := onednn.ConvLayouts{X: onednn.Blocked16, Y: onednn.Blocked16, DX: onednn.Blocked16, DY: onednn.Blocked16}
	xb, dyb := blocked(t, x, g.N, g.C, g.H, g.W, true), blocked(t, dy, g.N, g.OC, oh, ow, true)
	yb, dxb, dwb := make([]float32, len(y)), make([]float32, len(x)), make([]float32, len(w))
	if err := onednn.ConvForward(g, xb, w, nil, yb, all); err != nil {
		t.Fatal(err)
	}
	// dx added to twice: set, then added, in Blocked16.
	for _, set := range []bool{true, false} {
		if err := onednn.ConvBackward(g, xb, w, dyb, onednn.ConvGrads{X: dxb, W: dwb, SetX: set, SetW: true}, all); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(blocked(t, yb, g.N, g.OC, oh, ow, false), y) || !slices.Equal(dwb, dw) {
		t.Fatal("blocked forward or weight gradient differs from NCHW's")
	}
	for i, v := range blocked(t, dxb, g.N, g.C, g.H, g.W, false) {
		if v != 2*dx[i] {
			t.Fatalf("blocked dx[%d] = %v after two passes, want 2×%v", i, v, dx[i])
		}
	}
}
