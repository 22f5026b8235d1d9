package analysis

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/tensor"
	"github.com/srmlab/srmlab/train"
)

// The channel rankings PruneCurves compares. RankGate is the paper's
// criterion; the other two tell whether it beats a known criterion and
// chance.
const (
	// RankGate ranks a block's channels by the mean gate its recalibration
	// module gives them over the data set (GateScores).
	RankGate = "gate"
	// RankBN ranks by |γ| of the branch's last BatchNorm, the "network
	// slimming" criterion (Liu et al. 2017), available in every model.
	RankBN = "bn"
	// RankRandom ranks by a seeded random permutation.
	RankRandom = "random"
)

// Block is a residual block's prunable unit: the output channels of its
// residual branch, reached through the branch's last BatchNorm.
type Block struct {
	// Name is the block's state_dict prefix, e.g. "layer2.1".
	Name string
	// Gamma and Beta are that BatchNorm's weight and bias.
	Gamma, Beta *tensor.Tensor
}

var lastBN = regexp.MustCompile(`^(layer\d+\.\d+)\.bn(\d+)\.weight$`)

// Blocks lists m's residual blocks in forward order.
func Blocks(m *srm.Model) []Block {
	byName := map[string]int{}
	var blocks []Block
	var depth []int
	vars := m.Vars()
	values := map[string]*tensor.Tensor{}
	for _, v := range vars {
		values[v.Name] = v.Value
	}
	for _, v := range vars {
		s := lastBN.FindStringSubmatch(v.Name)
		if s == nil {
			continue
		}
		k, _ := strconv.Atoi(s[2])
		i, ok := byName[s[1]]
		if !ok {
			i = len(blocks)
			byName[s[1]] = i
			blocks = append(blocks, Block{Name: s[1]})
			depth = append(depth, 0)
		}
		if k > depth[i] {
			depth[i] = k
			blocks[i].Gamma = v.Value
			blocks[i].Beta = values[fmt.Sprintf("%s.bn%d.bias", s[1], k)]
		}
	}
	return blocks
}

// GateScores is the mean gate of every channel of every block over ds,
// seen through t, with m in evaluation mode: scores[b][c] for block b of
// Blocks(m). It is an error for a model without recalibration modules.
func GateScores(ctx context.Context, m *srm.Model, ds datasets.Dataset, t datasets.Transform, batch int) ([][]float64, error) {
	sites := m.Recalibrators()
	if len(sites) == 0 {
		return nil, fmt.Errorf("analysis: %s has no gates to rank channels by", m.Name)
	}
	sums := make([][]float64, len(sites))
	images := 0
	err := eachBatch(ctx, m, ds, t, batch, func(b *datasets.Batch, _ *tensor.Tensor) error {
		for i, s := range sites {
			g, c := channelGates(s.Module.Gates())
			if sums[i] == nil {
				sums[i] = make([]float64, c)
			}
			for j, v := range g {
				sums[i][j%c] += v
			}
		}
		images += b.N
		return nil
	})
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i, s := range sites {
		index[strings.TrimSuffix(s.Name, ".rclb")] = i
	}
	blocks := Blocks(m)
	scores := make([][]float64, len(blocks))
	for b, blk := range blocks {
		i, ok := index[blk.Name]
		if !ok {
			return nil, fmt.Errorf("analysis: %s: block %s has no module", m.Name, blk.Name)
		}
		scores[b] = sums[i]
		for c := range scores[b] {
			scores[b][c] /= float64(images)
		}
	}
	return scores, nil
}

// BNScores is |γ| of each block's last BatchNorm, channel by channel.
func BNScores(m *srm.Model) [][]float64 {
	blocks := Blocks(m)
	scores := make([][]float64, len(blocks))
	for b, blk := range blocks {
		scores[b] = make([]float64, blk.Gamma.Len())
		for c := range scores[b] {
			scores[b][c] = math.Abs(blk.Gamma.At(c))
		}
	}
	return scores
}

// RandomScores ranks every block's channels in a random order fixed by seed.
func RandomScores(m *srm.Model, seed uint64) [][]float64 {
	r := rand.New(rand.NewPCG(seed, 0x7072756e65))
	blocks := Blocks(m)
	scores := make([][]float64, len(blocks))
	for b, blk := range blocks {
		scores[b] = make([]float64, blk.Gamma.Len())
		for c, p := range r.Perm(len(scores[b])) {
			scores[b][c] = float64(p)
		}
	}
	return scores
}

// Pruning is a set of channels zeroed in a model, and what undoes it.
//
// A pruned channel c of a block has γ[c] = β[c] = 0 in the residual branch's
// last BatchNorm, so in evaluation mode the branch's channel c is exactly
// zero from that BatchNorm on: the recalibration module sees the channel
// as zero (SE's squeeze and every pooled statistic of it; SRM's and GE's
// gates are per channel, so no other channel's gate changes), its gated
// output is zero whatever the gate, and only the identity or projection
// shortcut carries channel c on. That is removing the branch's output
// filter c, the structured pruning a deployed model would get, with no
// fine-tuning afterwards.
type Pruning struct {
	// Pruned counts the zeroed channels and Channels all prunable ones.
	Pruned, Channels int
	saved            []float32
	targets          []*tensor.Tensor
	indices          [][]int
}

// Prune zeroes, in every block, the fraction of channels with the lowest
// scores (scores as GateScores, BNScores or RandomScores return them):
// floor(fraction·C) channels of a C-channel block, ties going to the lower
// channel index.
func Prune(m *srm.Model, scores [][]float64, fraction float64) (*Pruning, error) {
	blocks := Blocks(m)
	if len(scores) != len(blocks) {
		return nil, fmt.Errorf("analysis: %d score lists for the %d blocks of %s", len(scores), len(blocks), m.Name)
	}
	if fraction < 0 || fraction >= 1 {
		return nil, fmt.Errorf("analysis: prune fraction %v outside [0, 1)", fraction)
	}
	p := &Pruning{}
	for b, blk := range blocks {
		c := blk.Gamma.Len()
		if len(scores[b]) != c {
			return nil, fmt.Errorf("analysis: %d scores for the %d channels of %s", len(scores[b]), c, blk.Name)
		}
		order := make([]int, c)
		for i := range order {
			order[i] = i
		}
		s := scores[b]
		sort.SliceStable(order, func(i, j int) bool { return s[order[i]] < s[order[j]] })
		k := int(math.Floor(fraction*float64(c) + 1e-9))
		p.Channels += c
		p.Pruned += k
		for _, t := range []*tensor.Tensor{blk.Gamma, blk.Beta} {
			p.targets = append(p.targets, t)
			p.indices = append(p.indices, order[:k])
			for _, ch := range order[:k] {
				p.saved = append(p.saved, float32(t.At(ch)))
				t.Set(ch, 0)
			}
		}
	}
	return p, nil
}

// Restore puts the pruned parameters back, so one trained model serves a
// whole curve.
func (p *Pruning) Restore() {
	i := 0
	for t, idx := range p.indices {
		for _, ch := range idx {
			p.targets[t].Set(ch, float64(p.saved[i]))
			i++
		}
	}
}

// PruneConfig sets a pruning curve's points.
type PruneConfig struct {
	// Fractions are the pruned fractions per block, 0 to below 1.
	Fractions []float64
	// Rankings are among RankGate, RankBN and RankRandom; RankGate is
	// skipped for plain ResNets.
	Rankings []string
	// Batch is the evaluation batch size.
	Batch int
	// Seed fixes RankRandom's order.
	Seed uint64
}

// DefaultFractions are 0, 0.1, ..., 0.9.
func DefaultFractions() []float64 {
	f := make([]float64, 10)
	for i := range f {
		f[i] = float64(i) / 10
	}
	return f
}

// PruneRow is one point of a pruning curve: a line of pruning.csv.
type PruneRow struct {
	Model    string  `csv:"model"`
	Data     string  `csv:"data"`
	Seed     uint64  `csv:"seed"`
	Ranking  string  `csv:"ranking"`
	Fraction float64 `csv:"fraction"`
	// Pruned of Channels branch output channels are zeroed, summed over
	// blocks.
	Pruned   int     `csv:"pruned"`
	Channels int     `csv:"channels"`
	Top1     float64 `csv:"test_top1"`
}

// PruneCurves scores tr's model on its test split with each ranking's
// lowest channels zeroed (see Pruning), for every fraction, without
// fine-tuning, and leaves the model as it found it. Gates are averaged over
// the training split (seen through the test transform), so the ranking
// never looks at the images it is scored on.
func PruneCurves(ctx context.Context, tr *Trained, cfg PruneConfig) ([]PruneRow, error) {
	m, test := tr.Model, tr.Data.Test
	tf := tr.Recipe.TestTransform()
	var rows []PruneRow
	for _, rk := range cfg.Rankings {
		var scores [][]float64
		switch rk {
		case RankGate:
			if len(m.Recalibrators()) == 0 {
				continue
			}
			var err error
			if scores, err = GateScores(ctx, m, tr.Data.Train, tf, cfg.Batch); err != nil {
				return nil, err
			}
		case RankBN:
			scores = BNScores(m)
		case RankRandom:
			scores = RandomScores(m, cfg.Seed)
		default:
			return nil, fmt.Errorf("analysis: ranking %q (want %s, %s or %s)", rk, RankGate, RankBN, RankRandom)
		}
		for _, f := range cfg.Fractions {
			p, err := Prune(m, scores, f)
			if err != nil {
				return nil, err
			}
			met, err := train.Evaluate(ctx, m, test, tf, cfg.Batch)
			p.Restore()
			if err != nil {
				return nil, err
			}
			rows = append(rows, PruneRow{Model: tr.Run.Model, Data: tr.Run.Data, Seed: tr.Run.Seed, Ranking: rk,
				Fraction: f, Pruned: p.Pruned, Channels: p.Channels, Top1: met.Top1})
		}
	}
	return rows, nil
}
