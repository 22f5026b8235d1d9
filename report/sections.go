package report

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/srmlab/srmlab/analysis"
	"github.com/srmlab/srmlab/blas"
	"github.com/srmlab/srmlab/plots"
	"github.com/srmlab/srmlab/srm"
	"github.com/srmlab/srmlab/train"
)

func (b *builder) add(s Section) { b.r.Sections = append(b.r.Sections, s) }

// cpuModel is the processor's name from /proc/cpuinfo, or "" elsewhere.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (b *builder) environment() error {
	t := Table{Header: []string{"item", "value"}, Rows: [][]string{
		{"machine", fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel())},
		{"Go", runtime.Version()},
		{"BLAS", blas.Name()},
		{"GOMAXPROCS", fmt.Sprint(runtime.GOMAXPROCS(0))},
	}}
	var runs []analysis.RunRow
	if _, err := b.read(analysis.CompareFile, &runs); err != nil {
		return err
	}
	seeds := map[uint64]bool{}
	for _, r := range runs {
		seeds[r.Seed] = true
	}
	var ss []string
	for s := range seeds {
		ss = append(ss, fmt.Sprint(s))
	}
	sort.Strings(ss)
	t.Rows = append(t.Rows, []string{"seeds", strings.Join(ss, ", ")})
	sec := Section{Title: "Environment and commands", Tables: []Table{t},
		Text: "The machine that built this report (the runs' own GOMAXPROCS and BLAS are in each checkpoint). Every table below comes from a CSV file in the results folder; the command beside a step reruns it, and each run's own srmlab train line is in the dir/command columns of compare.csv, ablation.csv, dtd.csv and loo.csv."}
	var steps []analysis.StepRow
	if _, err := b.read(analysis.StepsFile, &steps); err != nil {
		return err
	}
	st := Table{Title: "Steps", Header: []string{"step", "seconds", "finished", "command"}}
	for _, s := range steps {
		st.Rows = append(st.Rows, []string{s.Step, fmt.Sprintf("%.0f", s.Seconds), s.Done, s.Command})
	}
	sec.Tables = append(sec.Tables, st)
	b.add(sec)
	return nil
}

// sizes holds srm.Count to the paper's Table 1: parameters exactly (the
// paper's millions are these counts rounded), GFLOPs as Caffe-layout
// multiply-adds rounded to two decimals.
func (b *builder) sizes() error {
	t := Table{Header: []string{"model", "params (srm.Count)", "exact count (srm-facts)", "paper (M)", "GMACs v1.5", "GMACs Caffe", "paper GFLOPs", "GFLOPs within 0.015", "params exact"}}
	for _, p := range paperSizes {
		s, err := srm.Count(p.model, srm.Options{})
		if err != nil {
			return err
		}
		params := s.Params == p.params && math.Round(float64(s.Params)/1e4)/100 == p.paperM
		t.Rows = append(t.Rows, []string{p.model, fmt.Sprint(s.Params), fmt.Sprint(p.params), fmt.Sprintf("%.2f", p.paperM),
			fmt.Sprintf("%.3f", s.MACs/1e9), fmt.Sprintf("%.3f", s.CaffeMACs/1e9), fmt.Sprintf("%.2f", p.paperGF),
			verdict(math.Abs(s.CaffeMACs/1e9-p.paperGF) <= 0.015), verdict(params)})
	}
	b.add(Section{Title: "Model size against the paper (Table 1)", Tables: []Table{t},
		Text: "Parameters and multiply-accumulates of the ImageNet models at 224 px, 1000 classes, counted by srm.Count. The paper's GFLOPs are multiply-adds of the Caffe layout (stride in the first 1x1), which ours match to 0.01 G (ResNet-101's 7.570 against the paper's 7.58: the paper counts slightly more); torchvision's v1.5 layout is given beside. Parameters must match exactly. Rerun: srmlab params."})
	return nil
}

func (b *builder) imagenet() error {
	t := Table{Header: []string{"model", "paper top-1", "paper top-5", "ours"}}
	for _, p := range paperTop1 {
		t.Rows = append(t.Rows, []string{p.model, fmt.Sprintf("%.2f", p.top1), fmt.Sprintf("%.2f", p.top5), "not run (ImageNet training is out of a CPU's reach)"})
	}
	b.add(Section{Title: "ImageNet-1K (quoted)", Tables: []Table{t},
		Text: "The paper's single-crop validation accuracy, quoted for reference. The paper also reports CIFAR-10 95.05 % for SRM-ResNet-56."})
	return nil
}

// summaries reads summary.csv's rows of one experiment.
func (b *builder) summaries(experiment string) ([]analysis.Summary, error) {
	var all []analysis.Summary
	if _, err := b.read(analysis.SummaryFile, &all); err != nil {
		return nil, err
	}
	var out []analysis.Summary
	for _, s := range all {
		if s.Experiment == experiment {
			out = append(out, s)
		}
	}
	return out, nil
}

// summaryTable lists summaries as the report shows them everywhere.
func summaryTable(title string, ss []analysis.Summary) Table {
	t := Table{Title: title, Header: []string{"data", "model", "runs", "top-1 % (mean ± sd)", "min", "max"}}
	for _, s := range ss {
		t.Rows = append(t.Rows, []string{s.Data, s.Model, fmt.Sprint(s.N), meanSD(s.Mean, s.SD), fmt.Sprintf("%.1f", s.Min), fmt.Sprintf("%.1f", s.Max)})
	}
	return t
}

// kindOf is a model's module kind ("" plain), or "?" for a model with
// options, which never stands for its kind in a claim.
func kindOf(model string) string {
	spec, _, err := srm.ParseName(model)
	if err != nil || strings.Contains(model, ":") {
		return "?"
	}
	return spec.Kind
}

// groupBars draws summaries as bars: categories from cat, a series per
// model in first-seen order.
func groupBars(title, yLabel string, ss []analysis.Summary, cat func(analysis.Summary) string) *plotsInput {
	var cats, models []string
	idx := map[string]int{}
	midx := map[string]int{}
	for _, s := range ss {
		c := cat(s)
		if _, ok := idx[c]; !ok {
			idx[c] = len(cats)
			cats = append(cats, c)
		}
		if _, ok := midx[s.Model]; !ok {
			midx[s.Model] = len(models)
			models = append(models, s.Model)
		}
	}
	series := make([]plots.BarSeries, len(models))
	for i, m := range models {
		series[i] = plots.BarSeries{Name: m, Values: make([]float64, len(cats)), Errors: make([]float64, len(cats))}
	}
	for _, s := range ss {
		series[midx[s.Model]].Values[idx[cat(s)]] = s.Mean
		series[midx[s.Model]].Errors[idx[cat(s)]] = s.SD
	}
	return &plotsInput{title, yLabel, cats, series}
}

// plotsInput is a bar figure's data before drawing.
type plotsInput struct {
	title, yLabel string
	cats          []string
	series        []plots.BarSeries
}

func (b *builder) bars(in *plotsInput, name string) (Figure, error) {
	p, err := plots.Bars(in.title, in.yLabel, in.cats, in.series)
	if err != nil {
		return Figure{}, err
	}
	return b.figure(p, name, in.title)
}

func (b *builder) compare() error {
	ss, err := b.summaries("compare")
	if err != nil || len(ss) == 0 {
		return err
	}
	sec := Section{Title: "Module comparison", Tables: []Table{summaryTable("", ss)},
		Text: "None, SE, GE and SRM ResNets trained with the same recipe and budget; test top-1 over seeds. The paper: SRM ≥ SE ≥ plain on ImageNet, CIFAR and DTD."}
	claims := Table{Title: "Claim: SRM ≥ SE ≥ plain", Header: []string{"data", "verdict", "evidence (mean ± sd)"}}
	byData := map[string]map[string]analysis.Summary{}
	var order []string
	for _, s := range ss {
		if byData[s.Data] == nil {
			byData[s.Data] = map[string]analysis.Summary{}
			order = append(order, s.Data)
		}
		byData[s.Data][kindOf(s.Model)] = s
	}
	for _, d := range order {
		m := byData[d]
		names := map[string]analysis.Summary{}
		var chain []string
		for _, k := range []string{"srm", "se", ""} {
			if s, ok := m[k]; ok {
				names[s.Model] = s
				chain = append(chain, s.Model)
			}
		}
		v, e := ordering(chain, names)
		claims.Rows = append(claims.Rows, []string{d, v, e})
	}
	sec.Tables = append(sec.Tables, claims)
	in := groupBars("Module comparison: test top-1 (mean ± sd over seeds)", "top-1 accuracy (%)", ss, func(s analysis.Summary) string { return s.Data })
	f, err := b.bars(in, "compare")
	if err != nil {
		return err
	}
	sec.Figures = append(sec.Figures, f)
	b.add(sec)
	return nil
}

// ablationLabel names an SRM variant by its pooling and integration.
func ablationLabel(model string) string {
	spec, _, err := srm.ParseName(model)
	if err != nil || spec.Kind != "srm" {
		return model
	}
	if spec.MLP {
		return spec.Pooling.String() + " MLP"
	}
	return spec.Pooling.String() + " CFC"
}

func (b *builder) ablation() error {
	ss, err := b.summaries("ablation")
	if err != nil || len(ss) == 0 {
		return err
	}
	sec := Section{Title: "Pooling and integration ablation", Tables: []Table{summaryTable("", ss)},
		Text: "SRM with every pooling set and with an MLP in place of the CFC, on bundled textures. The paper: avg+std pooling is best, and CFC beats MLP with fewer parameters."}
	claims := Table{Title: "Claims", Header: []string{"claim", "verdict", "evidence (mean ± sd)"}}
	by := map[string]analysis.Summary{}
	label := map[string]string{}
	for _, s := range ss {
		label[ablationLabel(s.Model)] = s.Model
		by[s.Model] = s
	}
	if best, ok := label["avg+std CFC"]; ok {
		for _, s := range ss {
			if s.Model == best || strings.HasSuffix(ablationLabel(s.Model), "MLP") {
				continue
			}
			v, e := ordering([]string{best, s.Model}, by)
			claims.Rows = append(claims.Rows, []string{"avg+std ≥ " + ablationLabel(s.Model), v, e})
		}
		if mlp, ok := label["avg+std MLP"]; ok {
			v, e := ordering([]string{best, mlp}, by)
			claims.Rows = append(claims.Rows, []string{"CFC ≥ MLP", v, e})
		}
	}
	sec.Tables = append(sec.Tables, claims)
	var cats []string
	series := plots.BarSeries{Name: "SRM-ResNet"}
	for _, s := range ss {
		cats = append(cats, ablationLabel(s.Model))
		series.Values = append(series.Values, s.Mean)
		series.Errors = append(series.Errors, s.SD)
	}
	f, err := b.bars(&plotsInput{"Pooling ablation: test top-1 (mean ± sd over seeds)", "top-1 accuracy (%)", cats, []plots.BarSeries{series}}, "ablation")
	if err != nil {
		return err
	}
	sec.Figures = append(sec.Figures, f)
	b.add(sec)
	return nil
}

func (b *builder) dtd() error {
	ss, err := b.summaries("dtd")
	if err != nil || len(ss) == 0 {
		return err
	}
	b.add(Section{Title: "DTD, ten splits", Tables: []Table{summaryTable("", ss)},
		Text: "Mean ± sd over DTD's ten official splits and the seeds; the paper reports DTD with SRM ahead of SE and plain ResNets."})
	return nil
}

// training draws the mean test accuracy per epoch of the compared models on
// each data set, from the runs' metrics.csv, the band spanning the seeds.
func (b *builder) training() error {
	var runs []analysis.RunRow
	if ok, err := b.read(analysis.CompareFile, &runs); !ok || len(runs) == 0 {
		return err
	}
	sec := Section{Title: "Training curves", Text: "Test top-1 after each epoch (line: mean over seeds; band: ± sd), read from each run's metrics.csv."}
	type key struct{ data, model string }
	curves := map[key][][]float64{}
	var keys []key
	for _, r := range runs {
		rows, err := train.ReadMetrics(filepath.Join(b.in, r.Dir, train.MetricsFile))
		if err != nil {
			return err
		}
		k := key{r.Data, r.Model}
		if _, ok := curves[k]; !ok {
			keys = append(keys, k)
		}
		var ys []float64
		for _, m := range rows {
			ys = append(ys, m.TestTop1)
		}
		curves[k] = append(curves[k], ys)
	}
	var datas []string
	series := map[string][]plots.Series{}
	for _, k := range keys {
		if series[k.data] == nil {
			datas = append(datas, k.data)
		}
		epochs := make([]float64, len(curves[k][0]))
		for j := range epochs {
			epochs[j] = float64(j + 1)
		}
		series[k.data] = append(series[k.data], meanBand(k.model, curves[k], epochs))
	}
	for i, d := range datas {
		p, err := plots.Lines("Training on "+d, "epoch", "test top-1 accuracy (%)", series[d])
		if err != nil {
			return err
		}
		f, err := b.figure(p, fmt.Sprintf("training-%d", i+1), "Test top-1 per epoch on "+d)
		if err != nil {
			return err
		}
		sec.Figures = append(sec.Figures, f)
	}
	b.add(sec)
	return nil
}
