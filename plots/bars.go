package plots

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// BarSeries is one bar per category, with an error bar of ±Errors (nil: no
// error bars).
type BarSeries struct {
	Name   string
	Values []float64
	Errors []float64
}

// groupWidth is the share of a category's slot its bars fill.
const groupWidth = 0.8

// Bars draws series side by side within each category, with error bars:
// the ablation (one series, pooling sets as categories) and the per-domain
// results (a series per model, domains as categories). The y axis starts at
// 0, since a bar's length is its value.
func Bars(title, yLabel string, categories []string, series []BarSeries) (*plot.Plot, error) {
	p := newPlot(title, "", yLabel)
	n := len(series)
	// A bar's width is set in canvas units; the data area is the canvas
	// less about an inch of axis and margins.
	slot := (Width - vg.Inch) / vg.Length(max(len(categories), 1))
	for i, s := range series {
		if len(s.Values) != len(categories) || (s.Errors != nil && len(s.Errors) != len(categories)) {
			return nil, fmt.Errorf("plots: series %q has %d values and %d errors for %d categories", s.Name, len(s.Values), len(s.Errors), len(categories))
		}
		b, err := plotter.NewBarChart(plotter.Values(s.Values), slot*groupWidth/vg.Length(n))
		if err != nil {
			return nil, err
		}
		shift := (float64(i) - float64(n-1)/2) * groupWidth / float64(n)
		b.XMin = shift
		b.Color = Color(i)
		b.LineStyle.Width = 0
		p.Add(b)
		p.Legend.Add(s.Name, b)
		if s.Errors == nil {
			continue
		}
		e := make(errPoints, len(s.Values))
		for j := range s.Values {
			e[j] = errPoint{x: float64(j) + shift, y: s.Values[j], err: s.Errors[j]}
		}
		eb, err := plotter.NewYErrorBars(e)
		if err != nil {
			return nil, err
		}
		eb.LineStyle.Color, eb.LineStyle.Width = color.Black, vg.Points(1)
		eb.CapWidth = vg.Points(4)
		p.Add(eb)
	}
	p.NominalX(categories...)
	slantCrowdedLabels(p, categories, slot)
	p.Y.Min = 0
	headroom(p, len(series))
	return p, nil
}

type errPoint struct{ x, y, err float64 }

// errPoints places error bars at the bars' centres.
type errPoints []errPoint

func (e errPoints) Len() int                        { return len(e) }
func (e errPoints) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errPoints) YError(i int) (float64, float64) { return e[i].err, e[i].err }

// slantCrowdedLabels turns category labels by 30° when, set straight, the
// longest would run into its neighbours (ablation names such as
// "avg+std+max CFC" are wider than their bar slot).
func slantCrowdedLabels(p *plot.Plot, categories []string, slot vg.Length) {
	widest := vg.Length(0)
	for _, c := range categories {
		widest = max(widest, p.X.Tick.Label.Width(c))
	}
	if widest < slot*0.95 {
		return
	}
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
}
