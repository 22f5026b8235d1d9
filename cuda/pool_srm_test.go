package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// styleSet is a subset of {avg, std, max}.
type styleSet struct{ avg, std, max bool }

func (s styleSet) String() string {
	var parts []string
	for i, on := range []bool{s.avg, s.std, s.max} {
		if on {
			parts = append(parts, []string{"avg", "std", "max"}[i])
		}
	}
	return strings.Join(parts, "+")
}

func (s styleSet) k() int { _, k := styleMask(s.avg, s.std, s.max); return k }

func allStyleSets() []styleSet {
	var out []styleSet
	for m := 1; m < 8; m++ {
		out = append(out, styleSet{m&1 != 0, m&2 != 0, m&4 != 0})
	}
	return out
}

// refStyle is srm/stylepool.go's statistics of each plane and the argmax,
// with the first of equal maxima winning (v > best, so a NaN never does
// unless it comes first).
func refStyle(x []float32, planes, L int, s styleSet, biased bool) (t []float64, mean, std []float64, arg []int) {
	den := float64(L - 1)
	if biased {
		den = float64(L)
	}
	k := s.k()
	t, mean, std, arg = make([]float64, planes*k), make([]float64, planes), make([]float64, planes), make([]int, planes)
	for p := range planes {
		v := x[p*L : (p+1)*L]
		var sum float64
		for _, a := range v {
			sum += float64(a)
		}
		mean[p] = sum / float64(L)
		var q float64
		for _, a := range v {
			q += (float64(a) - mean[p]) * (float64(a) - mean[p])
		}
		std[p] = math.Sqrt(q/den + 1e-5)
		for i, a := range v {
			if a > v[arg[p]] {
				arg[p] = i
			}
		}
		f := t[p*k : (p+1)*k]
		j := 0
		if s.avg {
			f[j] = mean[p]
			j++
		}
		if s.std {
			f[j] = std[p]
			j++
		}
		if s.max {
			f[j] = float64(v[arg[p]])
		}
	}
	return t, mean, std, arg
}

func refStyleBackward(x, dt, dx0 []float32, planes, L int, s styleSet, biased, accumulate bool) []float64 {
	den := float64(L - 1)
	if biased {
		den = float64(L)
	}
	_, mean, std, arg := refStyle(x, planes, L, s, biased)
	k := s.k()
	dx := poolGradBase(dx0, accumulate)
	for p := range planes {
		g := dt[p*k : (p+1)*k]
		j := 0
		var ga, gs float64
		if s.avg {
			ga = float64(g[j]) / float64(L)
			j++
		}
		if s.std {
			gs = float64(g[j]) / (den * std[p])
			j++
		}
		for i := range L {
			dx[p*L+i] += ga + gs*(float64(x[p*L+i])-mean[p])
		}
		if s.max {
			dx[p*L+arg[p]] += float64(g[j])
		}
	}
	return dx
}

func TestStylePoolEmulated(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	type shape struct{ planes, h, w int }
	for _, sh := range []shape{{10, 5, 6}, {3, 1, 2}, {9, 7, 7}, {2, 33, 33}} {
		for _, set := range allStyleSets() {
			for _, biased := range []bool{false, true} {
				name := fmt.Sprintf("%dx%dx%d %v biased=%v", sh.planes, sh.h, sh.w, set, biased)
				if sh.h*sh.w > 1024 && !(set == styleSet{true, true, true}) && set.k() != 1 {
					continue // the block variant: every statistic alone and all three together
				}
				t.Run(name, func(t *testing.T) {
					d := poolDevice(t)
					L, k := sh.h*sh.w, set.k()
					x := poolRand(rng, sh.planes*L, 2, 4) // an offset mean, for the two-pass variance
					if set.max && sh.planes > 3 {
						copy(x, poolTied(rng, L)) // a plane of tied maxima
					}
					xb, tb := devFloats(t, d, x), devFloats(t, d, make([]float32, sh.planes*k))
					if err := d.StylePool(xb, tb, sh.planes, L, set.avg, set.std, set.max, biased); err != nil {
						t.Fatal(err)
					}
					want, _, _, _ := refStyle(x, sh.planes, L, set, biased)
					poolClose(t, "t", hostFloats(t, tb, sh.planes*k), want)
					for _, acc := range []bool{false, true} {
						dt, dx0 := poolRand(rng, sh.planes*k, -1, 1), poolRand(rng, sh.planes*L, -1, 1)
						dtb, dxb := devFloats(t, d, dt), devFloats(t, d, dx0)
						if err := d.StylePoolBackward(xb, dtb, dxb, sh.planes, L, set.avg, set.std, set.max, biased, acc); err != nil {
							t.Fatal(err)
						}
						poolClose(t, fmt.Sprintf("dx accumulate=%v", acc), hostFloats(t, dxb, sh.planes*L),
							refStyleBackward(x, dt, dx0, sh.planes, L, set, biased, acc))
					}
				})
			}
		}
	}
}

// TestStylePoolMaxNaN: srm's max takes a NaN only as a plane's first value.
func TestStylePoolMaxNaN(t *testing.T) {
	nan := float32(math.NaN())
	for _, variant := range []struct{ h, w int }{{2, 3}, {33, 33}} {
		d := poolDevice(t)
		L := variant.h * variant.w
		x := make([]float32, 2*L)
		x[1], x[4] = nan, 7 // plane 0: NaN ignored, 7 wins
		x[L], x[L+2] = nan, 9
		xb, tb := devFloats(t, d, x), devFloats(t, d, make([]float32, 2))
		if err := d.StylePool(xb, tb, 2, L, false, false, true, false); err != nil {
			t.Fatal(err)
		}
		if got := hostFloats(t, tb, 2); got[0] != 7 || !math.IsNaN(float64(got[1])) {
			t.Errorf("%dx%d: max %v, want [7 NaN]", variant.h, variant.w, got)
		}
	}
}

func TestStylePoolArgumentErrors(t *testing.T) {
	d, _, _ := openFake(t)
	b, _ := d.AllocFloat32(100)
	small, _ := d.AllocFloat32(4)
	for _, e := range []struct {
		err  error
		want string
	}{
		{d.StylePool(b, b, 4, 1, true, true, false, false), "unbiased standard deviation"},
		{d.StylePool(b, b, 4, 5, false, false, false, false), "no statistic"},
		{d.StylePool(b, small, 4, 5, true, true, false, false), "t holds 4"},
		{d.StylePool(small, b, 4, 5, true, false, false, false), "x holds 4"},
		{d.StylePoolBackward(b, small, b, 4, 5, true, true, true, true, false), "dt holds 4"},
		{d.StylePoolBackward(b, b, small, 4, 5, true, false, false, true, false), "dx holds 4"},
	} {
		if e.err == nil || !strings.Contains(e.err.Error(), e.want) {
			t.Errorf("error %v, want one saying %q", e.err, e.want)
		}
	}
	if err := d.StylePool(b, b, 4, 1, true, true, true, true); err != nil {
		t.Errorf("biased statistics of 1x1 planes: %v", err)
	}
}

func TestCFCEmulated(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, sz := range []struct{ n, c, k int }{{3, 5, 2}, {2, 3, 3}, {1, 1, 1}, {3, 5, 40}, {2, 9, 49}} {
		for _, bias := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dx%dx%d bias=%v", sz.n, sz.c, sz.k, bias), func(t *testing.T) {
				d := poolDevice(t)
				n, c, k := sz.n, sz.c, sz.k
				tv, w, bv := poolRand(rng, n*c*k, -1, 1), poolRand(rng, c*k, -1, 1), poolRand(rng, c, -1, 1)
				tb, wb, zb := devFloats(t, d, tv), devFloats(t, d, w), devFloats(t, d, make([]float32, n*c))
				var bb *Buffer
				if bias {
					bb = devFloats(t, d, bv)
				}
				if err := d.CFC(tb, wb, bb, zb, n, c, k); err != nil {
					t.Fatal(err)
				}
				want := make([]float64, n*c)
				for p := range want {
					ch := p % c
					for j := range k {
						want[p] += float64(w[ch*k+j]) * float64(tv[p*k+j])
					}
					if bias {
						want[p] += float64(bv[ch])
					}
				}
				poolClose(t, "z", hostFloats(t, zb, n*c), want)

				dz := poolRand(rng, n*c, -1, 1)
				dzb := devFloats(t, d, dz)
				for _, acc := range []bool{false, true} {
					dt0, dw0, db0 := poolRand(rng, n*c*k, -1, 1), poolRand(rng, c*k, -1, 1), poolRand(rng, c, -1, 1)
					dtb, dwb, dbb := devFloats(t, d, dt0), devFloats(t, d, dw0), devFloats(t, d, db0)
					if err := d.CFCBackward(tb, wb, dzb, dtb, dwb, dbb, n, c, k, acc, !acc); err != nil {
						t.Fatal(err)
					}
					dt, dw, db := poolGradBase(dt0, acc), poolGradBase(dw0, !acc), poolGradBase(db0, !acc)
					for p := range n * c {
						ch := p % c
						for j := range k {
							dt[p*k+j] += float64(dz[p]) * float64(w[ch*k+j])
							dw[ch*k+j] += float64(dz[p]) * float64(tv[p*k+j])
						}
						db[ch] += float64(dz[p])
					}
					what := fmt.Sprintf(" accT=%v accParams=%v", acc, !acc)
					poolClose(t, "dt"+what, hostFloats(t, dtb, n*c*k), dt)
					poolClose(t, "dw"+what, hostFloats(t, dwb, c*k), dw)
					poolClose(t, "db"+what, hostFloats(t, dbb, c), db)
				}
			})
		}
	}
}

// TestCFCBackwardSkips: nil gradients are neither written nor launched.
func TestCFCBackwardSkips(t *testing.T) {
	d := poolDevice(t)
	n, c, k := 2, 3, 2
	rng := rand.New(rand.NewPCG(11, 12))
	tb, wb, dzb := devFloats(t, d, poolRand(rng, n*c*k, -1, 1)), devFloats(t, d, poolRand(rng, c*k, -1, 1)), devFloats(t, d, poolRand(rng, n*c, -1, 1))
	sentinel := []float32{42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42}
	dtb, dwb, dbb := devFloats(t, d, sentinel), devFloats(t, d, sentinel[:c*k]), devFloats(t, d, sentinel[:c])
	if err := d.CFCBackward(tb, wb, dzb, nil, dwb, nil, n, c, k, false, false); err != nil {
		t.Fatal(err)
	}
	if got := hostFloats(t, dbb, c); got[0] != 42 {
		t.Errorf("db written: %v", got)
	}
	if got := hostFloats(t, dwb, c*k); got[0] == 42 {
		t.Errorf("dw not written: %v", got)
	}
	if err := d.CFCBackward(tb, wb, dzb, nil, nil, nil, n, c, k, false, false); err != nil {
		t.Fatal(err)
	}
	if err := d.CFCBackward(tb, wb, dzb, dtb, nil, nil, n, c, k, false, false); err != nil {
		t.Fatal(err)
	}
	if got := hostFloats(t, dtb, n*c*k); got[0] == 42 {
		t.Errorf("dt not written: %v", got)
	}
	for _, e := range []struct {
		err  error
		want string
	}{
		{d.CFC(tb, wb, devFloats(t, d, []float32{1, 2}), dzb, n, c, k), "b holds 2"},
		{d.CFC(tb, dbb, nil, dzb, n, c, k), "w holds 3"},
		{d.CFCBackward(tb, wb, dzb, dtb, dwb, dbb, n, c, 0, false, false), "k = 0"},
		{d.CFCBackward(tb, wb, dzb, dbb, nil, nil, n, c, k, false, false), "dt holds 3"},
	} {
		if e.err == nil || !strings.Contains(e.err.Error(), e.want) {
			t.Errorf("error %v, want one saying %q", e.err, e.want)
		}
	}
}

func TestSubsamplePadEmulated(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, s := range []struct{ n, c, h, w, stride, cout int }{
		{2, 3, 7, 6, 2, 5}, {2, 3, 8, 8, 2, 6}, {1, 4, 5, 5, 1, 4}, {2, 2, 7, 9, 3, 4}, {1, 1, 1, 1, 2, 3},
	} {
		t.Run(fmt.Sprintf("%+v", s), func(t *testing.T) {
			d := poolDevice(t)
			oh, ow := (s.h-1)/s.stride+1, (s.w-1)/s.stride+1
			in, out := s.n*s.c*s.h*s.w, s.n*s.cout*oh*ow
			x := poolRand(rng, in, -1, 1)
			xb, yb := devFloats(t, d, x), devFloats(t, d, poolRand(rng, out, 5, 6))
			if err := d.SubsamplePad(xb, yb, s.n, s.c, s.h, s.w, s.stride, s.cout); err != nil {
				t.Fatal(err)
			}
			// each calls f(output index, input index) for the outputs that
			// come from input channels, as srm/shortcut.go.
			each := func(f func(o, i int)) {
				for b := range s.n {
					for ch := range s.c {
						for i := range oh {
							for j := range ow {
								f(((b*s.cout+ch)*oh+i)*ow+j, ((b*s.c+ch)*s.h+i*s.stride)*s.w+j*s.stride)
							}
						}
					}
				}
			}
			want := make([]float64, out)
			each(func(o, i int) { want[o] = float64(x[i]) })
			poolClose(t, "y", hostFloats(t, yb, out), want)
			for _, acc := range []bool{false, true} {
				dy, dx0 := poolRand(rng, out, -1, 1), poolRand(rng, in, -1, 1)
				dyb, dxb := devFloats(t, d, dy), devFloats(t, d, dx0)
				if err := d.SubsamplePadBackward(dyb, dxb, s.n, s.c, s.h, s.w, s.stride, s.cout, acc); err != nil {
					t.Fatal(err)
				}
				want := poolGradBase(dx0, acc)
				each(func(o, i int) { want[i] += float64(dy[o]) })
				poolClose(t, fmt.Sprintf("dx accumulate=%v", acc), hostFloats(t, dxb, in), want)
			}
		})
	}
	d, _, _ := openFake(t)
	b, _ := d.AllocFloat32(1000)
	small, _ := d.AllocFloat32(4)
	for _, e := range []struct {
		err  error
		want string
	}{
		{d.SubsamplePad(b, b, 2, 5, 4, 4, 2, 3), "3 output channels for 5"},
		{d.SubsamplePad(b, small, 2, 3, 4, 4, 2, 5), "y holds 4"},
		{d.SubsamplePad(b, b, 2, 3, 4, 4, 0, 5), "stride = 0"},
		{d.SubsamplePadBackward(small, b, 2, 3, 4, 4, 2, 5, false), "dy holds 4"},
	} {
		if e.err == nil || !strings.Contains(e.err.Error(), e.want) {
			t.Errorf("error %v, want one saying %q", e.err, e.want)
		}
	}
}
