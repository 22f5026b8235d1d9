package analysis

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/train"
)

// The tables of a results folder (see the package documentation for their
// columns).
const (
	CompareFile  = "compare.csv"
	AblationFile = "ablation.csv"
	DTDFile      = "dtd.csv"
	LOOFile      = "loo.csv"
	SummaryFile  = "summary.csv"
	PruningFile  = "pruning.csv"
	DomainsFile  = "domains.csv"
	GatesFile    = "gates.csv"
	GateVarFile  = "gate_variance.csv"
	StepsFile    = "steps.csv"
)

// Steps lists the pipeline's steps in the order Reproduce runs them; each
// is also a srmlab subcommand. Prune, domains and gates read compare.csv.
var Steps = []string{"compare", "ablate", "dtd", "prune", "domains", "gates"}

// Config is the whole pipeline: which data, models, seeds and budget. Quick
// and Full are the two presets of "srmlab reproduce".
type Config struct {
	// Out is the results folder: the tables, and the runs under runs/.
	Out string
	// Textures and Domains are the bundled data specs, sized.
	Textures, Domains string
	// Data are further specs: "dtd:DIR" runs all ten DTD splits (the
	// "dtd" step), a multi-domain spec ("officehome:DIR") joins the
	// domain study, any other joins the module comparison.
	Data []string
	// Models are compared on every data set; Ablation are SRM variants
	// trained on Textures; LOOModels are trained leave-one-domain-out.
	Models, Ablation, LOOModels []string
	Seeds                       []uint64
	// Train is the recipe and budget of every run.
	Train     train.Config
	Fractions []float64
	// Batch is the evaluation batch.
	Batch int
	// Log, if not nil, gets a line per run and step.
	Log io.Writer
	// Callback, if not nil, follows every training run.
	Callback train.Callback
}

// Quick is the preset of "srmlab reproduce --quick": ResNet-20s on a few
// hundred bundled images for 3 epochs and 2 seeds, about 10 minutes on 2
// cores. The textures are small enough that no model saturates them (30-45 %
// top-1), so the modules still differ; the letters of the domains set need
// far more training than this, so the quick domain numbers sit near chance
// (10 %) and only Full says anything about them.
func Quick() Config {
	c := Full()
	c.Textures, c.Domains = "textures:train=30:test=20", "domains:train=8:test=5"
	c.Seeds = []uint64{1, 2}
	c.LOOModels = []string{"se-resnet20", "srm-resnet20"}
	c.Train.Epochs, c.Train.Batch, c.Train.LR = 3, 32, 0.05
	c.Fractions = []float64{0, 0.2, 0.4, 0.6, 0.8}
	return c
}

// Tiny is the pipeline in seconds, for tests, notebooks run by CI and a
// first look: three models on a few dozen images, one epoch, one seed. Its
// numbers mean nothing; that everything runs does.
func Tiny() Config {
	c := Quick()
	c.Textures, c.Domains = "textures:train=3:test=2", "domains:train=1:test=1"
	c.Models = []string{"resnet20", "se-resnet20", "srm-resnet20"}
	c.Ablation = []string{"srm-resnet20", "srm:avg-resnet20"}
	c.LOOModels = []string{"srm-resnet20"}
	c.Seeds = []uint64{1}
	c.Train.Epochs, c.Train.Batch = 1, 16
	c.Fractions = []float64{0, 0.5}
	c.Batch = 20
	return c
}

// Full is the preset of "srmlab reproduce --full": the bundled sets at
// their default sizes, 3 seeds, 30 epochs of the CIFAR recipe (hours on a
// CPU).
func Full() Config {
	c := Config{
		Textures: "textures", Domains: "domains",
		Models:    []string{"resnet20", "se-resnet20", "ge-resnet20", "srm-resnet20"},
		Ablation:  []string{"srm:avg-resnet20", "srm:std-resnet20", "srm:max-resnet20", "srm-resnet20", "srm:avg+max-resnet20", "srm:std+max-resnet20", "srm:avg+std+max-resnet20", "srm:mlp-resnet20"},
		LOOModels: []string{"resnet20", "se-resnet20", "ge-resnet20", "srm-resnet20"},
		Seeds:     []uint64{1, 2, 3},
		Train:     train.DefaultConfig(),
		Fractions: DefaultFractions(),
		Batch:     100,
	}
	c.Train.Epochs = 30
	return c
}

// Flags binds c's fields to command-line flags, so that every subcommand
// takes the same ones and Args can spell a config back as a command.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Out, "out", c.Out, "results folder")
	fs.StringVar(&c.Textures, "textures", c.Textures, "bundled textures spec")
	fs.StringVar(&c.Domains, "domains", c.Domains, "bundled domains spec")
	fs.Func("data", "further data set spec (repeatable): dtd:DIR, officehome:DIR, cifar10:DIR, ...", func(s string) error {
		c.Data = append(c.Data, s)
		return nil
	})
	listFlag(fs, "models", "models compared", &c.Models)
	listFlag(fs, "ablation", "SRM variants of the ablation", &c.Ablation)
	listFlag(fs, "loo-models", "models trained leave-one-domain-out", &c.LOOModels)
	fs.Func("seeds", "comma-separated seeds (default "+joinSeeds(c.Seeds)+")", func(s string) error {
		var seeds []uint64
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				return err
			}
			seeds = append(seeds, v)
		}
		c.Seeds = seeds
		return nil
	})
	fs.IntVar(&c.Train.Epochs, "epochs", c.Train.Epochs, "epochs per run")
	fs.IntVar(&c.Train.Batch, "batch", c.Train.Batch, "training batch")
	fs.Float64Var(&c.Train.LR, "lr", c.Train.LR, "learning rate")
	fs.IntVar(&c.Batch, "eval-batch", c.Batch, "evaluation batch")
}

func listFlag(fs *flag.FlagSet, name, usage string, dst *[]string) {
	fs.Func(name, usage+", comma-separated (default "+strings.Join(*dst, ",")+")", func(s string) error {
		*dst = strings.Split(s, ",")
		return nil
	})
}

func joinSeeds(seeds []uint64) string {
	s := make([]string, len(seeds))
	for i, v := range seeds {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

// Args spells c as the flags of Flags, everything explicit, so that a
// command built from it repeats the run whatever the presets become.
func (c Config) Args() string {
	a := []string{"--out", shellQuote(c.Out), "--textures", shellQuote(c.Textures), "--domains", shellQuote(c.Domains)}
	for _, d := range c.Data {
		a = append(a, "--data", shellQuote(d))
	}
	a = append(a, "--models", strings.Join(c.Models, ","), "--ablation", strings.Join(c.Ablation, ","),
		"--loo-models", strings.Join(c.LOOModels, ","), "--seeds", joinSeeds(c.Seeds),
		"--epochs", fmt.Sprint(c.Train.Epochs), "--batch", fmt.Sprint(c.Train.Batch),
		"--lr", fmt.Sprint(c.Train.LR), "--eval-batch", fmt.Sprint(c.Batch))
	return strings.Join(a, " ")
}

// StepRow records how a table was made: a line of steps.csv.
type StepRow struct {
	Step    string  `csv:"step"`
	Command string  `csv:"command"`
	Seconds float64 `csv:"seconds"`
	Done    string  `csv:"finished"` // RFC 3339
}

// Reproduce runs every step (Steps) into c.Out.
func Reproduce(ctx context.Context, c Config) error {
	for _, s := range Steps {
		if err := c.RunStep(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// RunStep runs one step of Steps and records it in steps.csv.
func (c Config) RunStep(ctx context.Context, step string) error {
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	var err error
	switch step {
	case "compare":
		err = c.grid("compare", c.Models, c.compareData(), CompareFile, ctx)
	case "ablate":
		err = c.grid("ablation", c.Ablation, []string{c.Textures}, AblationFile, ctx)
	case "dtd":
		err = c.grid("dtd", c.Models, c.dtdSplits(), DTDFile, ctx)
	case "prune":
		err = c.prune(ctx)
	case "domains":
		err = c.domains(ctx)
	case "gates":
		err = c.gates(ctx)
	default:
		return fmt.Errorf("analysis: no step %q (steps: %s)", step, strings.Join(Steps, ", "))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	c.logf("%s done in %.0f s\n", step, time.Since(start).Seconds())
	return c.recordStep(StepRow{Step: step, Command: "srmlab " + step + " " + c.Args(),
		Seconds: time.Since(start).Seconds(), Done: time.Now().UTC().Format(time.RFC3339)})
}

func (c Config) logf(format string, a ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format, a...)
	}
}

func (c Config) path(file string) string { return filepath.Join(c.Out, file) }

func (c Config) recordStep(s StepRow) error {
	var steps []StepRow
	if err := ReadCSV(c.path(StepsFile), &steps); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	kept := []StepRow{}
	for _, old := range steps {
		if old.Step != s.Step {
			kept = append(kept, old)
		}
	}
	return WriteCSV(c.path(StepsFile), append(kept, s))
}

func isDTD(spec string) bool { return strings.HasPrefix(spec, "dtd:") }
func isMultiDomain(spec string) bool {
	return spec == "domains" || strings.HasPrefix(spec, "domains:") || strings.HasPrefix(spec, "officehome:")
}

func (c Config) compareData() []string {
	d := []string{c.Textures, c.Domains}
	for _, s := range c.Data {
		if !isDTD(s) {
			d = append(d, s)
		}
	}
	return d
}

// dtdSplits expands each "dtd:DIR" without a split option into its ten
// official splits.
func (c Config) dtdSplits() []string {
	var d []string
	for _, s := range c.Data {
		switch {
		case !isDTD(s):
		case splitOption.MatchString(s):
			d = append(d, s)
		default:
			for k := 1; k <= 10; k++ {
				d = append(d, fmt.Sprintf("%s:split=%d", s, k))
			}
		}
	}
	return d
}

func (c Config) domainData() []string {
	var d []string
	for _, s := range c.compareData() {
		if isMultiDomain(s) {
			d = append(d, s)
		}
	}
	return d
}

func (c Config) base(experiment string, models, data []string) Grid {
	return Grid{Experiment: experiment, Models: models, Data: data, Seeds: c.Seeds, Base: c.Train, Callback: c.Callback, Log: c.Log}
}

// grid trains a grid, writes its table and refreshes summary.csv.
func (c Config) grid(experiment string, models, data []string, file string, ctx context.Context) error {
	if len(data) == 0 {
		c.logf("%s: no data given, skipped\n", experiment)
		return WriteCSV(c.path(file), []RunRow{})
	}
	rows, err := c.base(experiment, models, data).Run(ctx, c.Out)
	if err != nil {
		return err
	}
	if err := WriteCSV(c.path(file), rows); err != nil {
		return err
	}
	return c.summarize()
}

// summarize rebuilds summary.csv from every grid table present.
func (c Config) summarize() error {
	var all []RunRow
	for _, f := range []string{CompareFile, AblationFile, DTDFile, LOOFile} {
		var rows []RunRow
		if err := ReadCSV(c.path(f), &rows); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		all = append(all, rows...)
	}
	return WriteCSV(c.path(SummaryFile), Summarize(all))
}

// trainedRuns reads compare.csv back and keeps the runs keep accepts.
func (c Config) trainedRuns(keep func(RunRow) bool) ([]RunRow, error) {
	var rows []RunRow
	if err := ReadCSV(c.path(CompareFile), &rows); err != nil {
		return nil, fmt.Errorf("%w (run the compare step first)", err)
	}
	var out []RunRow
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (c Config) prune(ctx context.Context) error {
	runs, err := c.trainedRuns(func(r RunRow) bool { return r.Data == c.Textures })
	if err != nil {
		return err
	}
	var rows []PruneRow
	for _, r := range runs {
		tr, err := LoadRun(c.Out, r)
		if err != nil {
			return err
		}
		pr, err := PruneCurves(ctx, tr, PruneConfig{Fractions: c.Fractions, Rankings: []string{RankGate, RankBN, RankRandom}, Batch: c.Batch, Seed: r.Seed})
		if err != nil {
			return err
		}
		c.logf("prune: %s seed %d\n", r.Model, r.Seed)
		rows = append(rows, pr...)
	}
	return WriteCSV(c.path(PruningFile), rows)
}

func (c Config) domains(ctx context.Context) error {
	data := c.domainData()
	runs, err := c.trainedRuns(func(r RunRow) bool { return isMultiDomain(r.Data) })
	if err != nil {
		return err
	}
	rows, err := PerDomain(ctx, c.Out, runs, c.Batch)
	if err != nil {
		return err
	}
	loo, held, err := c.base("leave-one-out", c.LOOModels, data).LeaveOneOut(ctx, c.Out, c.Batch)
	if err != nil {
		return err
	}
	if err := WriteCSV(c.path(LOOFile), loo); err != nil {
		return err
	}
	if err := WriteCSV(c.path(DomainsFile), append(rows, held...)); err != nil {
		return err
	}
	return c.summarize()
}

// gates measures SE's and SRM's gates, the two modules whose gates the
// paper contrasts, on every multi-domain run.
func (c Config) gates(ctx context.Context) error {
	runs, err := c.trainedRuns(func(r RunRow) bool {
		spec, _, err := srm.ParseName(r.Model)
		return err == nil && isMultiDomain(r.Data) && (spec.Kind == "se" || spec.Kind == "srm")
	})
	if err != nil {
		return err
	}
	var rows []GateRow
	var vars []GateVarRow
	for _, r := range runs {
		tr, err := LoadRun(c.Out, r)
		if err != nil {
			return err
		}
		g, v, err := GateStats(ctx, tr, c.Batch)
		if err != nil {
			return err
		}
		rows, vars = append(rows, g...), append(vars, v...)
	}
	if err := WriteCSV(c.path(GatesFile), rows); err != nil {
		return err
	}
	return WriteCSV(c.path(GateVarFile), vars)
}
