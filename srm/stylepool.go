package srm

import (
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/srmlab/srmlab/internal/kern"
	"github.com/srmlab/srmlab/internal/parallel"
	"github.com/srmlab/srmlab/internal/simd"
	"github.com/srmlab/srmlab/op"
	"github.com/srmlab/srmlab/tensor"
)

// Pooling is a set of per-channel statistics for SRM's style pooling. The
// official module uses PoolAvg|PoolStd; the paper's ablation also tries max
// pooling, alone and in combination.
type Pooling uint8

const (
	PoolAvg Pooling = 1 << iota // channel mean
	PoolStd                     // channel standard deviation
	PoolMax                     // channel maximum

	// OfficialPooling is the pooling of the paper and the official code.
	OfficialPooling = PoolAvg | PoolStd
)

// StyleEps is added to the variance before the square root, as in the
// official code, so the gradient stays finite on constant planes (a dead
// ReLU channel is one).
const StyleEps = 1e-5

var poolNames = [...]string{"avg", "std", "max"}

// Len returns the number of statistics per channel, the k of StylePool's
// (N, C, k) result.
func (p Pooling) Len() int { return bits.OnesCount8(uint8(p & (PoolAvg | PoolStd | PoolMax))) }

// String spells p as in a model name, in the fixed order avg, std, max that
// StylePool also uses for its features.
func (p Pooling) String() string {
	var parts []string
	for i, name := range poolNames {
		if p&(1<<i) != 0 {
			parts = append(parts, name)
		}
	}
	return strings.Join(parts, "+")
}

// ParsePooling reads a "+"-joined set of avg, std and max, in any order.
func ParsePooling(s string) (Pooling, error) {
	var p Pooling
	for _, part := range strings.Split(s, "+") {
		i := indexOf(poolNames[:], part)
		if i < 0 {
			return 0, fmt.Errorf("srm: unknown pooling %q in %q (want a + joined set of avg, std, max)", part, s)
		}
		if p&(1<<i) != 0 {
			return 0, fmt.Errorf("srm: pooling %q repeated in %q", part, s)
		}
		p |= 1 << i
	}
	return p, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// StylePool is SRM's style pooling, fused into one pass per channel plane:
// for x of shape (N, C, H, W) it returns (N, C, k) holding, for each
// statistic in p in the order avg, std, max, that statistic of the H·W
// values of plane (n, c). std = sqrt(var + StyleEps), where var divides by
// H·W−1 as torch.std does in the official code, or by H·W when biased (the
// paper's equation). Unbiased pooling of a 1x1 map has no variance and
// panics with a *tensor.ShapeError, as does an empty p.
func StylePool(x *tensor.Tensor, p Pooling, biased bool) *tensor.Tensor {
	if x.Rank() != 4 {
		tensor.Panicf("StylePool: input %v is not (N, C, H, W)", x.Shape())
	}
	if p.Len() == 0 || p&^(PoolAvg|PoolStd|PoolMax) != 0 {
		tensor.Panicf("StylePool: invalid pooling set %#x", uint8(p))
	}
	if hw := x.Dim(2) * x.Dim(3); p&PoolStd != 0 && !biased && hw < 2 {
		tensor.Panicf("StylePool: the unbiased standard deviation of a %dx%d feature map is undefined (H·W must be at least 2; use a larger input or biased variance)", x.Dim(2), x.Dim(3))
	}
	if d := op.DeviceOf("StylePool", x); d != nil {
		return stylePoolDevice(d, x, p, biased)
	}
	if x.DType() == tensor.Float64 {
		return stylePool[float64](x, p, biased)
	}
	if tensor.IsBlocked16(x) && p&PoolMax == 0 {
		return stylePoolBlocked(x, p, biased)
	}
	return stylePool[float32](x, p, biased)
}

// styleRow writes a plane's mean and std, those p pools, into its row f
// of the pooled features, from its mean m and Σ(x − m)² q, and returns the
// std (0 unless pooled) and where the max goes in f.
func styleRow[T kern.Float](f []T, p Pooling, m, q, den float64) (std float64, j int) {
	if p&PoolAvg != 0 {
		f[j] = T(m)
		j++
	}
	if p&PoolStd != 0 {
		std = math.Sqrt(q/den + StyleEps)
		f[j] = T(std)
		j++
	}
	return std, j
}

// styleGrads is a plane's gradient through its mean and std from g, its
// row of the features' gradient: dx_i += gAvg + gStd·(x_i − mean), with
// dstd/dx_i = (x_i − mean) / (den · std); j is where the max's is in g.
func styleGrads[T kern.Float](g []T, p Pooling, hw, den, std float64) (gAvg, gStd float64, j int) {
	if p&PoolAvg != 0 {
		gAvg = float64(g[j]) / hw
		j++
	}
	if p&PoolStd != 0 {
		gStd = float64(g[j]) / (den * std)
		j++
	}
	return gAvg, gStd, j
}

func stylePool[T kern.Float](x *tensor.Tensor, p Pooling, biased bool) *tensor.Tensor {
	n, c, hw := x.Dim(0), x.Dim(1), x.Dim(2)*x.Dim(3)
	k := p.Len()
	out := tensor.New(x.DType(), n, c, k)
	xs, ts := kern.Vals[T](x), kern.Vals[T](out)
	den := float64(hw - 1)
	if biased {
		den = float64(hw)
	}
	// The backward pass reuses each plane's mean, std and argmax.
	mean := make([]float64, n*c)
	std := make([]float64, n*c)
	argmax := make([]int, n*c)
	parallel.For(n*c, 3*hw, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			v := xs[pl*hw : (pl+1)*hw]
			// One pass for both moments: sums of x−k and (x−k)² in
			// float64 around the plane's first value k, as BatchNorm
			// does. x−k is on the scale of the spread, so Σ(x−k)² −
			// Σ(x−k)·d does not cancel catastrophically as Σx² − n·m²
			// can when the mean is large against the spread, and one
			// pass serves where two (mean, then squared deviations) did.
			sk := 0.0
			if hw > 0 {
				sk = float64(v[0])
			}
			s1, s2 := simd.ShiftedSums(v, sk)
			m, q := simd.Moments(sk, s1, s2, float64(hw))
			mean[pl] = m
			f := ts[pl*k : (pl+1)*k]
			var j int
			std[pl], j = styleRow(f, p, m, q, den)
			if p&PoolMax != 0 {
				am := 0
				for i, a := range v {
					if a > v[am] {
						am = i
					}
				}
				argmax[pl] = am
				f[j] = v[am]
			}
		}
	})
	tensor.Record(out, func(grad *tensor.Tensor) {
		gs, gx := kern.Vals[T](grad), kern.Vals[T](tensor.GradOf(x))
		parallel.For(n*c, 2*hw, func(lo, hi int) {
			for pl := lo; pl < hi; pl++ {
				g := gs[pl*k : (pl+1)*k]
				v, d := xs[pl*hw:(pl+1)*hw], gx[pl*hw:(pl+1)*hw]
				gAvg, gStd, j := styleGrads(g, p, float64(hw), den, std[pl])
				if gAvg != 0 || gStd != 0 {
					// d += gAvg + gStd·(x−m) as x·gStd + (gAvg − gStd·m),
					// the offset in float64 and rounded once, as
					// BatchNorm's affine step.
					simd.AffineAdd(d, v, T(gStd), T(gAvg-gStd*mean[pl]))
				}
				if p&PoolMax != 0 {
					d[argmax[pl]] += g[j]
				}
			}
		})
	}, x)
	return out
}
