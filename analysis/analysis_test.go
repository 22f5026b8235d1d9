package analysis_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/srmlab/srmlab/analysis"
	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/train"
)

func TestCSVRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.csv")
	in := []analysis.PruneRow{{Model: "srm-resnet20", Data: "textures:train=3", Seed: 2, Ranking: "gate", Fraction: 0.3, Pruned: 33, Channels: 112, Top1: 41.5}}
	if err := analysis.WriteCSV(path, in); err != nil {
		t.Fatal(err)
	}
	var out []analysis.PruneRow
	if err := analysis.ReadCSV(path, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("read back %+v, wrote %+v", out, in)
	}
}

func TestMeanSD(t *testing.T) {
	m, sd := analysis.MeanSD([]float64{1, 2, 3, 4})
	if m != 2.5 || math.Abs(sd-math.Sqrt(5.0/3)) > 1e-12 {
		t.Fatalf("MeanSD = %v, %v", m, sd)
	}
}

// TestGateRanking builds an SRM model whose gates are known: with a zero
// CFC the BN sees 0, so in evaluation mode (running mean 0, var 1) a
// channel's gate is sigmoid(β). Setting β to a permutation fixes the
// ranking, and pruning must zero exactly the lowest channels.
func TestGateRanking(t *testing.T) {
	m, err := srm.NewModel("srm-resnet20", srm.Options{Classes: 10})
	if err != nil {
		t.Fatal(err)
	}
	bias := map[string]float64{}
	for _, v := range m.Vars() {
		if filepath.Ext(v.Name) == ".bias" && len(v.Name) > 13 && v.Name[len(v.Name)-13:] == ".rclb.bn.bias" {
			c := v.Value.Len()
			for i := 0; i < c; i++ {
				v.Value.Set(i, float64((i*7)%c)-float64(c)/2) // a permutation of the channels
			}
			bias[v.Name] = 0
		}
	}
	s, err := datasets.Textures(datasets.BundledConfig{TrainPerClass: 1, TestPerClass: 1})
	if err != nil {
		t.Fatal(err)
	}
	scores, err := analysis.GateScores(context.Background(), m, s.Test, nil, 5)
	if err != nil {
		t.Fatal(err)
	}
	blocks := analysis.Blocks(m)
	if len(scores) != 9 || len(blocks) != 9 || len(bias) != 9 {
		t.Fatalf("%d score lists, %d blocks, %d modules for ResNet-20's 9 blocks", len(scores), len(blocks), len(bias))
	}
	for b, sc := range scores {
		c := len(sc)
		for i := range sc {
			want := 1 / (1 + math.Exp(-(float64((i*7)%c)-float64(c)/2)/math.Sqrt(1+1e-5)))
			if math.Abs(sc[i]-want) > 1e-5 {
				t.Fatalf("block %d channel %d: mean gate %v, want sigmoid(β) = %v", b, i, sc[i], want)
			}
		}
	}
	gamma := blocks[0].Gamma.Clone()
	p, err := analysis.Prune(m, scores, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	c := blocks[0].Gamma.Len()
	for i := 0; i < c; i++ {
		low := (i*7)%c < c/2 // the channels with the 8 lowest β
		if zero := blocks[0].Gamma.At(i) == 0 && blocks[0].Beta.At(i) == 0; zero != low {
			t.Fatalf("channel %d (rank %d of %d): zeroed %v", i, (i*7)%c, c, zero)
		}
	}
	if p.Pruned != p.Channels/2 {
		t.Fatalf("pruned %d of %d channels at 0.5", p.Pruned, p.Channels)
	}
	p.Restore()
	if !reflect.DeepEqual(gamma.F32(), blocks[0].Gamma.F32()) {
		t.Fatal("Restore did not bring γ back")
	}
	bn := analysis.BNScores(m)
	if bn[0][3] != math.Abs(blocks[0].Gamma.At(3)) {
		t.Fatal("BNScores is not |γ|")
	}
}

// TestPruneZeroIsUnpruned trains a tiny model and checks that the curve's
// fraction-0 point is the unpruned accuracy, and that pruning leaves the
// model as it was.
func TestPruneZeroIsUnpruned(t *testing.T) {
	root := t.TempDir()
	cfg := train.DefaultConfig()
	cfg.Epochs, cfg.Batch, cfg.LR = 1, 16, 0.05
	g := analysis.Grid{Experiment: "t", Models: []string{"se-resnet20"}, Data: []string{"textures:train=3:test=3"}, Seeds: []uint64{1}, Base: cfg}
	rows, err := g.Run(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := analysis.LoadRun(root, rows[0])
	if err != nil {
		t.Fatal(err)
	}
	curve, err := analysis.PruneCurves(context.Background(), tr, analysis.PruneConfig{Fractions: []float64{0, 0.5, 0}, Rankings: []string{analysis.RankGate, analysis.RankRandom}, Batch: 7, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(curve) != 6 {
		t.Fatalf("%d points, want 6", len(curve))
	}
	for _, p := range curve {
		if p.Fraction == 0 && (p.Top1 != rows[0].Top1 || p.Pruned != 0) {
			t.Fatalf("fraction 0 (%s): top-1 %v with %d pruned, unpruned %v", p.Ranking, p.Top1, p.Pruned, rows[0].Top1)
		}
	}
}

// TestBetweenVariance: groups drawn from one distribution have no
// between-group component, and the estimate averages to zero; shifting one
// group by d adds d²(G−1)/G² exactly.
func TestBetweenVariance(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const groups, per, trials = 4, 20, 2000
	var sum float64
	for k := 0; k < trials; k++ {
		n, mean, sd := make([]int, groups), make([]float64, groups), make([]float64, groups)
		for g := range n {
			xs := make([]float64, per)
			for i := range xs {
				xs[i] = r.NormFloat64()
			}
			n[g] = per
			mean[g], sd[g] = analysis.MeanSD(xs)
		}
		sum += analysis.BetweenVariance(n, mean, sd)
	}
	if avg := sum / trials; math.Abs(avg) > 0.003 {
		t.Fatalf("no group effect, mean estimate %v (noise alone is %v)", avg, 1.0/per)
	}
	n, mean, sd := []int{5, 5, 5, 5}, []float64{0, 0, 0, 2}, []float64{0, 0, 0, 0}
	if v := analysis.BetweenVariance(n, mean, sd); math.Abs(v-0.75) > 1e-12 {
		t.Fatalf("one group shifted by 2: %v, want 0.75", v)
	}
}
