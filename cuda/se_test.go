package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refSE is SEGate and its gradient in float64.
type refSE struct {
	n, c, h                int
	p, w1, b1, w2, b2, dg  []float64
	hidden, gate           []float64
	dp, dw1, db1, dw2, db2 []float64
}

func (r *refSE) run() {
	n, c, h := r.n, r.c, r.h
	r.hidden, r.gate = make([]float64, n*h), make([]float64, n*c)
	r.dp, r.dw1, r.db1, r.dw2, r.db2 = make([]float64, n*c), make([]float64, h*c), make([]float64, h), make([]float64, c*h), make([]float64, c)
	for s := range n {
		for j := range h {
			v := r.b1[j]
			for k := range c {
				v += r.w1[j*c+k] * r.p[s*c+k]
			}
			r.hidden[s*h+j] = math.Max(v, 0)
		}
		ds := make([]float64, c)
		for k := range c {
			v := r.b2[k]
			for j := range h {
				v += r.w2[k*h+j] * r.hidden[s*h+j]
			}
			g := 1 / (1 + math.Exp(-v))
			r.gate[s*c+k] = g
			ds[k] = r.dg[s*c+k] * g * (1 - g)
			r.db2[k] += ds[k]
			for j := range h {
				r.dw2[k*h+j] += ds[k] * r.hidden[s*h+j]
			}
		}
		for j := range h {
			var v float64
			for k := range c {
				v += r.w2[k*h+j] * ds[k]
			}
			if r.hidden[s*h+j] <= 0 {
				v = 0
			}
			r.db1[j] += v
			for k := range c {
				r.dw1[j*c+k] += v * r.p[s*c+k]
				r.dp[s*c+k] += r.w1[j*c+k] * v
			}
		}
	}
}

func TestSEGateEmulated(t *testing.T) {
	emu := emulator(t)
	rng := rand.New(rand.NewPCG(7, 8))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	wide := func(v []float32) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	for _, s := range []struct{ n, c, h int }{{3, 5, 2}, {2, 37, 9}, {1, 300, 40}, {4, 8, 1}} {
		t.Run(fmt.Sprintf("%dx%d h%d", s.n, s.c, s.h), func(t *testing.T) {
			d, drv, _ := openFake(t)
			drv.emulator = emu
			n, c, h := s.n, s.c, s.h
			p, w1, b1, w2, b2, dg := rnd(n*c), rnd(h*c), rnd(h), rnd(c*h), rnd(c), rnd(n*c)
			r := &refSE{n: n, c: c, h: h, p: wide(p), w1: wide(w1), b1: wide(b1), w2: wide(w2), b2: wide(b2), dg: wide(dg)}
			r.run()
			pb, w1b, b1b, w2b, b2b, dgb := devFloats(t, d, p), devFloats(t, d, w1), devFloats(t, d, b1), devFloats(t, d, w2), devFloats(t, d, b2), devFloats(t, d, dg)
			hid, gate := devFloats(t, d, make([]float32, n*h)), devFloats(t, d, make([]float32, n*c))
			if err := d.SEGate(pb, w1b, b1b, w2b, b2b, hid, gate, n, c, h); err != nil {
				t.Fatal(err)
			}
			seClose(t, "gate", hostFloats(t, gate, n*c), r.gate, nil)
			seClose(t, "hidden", hostFloats(t, hid, n*h), r.hidden, nil)
			for _, acc := range []bool{false, true} {
				prior := map[string][]float32{"dp": rnd(n * c), "dw1": rnd(h * c), "db1": rnd(h), "dw2": rnd(c * h), "db2": rnd(c)}
				bufs := map[string]*Buffer{}
				for k, v := range prior {
					bufs[k] = devFloats(t, d, v)
				}
				if err := d.SEGateBackward(pb, w1b, w2b, hid, gate, dgb, bufs["dp"], bufs["dw1"], bufs["db1"], bufs["dw2"], bufs["db2"], n, c, h, acc, acc); err != nil {
					t.Fatal(err)
				}
				want := map[string][]float64{"dp": r.dp, "dw1": r.dw1, "db1": r.db1, "dw2": r.dw2, "db2": r.db2}
				for k, w := range want {
					var base []float32
					if acc {
						base = prior[k]
					}
					seClose(t, fmt.Sprintf("%s accumulate=%v", k, acc), hostFloats(t, bufs[k], len(w)), w, base)
				}
			}
			// Without an input gradient the parameters' come out the same.
			dw1, db1, dw2, db2 := devFloats(t, d, make([]float32, h*c)), devFloats(t, d, make([]float32, h)), devFloats(t, d, make([]float32, c*h)), devFloats(t, d, make([]float32, c))
			if err := d.SEGateBackward(pb, w1b, w2b, hid, gate, dgb, nil, dw1, db1, dw2, db2, n, c, h, false, false); err != nil {
				t.Fatal(err)
			}
			seClose(t, "dw1 without dp", hostFloats(t, dw1, h*c), r.dw1, nil)
			seClose(t, "db2 without dp", hostFloats(t, db2, c), r.db2, nil)
			if drv.emuErr != nil {
				t.Fatal(drv.emuErr)
			}
		})
	}
	d, _, _ := openFake(t)
	b, _ := d.AllocFloat32(8)
	if err := d.SEGate(b, b, b, b, b, b, b, 1, 8, 2000); err == nil {
		t.Error("a bottleneck wider than the kernel takes was accepted")
	}
	if err := d.SEGate(b, b, b, b, b, b, b, 3, 4, 2); err == nil {
		t.Error("buffers too small were accepted")
	}
}

// seClose checks got against base + want at relative error 1e-5.
func seClose(t *testing.T, what string, got []float32, want []float64, base []float32) {
	t.Helper()
	var diff, scale float64
	for i, w := range want {
		if base != nil {
			w += float64(base[i])
		}
		diff = math.Max(diff, math.Abs(float64(got[i])-w))
		scale = math.Max(scale, math.Abs(w))
	}
	if rel := diff / math.Max(scale, 1e-30); rel > 1e-5 {
		t.Errorf("%s: relative error %.2e", what, rel)
	}
}
