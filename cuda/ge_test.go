package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refGE is GEGate and its gradient in float64.
func refGE(s BNShape, z, gamma, beta, rm, rv, dg []float64, training bool, mom, eps float64) (gate, newRM, newRV, dz, dgamma, dbeta []float64) {
	n := s.Len()
	gate, dz = make([]float64, n), make([]float64, n)
	newRM, newRV = append([]float64(nil), rm...), append([]float64(nil), rv...)
	dgamma, dbeta = make([]float64, s.C), make([]float64, s.C)
	m := float64(s.N * s.HW)
	at := func(i, c, p int) int { return (i*s.C+c)*s.HW + p }
	for c := range s.C {
		mean, v := rm[c], rv[c]
		if training {
			var sum, q float64
			for i := range s.N {
				for p := range s.HW {
					sum += z[at(i, c, p)]
				}
			}
			mean = sum / m
			for i := range s.N {
				for p := range s.HW {
					q += (z[at(i, c, p)] - mean) * (z[at(i, c, p)] - mean)
				}
			}
			v = q / m
			newRM[c] = (1-mom)*rm[c] + mom*mean
			newRV[c] = (1-mom)*rv[c] + mom*q/(m-1)
		}
		r := 1 / math.Sqrt(v+eps)
		var sdy, sdyz float64
		zh := map[int]float64{}
		dy := map[int]float64{}
		for i := range s.N {
			for p := range s.HW {
				k := at(i, c, p)
				zh[k] = (z[k] - mean) * r
				g := 1 / (1 + math.Exp(-(gamma[c]*zh[k] + beta[c])))
				gate[k] = g
				dy[k] = dg[k] * g * (1 - g)
				sdy += dy[k]
				sdyz += dy[k] * zh[k]
			}
		}
		dgamma[c], dbeta[c] = sdyz, sdy
		for k := range zh {
			dz[k] = gamma[c] * r * (dy[k] - sdy/m - zh[k]*sdyz/m)
		}
	}
	return
}

func TestGEGateEmulated(t *testing.T) {
	emu := emulator(t)
	rng := rand.New(rand.NewPCG(9, 10))
	rnd := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
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
	for _, s := range []BNShape{{4, 3, 1}, {2, 300, 1}, {3, 5, 4}, {5, 2, 9}} {
		for _, training := range []bool{true, false} {
			t.Run(fmt.Sprintf("%dx%dx%d training=%v", s.N, s.C, s.HW, training), func(t *testing.T) {
				d, drv, _ := openFake(t)
				drv.emulator = emu
				n, c := s.Len(), s.C
				z, gm, bt, rm, rv, dg := rnd(n, 5, 8), rnd(c, 0.5, 1.5), rnd(c, -0.5, 0.5), rnd(c, -1, 1), rnd(c, 0.5, 2), rnd(n, -1, 1)
				gate, newRM, newRV, dz, dgamma, dbeta := refGE(s, wide(z), wide(gm), wide(bt), wide(rm), wide(rv), wide(dg), training, 0.1, 1e-5)
				zb, gb, bb, rmb, rvb, dgb := devFloats(t, d, z), devFloats(t, d, gm), devFloats(t, d, bt), devFloats(t, d, rm), devFloats(t, d, rv), devFloats(t, d, dg)
				out, zh, rs := devFloats(t, d, make([]float32, n)), devFloats(t, d, make([]float32, n)), devFloats(t, d, make([]float32, c))
				if !training {
					zh, rs = nil, nil
				}
				if err := d.GEGate(s, zb, gb, bb, rmb, rvb, out, zh, rs, 0.1, 1e-5, training); err != nil {
					t.Fatal(err)
				}
				seClose(t, "gate", hostFloats(t, out, n), gate, nil)
				seClose(t, "running mean", hostFloats(t, rmb, c), newRM, nil)
				seClose(t, "running var", hostFloats(t, rvb, c), newRV, nil)
				if !training {
					return
				}
				for _, acc := range []bool{false, true} {
					dz0, dg0, db0 := rnd(n, -1, 1), rnd(c, -1, 1), rnd(c, -1, 1)
					dzb, dgmb, dbtb := devFloats(t, d, dz0), devFloats(t, d, dg0), devFloats(t, d, db0)
					if err := d.GEGateBackward(s, out, zh, rs, gb, dgb, dzb, dgmb, dbtb, acc, acc); err != nil {
						t.Fatal(err)
					}
					base := func(v []float32) []float32 {
						if acc {
							return v
						}
						return nil
					}
					seClose(t, fmt.Sprintf("dz accumulate=%v", acc), hostFloats(t, dzb, n), dz, base(dz0))
					seClose(t, fmt.Sprintf("dgamma accumulate=%v", acc), hostFloats(t, dgmb, c), dgamma, base(dg0))
					seClose(t, fmt.Sprintf("dbeta accumulate=%v", acc), hostFloats(t, dbtb, c), dbeta, base(db0))
				}
				if drv.emuErr != nil {
					t.Fatal(drv.emuErr)
				}
			})
		}
	}
	d, _, _ := openFake(t)
	b, _ := d.AllocFloat32(4)
	if err := d.GEGate(BNShape{1, 4, 1}, b, b, b, b, b, b, b, b, 0.1, 1e-5, true); err == nil {
		t.Error("training on one value per channel was accepted")
	}
}
