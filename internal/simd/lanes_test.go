package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// laneData is a run of rows and per-lane parameters for the lane kernels.
// A case with a mask puts NaN and ±Inf into g where it is closed, and one
// with specials a few into s, so that the tests see what the masks must
// hide and what must pass through; without a mask g stays finite, so that
// the unmasked sums are compared as numbers.
type laneData struct {
	s, g, x, mask, short []float32
	k, mu64              [Lanes]float64
	a, b, gm, mu, kk     [Lanes]float32
}

func newLaneData(r *rand.Rand, rows int) laneData {
	n := rows * Lanes
	d := laneData{
		s: randSlice[float32](r, n, 1, 2), g: randSlice[float32](r, n, 0, 1), x: randSlice[float32](r, n, 0.3, 1),
		mask: randMask[float32](r, n), short: randSlice[float32](r, n, 0, 1),
	}
	for l := range Lanes {
		d.k[l], d.mu64[l] = float64(d.s[l]), r.NormFloat64()
		d.a[l], d.b[l] = float32(r.NormFloat64()), float32(r.NormFloat64())
		d.gm[l], d.mu[l], d.kk[l] = float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	return d
}

// laneRows is the lengths, in rows, the tests run: one row, a few, an odd
// count, and a long run.
var laneRows = []int{1, 2, 7, 65, 1025}

// lane gathers lane l of s's rows into a plane; nil stays nil.
func lane(s []float32, l int) []float32 {
	if s == nil {
		return nil
	}
	p := make([]float32, len(s)/Lanes)
	for i := range p {
		p[i] = s[i*Lanes+l]
	}
	return p
}

// laneCase is one combination of the options the kernels take.
type laneCase struct {
	rows      int
	mask      bool // LaneGradSums and LaneGradRun under a mask, or nil
	relu      bool
	overwrite bool
	specials  bool // NaN and ±Inf in the affine maps' inputs
}

func laneCases() []laneCase {
	var cs []laneCase
	for _, rows := range laneRows {
		for i := range 8 {
			cs = append(cs, laneCase{rows: rows, mask: i&1 != 0, relu: i&2 != 0, overwrite: i&4 != 0, specials: i == 7})
		}
	}
	return cs
}

func (c laneCase) String() string {
	return fmt.Sprintf("rows=%d mask=%v relu=%v overwrite=%v specials=%v", c.rows, c.mask, c.relu, c.overwrite, c.specials)
}

// data is the case's operands; mask is nil unless the case has one.
func (c laneCase) data(r *rand.Rand) (d laneData, mask []float32) {
	d = newLaneData(r, c.rows)
	if c.specials {
		withSpecials(d.s)
		withSpecials(d.short)
	}
	if c.mask {
		mask = d.mask
		poison(r, d.g, mask)
	}
	return d, mask
}

// Each lane kernel computes, lane by lane, what the plane kernel computes
// on that lane's values with that lane's parameters: the sums within
// float64 rounding (another order), the float32 results to the bit, on
// each implementation. This is what makes BatchNorm in the blocked layout
// the planar BatchNorm.
func TestLanesMatchPlanes(t *testing.T) {
	impls(t, func(t testing.TB) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, c := range laneCases() {
			d, mask := c.data(r)
			n := c.rows * Lanes
			var sum, sq, gsum, dot [Lanes]float64
			LaneShiftedSums(d.s, &d.k, &sum, &sq)
			out := make([]float32, n)
			LaneGradSums(d.g, d.x, mask, out, &d.mu64, &gsum, &dot)
			aff, add := make([]float32, n), make([]float32, n)
			LaneAffine(aff, d.s, &d.a, &d.b, c.relu)
			LaneAffineAdd(add, d.s, d.short, &d.a, &d.b, c.relu)
			run := append([]float32(nil), d.short...)
			LaneGradRun(run, d.g, d.x, mask, &d.gm, &d.mu, &d.kk, &d.a, c.overwrite)
			for l := range Lanes {
				what := fmt.Sprintf("%v lane %d", c, l)
				s, g, x, m, sh := lane(d.s, l), lane(d.g, l), lane(d.x, l), lane(mask, l), lane(d.short, l)
				s1, s2 := ShiftedSums(s, d.k[l])
				g1, g2 := GradSums(g, x, m, d.mu64[l])
				var abs1, abs2, absg, absd float64
				for i := range s {
					e := float64(s[i]) - d.k[l]
					abs1, abs2 = abs1+math.Abs(e), abs2+e*e
					gi := refMasked(g, m, i)
					absg, absd = absg+math.Abs(gi), absd+math.Abs(gi*(float64(x[i])-d.mu64[l]))
				}
				if math.IsNaN(gsum[l]+dot[l]) || math.IsInf(gsum[l]+dot[l], 0) {
					t.Fatalf("%s: gradient sums %v %v not finite: the masks hide every special", what, gsum[l], dot[l])
				}
				if !sameSum(sum[l], s1, abs1) || !sameSum(sq[l], s2, abs2) || !sameSum(gsum[l], g1, absg) || !sameSum(dot[l], g2, absd) {
					t.Fatalf("%s: sums %v %v %v %v, planes %v %v %v %v", what, sum[l], sq[l], gsum[l], dot[l], s1, s2, g1, g2)
				}
				want := make([]float32, len(s))
				copy(want, g)
				if m != nil {
					Mask(want, g, m)
				}
				sameBits(t, what+": LaneGradSums' g'", lane(out, l), want)
				Affine(want, s, d.a[l], d.b[l], c.relu)
				sameBits(t, what+": LaneAffine", lane(aff, l), want)
				AffineAddTo(want, s, sh, d.a[l], d.b[l], c.relu)
				sameBits(t, what+": LaneAffineAdd", lane(add, l), want)
				copy(want, sh)
				GradRun(want, g, x, m, d.gm[l], d.mu[l], d.kk[l], d.a[l], c.overwrite)
				sameBits(t, what+": LaneGradRun", lane(run, l), want)
			}
		}
	})
}

// sameSum is closeSum where both sums are finite, and otherwise the same
// NaN-ness or infinity.
func sameSum(got, want, abs float64) bool {
	if math.IsNaN(want) || math.IsInf(want, 0) {
		return got == want || math.IsNaN(got) && math.IsNaN(want)
	}
	return closeSum(got, want, abs)
}

// The vector code gives the loops' sums to the bit (same order, same
// fused steps) starting from what the arrays hold, the loops' masked
// gradient to the bit, the float32 results within a rounding or two
// (fused against separate multiply and add), and writes nothing past the
// rows. dx may be g.
func TestLaneVectorMatchesGo(t *testing.T) {
	if !useAVX2 {
		t.Skip("no vector code on this machine")
	}
	defer func() { useAVX2 = true }()
	r := rand.New(rand.NewPCG(13, 14))
	for _, c := range laneCases() {
		d, mask := c.data(r)
		n := c.rows * Lanes
		type result struct {
			sum, sq, gsum, dot [Lanes]float64
			out, aff, add, run []float32
			inPlace            []float32
		}
		var res [2]result
		for i, vec := range []bool{false, true} {
			useAVX2 = vec
			q := &res[i]
			q.sum[3], q.sq[4], q.gsum[5], q.dot[6] = 0.25, 2, -1, 0.5 // the sums add to what is there
			LaneShiftedSums(d.s, &d.k, &q.sum, &q.sq)
			q.out = make([]float32, n)
			LaneGradSums(d.g, d.x, mask, q.out, &d.mu64, &q.gsum, &q.dot)
			var after, keep []float32
			q.aff, q.add = make([]float32, n+8)[:n], make([]float32, n+8)[:n]
			after, keep = pastEnd(q.aff)
			LaneAffine(q.aff, d.s, &d.a, &d.b, c.relu)
			checkPastEnd(t, c.String()+": LaneAffine", after, keep)
			after, keep = pastEnd(q.add)
			LaneAffineAdd(q.add, d.s, d.short, &d.a, &d.b, c.relu)
			checkPastEnd(t, c.String()+": LaneAffineAdd", after, keep)
			q.run = append(append([]float32(nil), d.short...), make([]float32, 8)...)[:n]
			after, keep = pastEnd(q.run)
			LaneGradRun(q.run, d.g, d.x, mask, &d.gm, &d.mu, &d.kk, &d.a, c.overwrite)
			checkPastEnd(t, c.String()+": LaneGradRun", after, keep)
			// dx is g: in place, the values into a separate dx.
			q.inPlace = append([]float32(nil), d.g...)
			want := append([]float32(nil), d.g...)
			LaneGradRun(want, d.g, d.x, mask, &d.gm, &d.mu, &d.kk, &d.a, c.overwrite)
			LaneGradRun(q.inPlace, q.inPlace, d.x, mask, &d.gm, &d.mu, &d.kk, &d.a, c.overwrite)
			sameBits(t, c.String()+": LaneGradRun in place", q.inPlace, want)
		}
		p, v := res[0], res[1]
		for l := range Lanes {
			if !sameBits64(p.sum[l], v.sum[l]) || !sameBits64(p.sq[l], v.sq[l]) || !sameBits64(p.gsum[l], v.gsum[l]) || !sameBits64(p.dot[l], v.dot[l]) {
				t.Fatalf("%v lane %d: sums go %v %v %v %v, avx2 %v %v %v %v", c, l, p.sum[l], p.sq[l], p.gsum[l], p.dot[l], v.sum[l], v.sq[l], v.gsum[l], v.dot[l])
			}
		}
		sameBits(t, c.String()+": LaneGradSums' g'", v.out, p.out)
		for j := range n {
			l := j % Lanes
			what := fmt.Sprintf("%v (avx2 against go)", c)
			affScale := math.Abs(float64(d.s[j])*float64(d.a[l])) + math.Abs(float64(d.b[l]))
			check(t, what+" LaneAffine", j, v.aff[j], float64(p.aff[j]), affScale)
			check(t, what+" LaneAffineAdd", j, v.add[j], float64(p.add[j]), affScale+math.Abs(float64(d.short[j])))
			g := math.Abs(refMasked(d.g, mask, j))
			runScale := (g + math.Abs(float64(d.gm[l])) + (math.Abs(float64(d.x[j]))+math.Abs(float64(d.mu[l])))*math.Abs(float64(d.kk[l]))) * math.Abs(float64(d.a[l]))
			runOld, inPlaceOld := 0.0, 0.0 // what dx held, where it is added to
			if !c.overwrite {
				runOld, inPlaceOld = math.Abs(float64(d.short[j])), math.Abs(float64(d.g[j]))
			}
			check(t, what+" LaneGradRun", j, v.run[j], float64(p.run[j]), runScale+runOld)
			check(t, what+" LaneGradRun in place", j, v.inPlace[j], float64(p.inPlace[j]), runScale+inPlaceOld)
		}
	}
}

// sameBits64 is whether a and b are the same float64, NaNs alike.
func sameBits64(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
}

// A closed mask hides NaN and ±Inf exactly: the sums and the gradient get
// 0 from them, and a finite result stays finite, on each implementation.
func TestLanesMaskHidesSpecials(t *testing.T) {
	impls(t, func(t testing.TB) {
		for _, rows := range laneRows {
			n := rows * Lanes
			g, x, mask := make([]float32, n), make([]float32, n), make([]float32, n)
			specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
			closed := []float32{0, float32(math.Copysign(0, -1)), -1, float32(math.NaN())}
			for j := range g {
				g[j], x[j], mask[j] = specials[j%3], 1, closed[j%4]
			}
			var zero, sum, dot [Lanes]float64
			out := make([]float32, n)
			LaneGradSums(g, x, mask, out, &zero, &sum, &dot)
			for l := range Lanes {
				if sum[l] != 0 || dot[l] != 0 {
					t.Fatalf("rows=%d lane %d: sums of a closed mask %v, %v", rows, l, sum[l], dot[l])
				}
			}
			var gm, mu, k, a [Lanes]float32
			for l := range Lanes {
				gm[l], mu[l], k[l], a[l] = 0.5, 0.25, 2, 3
			}
			dx := make([]float32, n)
			LaneGradRun(dx, g, x, mask, &gm, &mu, &k, &a, true)
			for j := range n {
				if math.Float32bits(out[j]) != 0 || dx[j] != (0-0.5-(1-0.25)*2)*3 {
					t.Fatalf("rows=%d: [%d] g' = %v, dx = %v behind mask %v with g %v", rows, j, out[j], dx[j], mask[j], g[j])
				}
			}
		}
	})
}

// A length that is not whole rows panics, in every kernel.
func TestLanesWantWholeRows(t *testing.T) {
	var a, b [Lanes]float32
	var k, s, q [Lanes]float64
	for name, f := range map[string]func(n int){
		"LaneShiftedSums": func(n int) { LaneShiftedSums(make([]float32, n), &k, &s, &q) },
		"LaneAffine":      func(n int) { LaneAffine(make([]float32, n), make([]float32, n), &a, &b, false) },
		"LaneAffineAdd": func(n int) {
			LaneAffineAdd(make([]float32, n), make([]float32, n), make([]float32, n), &a, &b, true)
		},
		"LaneGradSums": func(n int) { LaneGradSums(make([]float32, n), make([]float32, n), nil, nil, &k, &s, &q) },
		"LaneGradRun": func(n int) {
			LaneGradRun(make([]float32, n), make([]float32, n), make([]float32, n), nil, &a, &a, &a, &b, true)
		},
	} {
		impls(t, func(t testing.TB) {
			for _, n := range []int{1, 8, 17, 40} {
				func() {
					defer func() {
						if recover() == nil {
							t.Errorf("%s took %d values", name, n)
						}
					}()
					f(n)
				}()
			}
			f(0) // no rows is whole rows
		})
	}
}

// laneBenchRows is the benchmarks' run: 128·1024 rows of 16 lanes, 8 MiB
// per operand, past the caches as a feature map is. The planar kernels
// run on the same values as 16 planes of 128·1024, one per channel, for
// the GB/s of the same BatchNorm step in either layout.
const laneBenchRows = 128 * 1024

// laneBench runs blocked, the lane kernel, and planar, the plane kernel
// over the 16 planes, on each implementation, at bytesPer bytes moved per
// value.
func laneBench(b *testing.B, bytesPer int, blocked func(d *laneData), planar func(d *laneData, plane func(s []float32, p int) []float32)) {
	d := newLaneData(rand.New(rand.NewPCG(1, 1)), laneBenchRows)
	plane := func(s []float32, p int) []float32 { return s[p*laneBenchRows : (p+1)*laneBenchRows] }
	for _, layout := range []string{"blocked", "planar"} {
		b.Run(layout, func(b *testing.B) {
			impls(b, func(testing.TB) {
				b.Run(map[bool]string{false: "go", true: "avx2"}[useAVX2], func(b *testing.B) {
					b.SetBytes(int64(bytesPer * laneBenchRows * Lanes))
					for b.Loop() {
						if layout == "blocked" {
							blocked(&d)
						} else {
							planar(&d, plane)
						}
					}
				})
			})
		})
	}
}

func BenchmarkLaneShiftedSums(b *testing.B) {
	var sum, sq [Lanes]float64
	laneBench(b, 4, func(d *laneData) {
		LaneShiftedSums(d.s, &d.k, &sum, &sq)
	}, func(d *laneData, plane func([]float32, int) []float32) {
		for p := range Lanes {
			s, q := ShiftedSums(plane(d.s, p), d.k[p])
			sink += s + q
		}
	})
}

func BenchmarkLaneAffine(b *testing.B) {
	dst := make([]float32, laneBenchRows*Lanes)
	laneBench(b, 8, func(d *laneData) {
		LaneAffine(dst, d.s, &d.a, &d.b, true)
	}, func(d *laneData, plane func([]float32, int) []float32) {
		for p := range Lanes {
			Affine(plane(dst, p), plane(d.s, p), d.a[p], d.b[p], true)
		}
	})
}

func BenchmarkLaneAffineAdd(b *testing.B) {
	dst := make([]float32, laneBenchRows*Lanes)
	laneBench(b, 12, func(d *laneData) {
		LaneAffineAdd(dst, d.s, d.short, &d.a, &d.b, true)
	}, func(d *laneData, plane func([]float32, int) []float32) {
		for p := range Lanes {
			AffineAddTo(plane(dst, p), plane(d.s, p), plane(d.short, p), d.a[p], d.b[p], true)
		}
	})
}

func BenchmarkLaneGradSums(b *testing.B) {
	var sum, dot [Lanes]float64
	laneBench(b, 12, func(d *laneData) {
		LaneGradSums(d.g, d.x, d.mask, nil, &d.mu64, &sum, &dot)
	}, func(d *laneData, plane func([]float32, int) []float32) {
		for p := range Lanes {
			s, q := GradSums(plane(d.g, p), plane(d.x, p), plane(d.mask, p), d.mu64[p])
			sink += s + q
		}
	})
}

func BenchmarkLaneGradRun(b *testing.B) {
	dx := make([]float32, laneBenchRows*Lanes)
	laneBench(b, 16, func(d *laneData) {
		LaneGradRun(dx, d.g, d.x, d.mask, &d.gm, &d.mu, &d.kk, &d.a, true)
	}, func(d *laneData, plane func([]float32, int) []float32) {
		for p := range Lanes {
			GradRun(plane(dx, p), plane(d.g, p), plane(d.x, p), plane(d.mask, p), d.gm[p], d.mu[p], d.kk[p], d.a[p], true)
		}
	})
}
