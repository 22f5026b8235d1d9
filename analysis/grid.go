package analysis

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/srmlab/srmlab/train"
)

// Grid is one training experiment: every model on every data set with every
// seed, all under the same recipe and budget (Base), which is what makes
// their accuracies comparable. The module comparison, the pooling ablation
// and DTD's ten splits are all grids.
type Grid struct {
	// Experiment names the grid in its rows and in summary.csv.
	Experiment string
	Models     []string
	// Data are data set specs (datasets.Open); DTD's splits are ten specs
	// that Summarize pools.
	Data  []string
	Seeds []uint64
	// Base is the training recipe; Model, Data, Seed and Out are set per
	// run. Start from train.DefaultConfig.
	Base train.Config
	// Callback, if not nil, follows every run (a notebook's live plot).
	Callback train.Callback
	// Log, if not nil, gets one line per finished run.
	Log io.Writer
}

// RunRow is one trained model of a grid: a line of EXPERIMENT.csv.
type RunRow struct {
	Experiment string  `csv:"experiment"`
	Model      string  `csv:"model"`
	Data       string  `csv:"data"`
	Seed       uint64  `csv:"seed"`
	Epochs     int     `csv:"epochs"`
	Params     int     `csv:"params"`
	Top1       float64 `csv:"test_top1"`
	Top5       float64 `csv:"test_top5"`
	Loss       float64 `csv:"test_loss"`
	Seconds    float64 `csv:"seconds"`
	// Dir is the run folder, relative to the results folder.
	Dir string `csv:"dir"`
	// Command retrains this model alone.
	Command string `csv:"command"`
}

// Run trains the grid's models under root, each in its own run folder, and
// returns their final test scores. A run folder that already holds a run is
// resumed (or, when finished, just reloaded), so an interrupted experiment
// restarts where it stopped, a finished one costs nothing to re-read, and
// experiments that need the same run (the ablation's official SRM is the
// comparison's) share it; train.Run refuses a folder whose run was trained
// with other settings.
func (g Grid) Run(ctx context.Context, root string) ([]RunRow, error) {
	var rows []RunRow
	for _, data := range g.Data {
		for _, model := range g.Models {
			for _, seed := range g.Seeds {
				cfg := g.Base
				cfg.Model, cfg.Data, cfg.Seed = model, data, seed
				rel := RunDir(model, data, seed)
				cfg.Out = filepath.Join(root, rel)
				res, seconds, err := trainOrLoad(ctx, cfg, g.Callback)
				if err != nil {
					return nil, fmt.Errorf("analysis: %s %s on %s, seed %d: %w", g.Experiment, model, data, seed, err)
				}
				last := res.Rows[len(res.Rows)-1]
				if g.Log != nil {
					fmt.Fprintf(g.Log, "%s: %s on %s, seed %d: top-1 %.1f%%\n", g.Experiment, model, data, seed, last.TestTop1)
				}
				rows = append(rows, RunRow{
					Experiment: g.Experiment, Model: model, Data: data, Seed: seed,
					Epochs: cfg.Epochs, Params: res.Model.Params(),
					Top1: last.TestTop1, Top5: last.TestTop5, Loss: last.TestLoss,
					Seconds: seconds, Dir: rel, Command: TrainCommand(cfg),
				})
			}
		}
	}
	return rows, nil
}

// trainOrLoad runs cfg, resuming the run its folder holds if any, and
// returns the summed epoch times of the run (not of this call, which is
// near zero for a finished run).
func trainOrLoad(ctx context.Context, cfg train.Config, cb train.Callback) (*train.Result, float64, error) {
	if _, err := os.Stat(filepath.Join(cfg.Out, train.CheckpointFile)); err == nil {
		cfg.Resume = true
	}
	res, err := train.Run(ctx, cfg, cb)
	if err != nil {
		return nil, 0, err
	}
	var s float64
	for _, r := range res.Rows {
		s += r.Seconds
	}
	return res, s, nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9+=.,_-]+`)

// RunDir is the folder of one run relative to the results folder:
// runs/MODEL/DATA/seed-S, with the data spec flattened into a file name
// (paths in it lose their slashes).
func RunDir(model, data string, seed uint64) string {
	tag := strings.Trim(unsafeChars.ReplaceAllString(data, "_"), "_")
	return filepath.Join("runs", unsafeChars.ReplaceAllString(model, "_"), tag, fmt.Sprintf("seed-%d", seed))
}

// TrainCommand is the srmlab train line that repeats one run of a grid, for
// the report's "how to rerun this number".
func TrainCommand(c train.Config) string {
	parts := []string{"srmlab train",
		"--model", shellQuote(c.Model), "--data", shellQuote(c.Data),
		"--epochs", fmt.Sprint(c.Epochs), "--batch", fmt.Sprint(c.Batch),
		"--lr", fmt.Sprint(c.LR), "--momentum", fmt.Sprint(c.Momentum),
		"--wd", fmt.Sprint(c.WeightDecay), "--schedule", c.Schedule,
		"--seed", fmt.Sprint(c.Seed), "--out", shellQuote(c.Out)}
	if c.Recipe != "" {
		parts = append(parts, "--recipe", c.Recipe)
	}
	if c.WarmupEpochs > 0 {
		parts = append(parts, "--warmup", fmt.Sprint(c.WarmupEpochs))
	}
	return strings.Join(parts, " ")
}

var plainWord = regexp.MustCompile(`^[A-Za-z0-9+=.,_:/@%-]+$`)

func shellQuote(s string) string {
	if plainWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Summary is a model's score over seeds (and DTD's splits): a line of
// summary.csv.
type Summary struct {
	Experiment string `csv:"experiment"`
	Model      string `csv:"model"`
	// Data is the data spec with any ":split=K" removed, so that DTD's ten
	// splits pool into one line.
	Data string `csv:"data"`
	// N counts the runs pooled: seeds times splits.
	N    int     `csv:"n"`
	Mean float64 `csv:"mean_top1"`
	SD   float64 `csv:"sd_top1"`
	Min  float64 `csv:"min_top1"`
	Max  float64 `csv:"max_top1"`
}

var splitOption = regexp.MustCompile(`:split=[0-9]+`)

// Summarize pools runs by experiment, model and data set (splits pooled),
// keeping the models in the order they first appear, which is the order
// the grid listed them in.
func Summarize(rows []RunRow) []Summary {
	type key struct{ exp, model, data string }
	var order []key
	groups := map[key][]float64{}
	for _, r := range rows {
		k := key{r.Experiment, r.Model, splitOption.ReplaceAllString(r.Data, "")}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r.Top1)
	}
	out := make([]Summary, 0, len(order))
	for _, k := range order {
		xs := groups[k]
		m, sd := MeanSD(xs)
		s := append([]float64(nil), xs...)
		sort.Float64s(s)
		out = append(out, Summary{Experiment: k.exp, Model: k.model, Data: k.data, N: len(xs), Mean: m, SD: sd, Min: s[0], Max: s[len(s)-1]})
	}
	return out
}
