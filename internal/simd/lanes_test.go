package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// laneData is a run of rows and per-lane parameters for the lane kernels.
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
	poison(r, d.g, d.mask)
	for l := range Lanes {
		d.k[l], d.mu64[l] = float64(d.s[l]), r.NormFloat64()
		d.a[l], d.b[l] = float32(r.NormFloat64()), float32(r.NormFloat64())
		d.gm[l], d.mu[l], d.kk[l] = float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	return d
}

// lane gathers lane l of s's rows into a plane.
func lane(s []float32, l int) []float32 {
	p := make([]float32, len(s)/Lanes)
	for i := range p {
		p[i] = s[i*Lanes+l]
	}
	return p
}

// Each lane kernel computes, lane by lane, what the plane kernel computes
// on that lane's values with that lane's parameters: the sums within
// float64 rounding (another order), the float32 results to the bit.
func TestLanesMatchPlanes(t *testing.T) {
	impls(t, func(t testing.TB) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, rows := range []int{1, 2, 7, 65} {
			d := newLaneData(r, rows)
			n := rows * Lanes
			var sum, sq, gsum, dot [Lanes]float64
			LaneShiftedSums(d.s, &d.k, &sum, &sq)
			LaneGradSums(d.g, d.x, d.mask, nil, &d.mu64, &gsum, &dot)
			aff, add, run, acc := make([]float32, n), make([]float32, n), make([]float32, n), append([]float32(nil), d.short...)
			LaneAffine(aff, d.s, &d.a, &d.b, true)
			LaneAffineAdd(add, d.s, d.short, &d.a, &d.b, true)
			LaneGradRun(run, d.g, d.x, d.mask, &d.gm, &d.mu, &d.kk, &d.a, true)
			LaneGradRun(acc, d.g, d.x, d.mask, &d.gm, &d.mu, &d.kk, &d.a, false)
			for l := range Lanes {
				s, g, x, m, sh := lane(d.s, l), lane(d.g, l), lane(d.x, l), lane(d.mask, l), lane(d.short, l)
				s1, s2 := ShiftedSums(s, d.k[l])
				g1, g2 := GradSums(g, x, m, d.mu64[l])
				var abs1, abs2, absg, absd float64
				for i := range s {
					e := float64(s[i]) - d.k[l]
					abs1, abs2 = abs1+math.Abs(e), abs2+e*e
					gi := refMasked(g, m, i)
					absg, absd = absg+math.Abs(gi), absd+math.Abs(gi*(float64(x[i])-d.mu64[l]))
				}
				if !closeSum(sum[l], s1, abs1) || !closeSum(sq[l], s2, abs2) || !closeSum(gsum[l], g1, absg) || !closeSum(dot[l], g2, absd) {
					t.Fatalf("rows %d lane %d: sums %v %v %v %v, planes %v %v %v %v", rows, l, sum[l], sq[l], gsum[l], dot[l], s1, s2, g1, g2)
				}
				want := make([]float32, len(s))
				Affine(want, s, d.a[l], d.b[l], true)
				sameBits(t, "LaneAffine", lane(aff, l), want)
				AffineAddTo(want, s, sh, d.a[l], d.b[l], true)
				sameBits(t, "LaneAffineAdd", lane(add, l), want)
				GradRun(want, g, x, m, d.gm[l], d.mu[l], d.kk[l], d.a[l], true)
				sameBits(t, "LaneGradRun", lane(run, l), want)
				copy(want, sh)
				GradRun(want, g, x, m, d.gm[l], d.mu[l], d.kk[l], d.a[l], false)
				sameBits(t, "LaneGradRun adding", lane(acc, l), want)
			}
		}
	})
}

// The vector code gives the loops' sums to the bit (same order, same
// fused steps), and writes nothing past the rows; dx may be g.
func TestLaneVectorMatchesGo(t *testing.T) {
	if !useAVX2 {
		t.Skip("no vector code on this machine")
	}
	defer func() { useAVX2 = true }()
	r := rand.New(rand.NewPCG(13, 14))
	d := newLaneData(r, 33)
	type result struct {
		sum, sq, gsum, dot [Lanes]float64
		nomask             [2][Lanes]float64
		aff, run, masked   []float32
	}
	var res [2]result
	for i, vec := range []bool{false, true} {
		useAVX2 = vec
		q := &res[i]
		q.sum[3], q.gsum[5] = 0.25, -1 // the sums add to what is there
		LaneShiftedSums(d.s, &d.k, &q.sum, &q.sq)
		q.masked = make([]float32, len(d.g))
		LaneGradSums(d.g, d.x, d.mask, q.masked, &d.mu64, &q.gsum, &q.dot)
		LaneGradSums(d.x, d.s, nil, nil, &d.mu64, &q.nomask[0], &q.nomask[1])
		buf := make([]float32, len(d.s)+8)
		q.aff = buf[:len(d.s)]
		after, keep := pastEnd(q.aff)
		LaneAffine(q.aff, d.s, &d.a, &d.b, false)
		checkPastEnd(t, "LaneAffine", after, keep)
		q.run = append([]float32(nil), d.g...) // dx is g
		LaneGradRun(q.run, q.run, d.x, d.mask, &d.gm, &d.mu, &d.kk, &d.a, true)
	}
	p, v := res[0], res[1]
	if p.sum != v.sum || p.sq != v.sq || p.gsum != v.gsum || p.dot != v.dot || p.nomask != v.nomask {
		t.Fatalf("sums differ: go %v %v %v %v, avx2 %v %v %v %v", p.sum, p.sq, p.gsum, p.dot, v.sum, v.sq, v.gsum, v.dot)
	}
	for j, g := range d.g {
		if want := float32(refMasked(d.g, d.mask, j)); math.Float32bits(p.masked[j]) != math.Float32bits(want) || math.Float32bits(v.masked[j]) != math.Float32bits(want) {
			t.Fatalf("LaneGradSums' masked g [%d] = %v (go), %v (avx2); g %v, mask %v", j, p.masked[j], v.masked[j], g, d.mask[j])
		}
	}
	for j := range p.aff {
		scale := math.Abs(float64(d.s[j]*d.a[j%Lanes])) + math.Abs(float64(d.b[j%Lanes]))
		if math.Abs(float64(p.aff[j]-v.aff[j])) > 2*0x1p-24*scale {
			t.Fatalf("LaneAffine [%d]: go %v, avx2 %v", j, p.aff[j], v.aff[j])
		}
		l := j % Lanes
		g := refMasked(d.g, d.mask, j)
		scale = (math.Abs(g) + math.Abs(float64(d.gm[l])) + math.Abs(float64((d.x[j]-d.mu[l])*d.kk[l]))) * math.Abs(float64(d.a[l]))
		if !(math.Abs(float64(p.run[j]-v.run[j])) <= 4*0x1p-24*scale) { // NaN fails
			t.Fatalf("LaneGradRun [%d]: go %v, avx2 %v", j, p.run[j], v.run[j])
		}
	}
}

func TestLanesWantWholeRows(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("LaneAffine took 17 values")
		}
	}()
	var a, b [Lanes]float32
	LaneAffine(make([]float32, 17), make([]float32, 17), &a, &b, false)
}

func BenchmarkLaneAffine(b *testing.B) {
	d := newLaneData(rand.New(rand.NewPCG(1, 1)), 8192)
	dst := make([]float32, len(d.s))
	b.SetBytes(int64(8 * len(dst)))
	for b.Loop() {
		LaneAffine(dst, d.s, &d.a, &d.b, true)
	}
}

func BenchmarkLaneGradSums(b *testing.B) {
	d := newLaneData(rand.New(rand.NewPCG(1, 1)), 8192)
	var s, dot [Lanes]float64
	b.SetBytes(int64(12 * len(d.g)))
	for b.Loop() {
		LaneGradSums(d.g, d.x, d.mask, nil, &d.mu64, &s, &dot)
	}
}

func BenchmarkLaneGradRun(b *testing.B) {
	d := newLaneData(rand.New(rand.NewPCG(1, 1)), 8192)
	dx := make([]float32, len(d.g))
	b.SetBytes(int64(16 * len(dx)))
	for b.Loop() {
		LaneGradRun(dx, d.g, d.x, d.mask, &d.gm, &d.mu, &d.kk, &d.a, true)
	}
}
