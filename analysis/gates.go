package analysis

import (
	"context"
	"math"
	"strings"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/tensor"
)

// GateRow is the distribution of one channel's gate over the test images of
// one class or one domain: a line of gates.csv.
type GateRow struct {
	Model string `csv:"model"`
	Data  string `csv:"data"`
	Seed  uint64 `csv:"seed"`
	// Block is the residual block, e.g. "layer3.2".
	Block   string `csv:"block"`
	Channel int    `csv:"channel"`
	// By is "class" or "domain", Group the class or domain name.
	By    string  `csv:"by"`
	Group string  `csv:"group"`
	N     int     `csv:"n"`
	Mean  float64 `csv:"mean"`
	SD    float64 `csv:"sd"`
}

// GateVarRow says, for one block, how much its gates move with the class
// of an image and how much with its style (domain): a line of
// gate_variance.csv. The SRM paper's claim is that SRM's gates follow
// style; on the bundled domains set, where class is shape and domain is
// style, DomainVar > ClassVar is the signature of that.
type GateVarRow struct {
	Model string `csv:"model"`
	Data  string `csv:"data"`
	Seed  uint64 `csv:"seed"`
	Block string `csv:"block"`
	// ClassVar and DomainVar are the between-group variances of the gate,
	// averaged over the block's channels (see BetweenVariance).
	ClassVar  float64 `csv:"class_var"`
	DomainVar float64 `csv:"domain_var"`
	// TotalVar is the gate's variance over all test images, averaged over
	// channels: the scale that makes ClassVar and DomainVar comparable
	// across blocks and modules (their shares of it, like η²).
	TotalVar float64 `csv:"total_var"`
}

// moments accumulates a gate's count, sum and sum of squares per group.
type moments struct{ n, s, ss []float64 }

func newMoments(groups int) moments {
	return moments{make([]float64, groups), make([]float64, groups), make([]float64, groups)}
}

func (m moments) add(g int, v float64) { m.n[g]++; m.s[g] += v; m.ss[g] += v * v }

// total returns the sample variance over all groups together.
func (m moments) total() float64 {
	var n, s, ss float64
	for g := range m.n {
		n, s, ss = n+m.n[g], s+m.s[g], ss+m.ss[g]
	}
	if n < 2 {
		return 0
	}
	return (ss - s*s/n) / (n - 1)
}

// group returns a group's count, mean and sample standard deviation.
func (m moments) group(g int) (n int, mean, sd float64) {
	if m.n[g] == 0 {
		return 0, 0, 0
	}
	mean = m.s[g] / m.n[g]
	if m.n[g] > 1 {
		v := (m.ss[g] - m.n[g]*mean*mean) / (m.n[g] - 1)
		if v > 0 {
			sd = math.Sqrt(v)
		}
	}
	return int(m.n[g]), mean, sd
}

// BetweenVariance is the variance of the group means of a value (the
// groups being all there are: divided by their number G) less the part
// that sampling noise alone puts there in expectation, (G−1)/G times the
// mean of sd²/n over groups: one-way ANOVA's estimate of the between-group
// component. Without the correction
// ten classes of few images each would look more variable than four
// domains of many images just for being smaller. It can come out slightly
// below zero when the groups do not differ.
func BetweenVariance(n []int, mean, sd []float64) float64 {
	var means []float64
	var noise float64
	for g := range n {
		if n[g] == 0 {
			continue
		}
		means = append(means, mean[g])
		noise += sd[g] * sd[g] / float64(n[g])
	}
	if len(means) == 0 {
		return 0
	}
	g := float64(len(means))
	return popVariance(means) - (g-1)/g*noise/g
}

// GateStats measures the gates of tr's model over its test split, per
// class and, for data with domains, per domain: every channel's mean and
// sd in each group (GateRow) and each block's between-class and
// between-domain variance (GateVarRow).
func GateStats(ctx context.Context, tr *Trained, batch int) ([]GateRow, []GateVarRow, error) {
	m, test := tr.Model, tr.Data.Test
	sites := m.Recalibrators()
	classes, domains := test.Classes(), test.Domains()
	byClass := make([][]moments, len(sites)) // [site][channel]
	byDomain := make([][]moments, len(sites))
	err := eachBatch(ctx, m, test, tr.Recipe.TestTransform(), batch, func(b *datasets.Batch, _ *tensor.Tensor) error {
		for i, s := range sites {
			g, c := channelGates(s.Module.Gates())
			if byClass[i] == nil {
				for ch := 0; ch < c; ch++ {
					byClass[i] = append(byClass[i], newMoments(len(classes)))
					byDomain[i] = append(byDomain[i], newMoments(len(domains)))
				}
			}
			for j, v := range g {
				byClass[i][j%c].add(b.Labels[j/c], v)
				if domains != nil {
					byDomain[i][j%c].add(b.Domains[j/c], v)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var rows []GateRow
	var vars []GateVarRow
	for i, s := range sites {
		block := strings.TrimSuffix(s.Name, ".rclb")
		row := GateRow{Model: tr.Run.Model, Data: tr.Run.Data, Seed: tr.Run.Seed, Block: block}
		v := GateVarRow{Model: row.Model, Data: row.Data, Seed: row.Seed, Block: block}
		for ch := range byClass[i] {
			row.Channel = ch
			v.ClassVar += emit(&rows, row, "class", classes, byClass[i][ch])
			v.TotalVar += byClass[i][ch].total()
			if domains != nil {
				v.DomainVar += emit(&rows, row, "domain", domains, byDomain[i][ch])
			}
		}
		v.ClassVar /= float64(len(byClass[i]))
		v.DomainVar /= float64(len(byClass[i]))
		v.TotalVar /= float64(len(byClass[i]))
		vars = append(vars, v)
	}
	return rows, vars, nil
}

// emit appends one channel's per-group rows and returns its between-group
// variance.
func emit(rows *[]GateRow, row GateRow, by string, names []string, m moments) float64 {
	n := make([]int, len(names))
	mean := make([]float64, len(names))
	sd := make([]float64, len(names))
	row.By = by
	for g, name := range names {
		n[g], mean[g], sd[g] = m.group(g)
		if n[g] == 0 {
			continue
		}
		row.Group, row.N, row.Mean, row.SD = name, n[g], mean[g], sd[g]
		*rows = append(*rows, row)
	}
	return BetweenVariance(n, mean, sd)
}
