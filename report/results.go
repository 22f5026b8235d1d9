package report

import (
	"fmt"
	"sort"
	"strings"

	"github.com/srmlab/srmlab/analysis"
	"github.com/srmlab/srmlab/plots"
)

// pruning draws accuracy against the pruned fraction, and checks the
// paper's claim by each curve's mean accuracy over the fractions (the area
// under it), per seed, so the verdict carries the seed spread.
func (b *builder) pruning() error {
	var rows []analysis.PruneRow
	if ok, err := b.read(analysis.PruningFile, &rows); !ok || len(rows) == 0 {
		return err
	}
	type key struct {
		model, ranking string
	}
	// curves[key][seed] = accuracies in fraction order.
	curves := map[key]map[uint64][]float64{}
	var keys []key
	var fractions []float64
	seenF := map[float64]bool{}
	for _, r := range rows {
		k := key{r.Model, r.Ranking}
		if curves[k] == nil {
			curves[k] = map[uint64][]float64{}
			keys = append(keys, k)
		}
		curves[k][r.Seed] = append(curves[k][r.Seed], r.Top1)
		if !seenF[r.Fraction] {
			seenF[r.Fraction] = true
			fractions = append(fractions, r.Fraction)
		}
	}
	sort.Float64s(fractions)
	sec := Section{Title: "Channel pruning by gate", Text: "Each block's residual-branch output channels with the lowest mean gate (over the training images) are zeroed through the branch's last BatchNorm, without fine-tuning (see analysis.Pruning); accuracy on the test split. Baselines: BN |γ| and a random order. Line: mean over seeds, band: ± sd. The paper: SRM keeps its accuracy best."}
	t := Table{Header: []string{"model", "ranking"}}
	for _, f := range fractions {
		t.Header = append(t.Header, fmt.Sprintf("%.0f %%", 100*f))
	}
	t.Header = append(t.Header, "mean over fractions")
	area := map[string]analysis.Summary{}
	var gate, srmRanks []plots.Series
	for _, k := range keys {
		var ys [][]float64
		var areas []float64
		for _, y := range curves[k] {
			ys = append(ys, y)
			a, _ := analysis.MeanSD(y)
			areas = append(areas, a)
		}
		s := meanBand(k.model+" ("+k.ranking+")", ys, fractions)
		row := []string{k.model, k.ranking}
		for j := range s.Y {
			row = append(row, meanSD(s.Y[j], (s.Hi[j]-s.Lo[j])/2))
		}
		m, sd := analysis.MeanSD(areas)
		t.Rows = append(t.Rows, append(row, meanSD(m, sd)))
		if k.ranking == analysis.RankGate {
			area[k.model] = analysis.Summary{Model: k.model, Mean: m, SD: sd, N: len(areas)}
			s.Name = k.model
			gate = append(gate, s)
		}
		if kindOf(k.model) == "srm" {
			s.Name = k.ranking
			s.Dashed = k.ranking != analysis.RankGate
			srmRanks = append(srmRanks, s)
		}
	}
	sec.Tables = append(sec.Tables, t)
	claims := Table{Title: "Claim: SRM keeps accuracy best under gate pruning", Header: []string{"comparison", "verdict", "evidence (mean accuracy over fractions, mean ± sd over seeds)"}}
	kinds := map[string]string{}
	for m := range area {
		kinds[kindOf(m)] = m
	}
	if s, ok := kinds["srm"]; ok {
		for _, other := range []string{"se", "ge"} {
			if o, ok := kinds[other]; ok {
				v, e := ordering([]string{s, o}, area)
				claims.Rows = append(claims.Rows, []string{"SRM ≥ " + strings.ToUpper(other), v, e})
			}
		}
	}
	sec.Tables = append(sec.Tables, claims)
	for _, fig := range []struct {
		series      []plots.Series
		name, title string
	}{{gate, "pruning-gate", "Accuracy after zeroing the lowest-gate channels"}, {srmRanks, "pruning-srm-rankings", "SRM: gate ranking against BN |γ| and random"}} {
		if len(fig.series) == 0 {
			continue
		}
		p, err := plots.Lines(fig.title, "channels zeroed per block (fraction)", "test top-1 accuracy (%)", fig.series)
		if err != nil {
			return err
		}
		f, err := b.figure(p, fig.name, fig.title)
		if err != nil {
			return err
		}
		sec.Figures = append(sec.Figures, f)
	}
	b.add(sec)
	return nil
}

// meanBand is the mean ± sd over seeds of equally long curves at xs.
func meanBand(name string, ys [][]float64, xs []float64) plots.Series {
	s := plots.Series{Name: name}
	for j, x := range xs {
		var col []float64
		for _, y := range ys {
			if j < len(y) {
				col = append(col, y[j])
			}
		}
		m, sd := analysis.MeanSD(col)
		s.X, s.Y = append(s.X, x), append(s.Y, m)
		s.Lo, s.Hi = append(s.Lo, m-sd), append(s.Hi, m+sd)
	}
	return s
}

func (b *builder) domains() error {
	var rows []analysis.DomainRow
	if ok, err := b.read(analysis.DomainsFile, &rows); !ok || len(rows) == 0 {
		return err
	}
	sec := Section{Title: "Multi-domain results", Text: "All domains: trained on every domain, scored per domain. Leave one out: trained on the other domains, scored on the held-out one. Mean ± sd over seeds. The paper trains on Office-Home's four domains, with SRM ahead."}
	for i, exp := range []string{analysis.AllDomains, analysis.LeaveOneOut} {
		var ss []analysis.Summary
		var domains, models []string
		vals := map[[2]string][]float64{}
		for _, r := range rows {
			if r.Experiment != exp {
				continue
			}
			k := [2]string{r.Model, r.Domain}
			if vals[k] == nil {
				if !contains(domains, r.Domain) {
					domains = append(domains, r.Domain)
				}
				if !contains(models, r.Model) {
					models = append(models, r.Model)
				}
			}
			vals[k] = append(vals[k], r.Top1)
		}
		if len(models) == 0 {
			continue
		}
		t := Table{Title: exp, Header: append(append([]string{"model"}, domains...), "mean over domains")}
		means := map[string]analysis.Summary{}
		for _, m := range models {
			row := []string{m}
			var perSeedMean []float64
			for _, d := range domains {
				v := vals[[2]string{m, d}]
				mean, sd := analysis.MeanSD(v)
				row = append(row, meanSD(mean, sd))
				ss = append(ss, analysis.Summary{Model: m, Data: d, Mean: mean, SD: sd, N: len(v)})
				for j, x := range v {
					if j >= len(perSeedMean) {
						perSeedMean = append(perSeedMean, 0)
					}
					perSeedMean[j] += x / float64(len(domains))
				}
			}
			mean, sd := analysis.MeanSD(perSeedMean)
			means[m] = analysis.Summary{Model: m, Mean: mean, SD: sd}
			t.Rows = append(t.Rows, append(row, meanSD(mean, sd)))
		}
		sec.Tables = append(sec.Tables, t)
		kinds := map[string]string{}
		for m := range means {
			kinds[kindOf(m)] = m
		}
		if s, ok := kinds["srm"]; ok {
			if o, ok := kinds["se"]; ok {
				v, e := ordering([]string{s, o}, means)
				sec.Tables = append(sec.Tables, Table{Title: "Claim (" + exp + "): SRM ≥ SE over domains", Header: []string{"verdict", "evidence"}, Rows: [][]string{{v, e}}})
			}
		}
		f, err := b.bars(groupBars(exp+": test top-1 per domain (mean ± sd)", "top-1 accuracy (%)", ss, func(s analysis.Summary) string { return s.Data }), fmt.Sprintf("domains-%d", i+1))
		if err != nil {
			return err
		}
		sec.Figures = append(sec.Figures, f)
	}
	b.add(sec)
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// gates tabulates how gates vary with class and with domain, block by
// block, and draws the last block's per-domain gate distributions.
func (b *builder) gates() error {
	var vars []analysis.GateVarRow
	if ok, err := b.read(analysis.GateVarFile, &vars); !ok || len(vars) == 0 {
		return err
	}
	sec := Section{Title: "Gate statistics", Text: "Between-class and between-domain variance of each channel's gate (one-way ANOVA's between-group component, which is near zero or slightly negative when the groups do not differ), averaged over the block's channels and then over seeds, and as shares of the gate's total variance over the test images. On the bundled domains set the class is a letter's shape and the domain its drawing style, so a module that recalibrates by style has gates that move more with the domain than with the class. The paper argues SRM's gates follow style."}
	type key struct{ model, block string }
	acc := map[key][3][]float64{}
	var keys []key
	for _, v := range vars {
		k := key{v.Model, v.Block}
		a, ok := acc[k]
		if !ok {
			keys = append(keys, k)
		}
		a[0], a[1], a[2] = append(a[0], v.ClassVar), append(a[1], v.DomainVar), append(a[2], v.TotalVar)
		acc[k] = a
	}
	t := Table{Header: []string{"model", "block", "between-class var", "between-domain var", "total var", "class share", "domain share"}}
	var blocks []string
	series := map[string]*plots.BarSeries{}
	var order []string
	for _, k := range keys {
		c, _ := analysis.MeanSD(acc[k][0])
		d, _ := analysis.MeanSD(acc[k][1])
		tot, _ := analysis.MeanSD(acc[k][2])
		t.Rows = append(t.Rows, []string{k.model, k.block, fmt.Sprintf("%.2e", c), fmt.Sprintf("%.2e", d), fmt.Sprintf("%.2e", tot), fmt.Sprintf("%.3f", c/tot), fmt.Sprintf("%.3f", d/tot)})
		if !contains(blocks, k.block) {
			blocks = append(blocks, k.block)
		}
		if series[k.model] == nil {
			series[k.model] = &plots.BarSeries{Name: k.model + ": domain share − class share"}
			order = append(order, k.model)
		}
		series[k.model].Values = append(series[k.model].Values, (d-c)/tot)
	}
	sec.Tables = append(sec.Tables, t)
	if claim, ok := styleClaim(vars); ok {
		sec.Tables = append(sec.Tables, claim)
	}
	var bs []plots.BarSeries
	for _, m := range order {
		if len(series[m].Values) == len(blocks) {
			bs = append(bs, *series[m])
		}
	}
	f, err := b.bars(&plotsInput{"How much more the gates vary with style than with class", "(between-domain − between-class var) / total var", blocks, bs}, "gate-variance")
	if err != nil {
		return err
	}
	sec.Figures = append(sec.Figures, f)
	if f, ok, err := b.gateBoxes(blocks[len(blocks)-1]); err != nil {
		return err
	} else if ok {
		sec.Figures = append(sec.Figures, f)
	}
	b.add(sec)
	return nil
}

// gateBoxes draws, for one block, the distribution over its channels of
// the per-domain mean gate, a box per (domain, model).
func (b *builder) gateBoxes(block string) (Figure, bool, error) {
	var rows []analysis.GateRow
	if ok, err := b.read(analysis.GatesFile, &rows); !ok || len(rows) == 0 {
		return Figure{}, false, err
	}
	var domains, models []string
	vals := map[[2]string][]float64{}
	for _, r := range rows {
		if r.Block != block || r.By != "domain" {
			continue
		}
		if !contains(domains, r.Group) {
			domains = append(domains, r.Group)
		}
		if !contains(models, r.Model) {
			models = append(models, r.Model)
		}
		k := [2]string{r.Model, r.Group}
		vals[k] = append(vals[k], r.Mean)
	}
	if len(domains) == 0 {
		return Figure{}, false, nil
	}
	var series []plots.BoxSeries
	for _, m := range models {
		s := plots.BoxSeries{Name: m}
		for _, d := range domains {
			s.Values = append(s.Values, vals[[2]string{m, d}])
		}
		series = append(series, s)
	}
	title := "Mean gate per channel by domain, block " + block
	p, err := plots.Boxes(title, "mean gate of a channel", domains, series)
	if err != nil {
		return Figure{}, false, err
	}
	f, err := b.figure(p, "gates-by-domain", title)
	return f, err == nil, err
}

// styleClaim checks the paper's reading of SRM on our data: SRM's gates
// move more with style, relative to class, than SE's. The statistic is the
// domain share less the class share of the gate's variance, averaged over
// blocks, one value per seed; shares, unlike a ratio of the two
// between-group parts, stay finite when a part is near zero.
func styleClaim(vars []analysis.GateVarRow) (Table, bool) {
	type key struct {
		model string
		seed  uint64
	}
	sum, n := map[key]float64{}, map[key]int{}
	for _, v := range vars {
		if v.TotalVar > 0 {
			k := key{v.Model, v.Seed}
			sum[k] += (v.DomainVar - v.ClassVar) / v.TotalVar
			n[k]++
		}
	}
	perModel := map[string][]float64{}
	for k, s := range sum {
		perModel[k.model] = append(perModel[k.model], 100*s/float64(n[k]))
	}
	by := map[string]analysis.Summary{}
	kinds := map[string]string{}
	for m, xs := range perModel {
		mean, sd := analysis.MeanSD(xs)
		by[m] = analysis.Summary{Model: m, Mean: mean, SD: sd, N: len(xs)}
		kinds[kindOf(m)] = m
	}
	s, ok1 := kinds["srm"]
	e, ok2 := kinds["se"]
	if !ok1 || !ok2 {
		return Table{}, false
	}
	v, ev := ordering([]string{s, e}, by)
	return Table{Title: "Claim: SRM's gates follow style more than SE's", Header: []string{"statistic", "verdict", "evidence (mean ± sd over seeds)"},
		Rows: [][]string{{"domain share − class share of the gate variance (%), mean over blocks", v, ev}}}, true
}
