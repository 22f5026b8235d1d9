package plots

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// BoxSeries is one box per category: Values[c] are the samples of category
// c.
type BoxSeries struct {
	Name   string
	Values [][]float64
}

// Boxes draws grouped box plots (median, quartiles, whiskers at 1.5 IQR,
// outliers as points), the gate distributions per class or per domain with
// a series per module.
func Boxes(title, yLabel string, categories []string, series []BoxSeries) (*plot.Plot, error) {
	p := newPlot(title, "", yLabel)
	n := len(series)
	slot := (Width - vg.Inch) / vg.Length(max(len(categories), 1))
	for i, s := range series {
		if len(s.Values) != len(categories) {
			return nil, fmt.Errorf("plots: series %q has %d groups for %d categories", s.Name, len(s.Values), len(categories))
		}
		shift := (float64(i) - float64(n-1)/2) * groupWidth / float64(n)
		for c, v := range s.Values {
			if len(v) == 0 {
				continue
			}
			b, err := plotter.NewBoxPlot(slot*groupWidth/vg.Length(n)*0.85, float64(c)+shift, plotter.Values(v))
			if err != nil {
				return nil, err
			}
			b.FillColor = Color(i)
			p.Add(b)
			if c == 0 {
				p.Legend.Add(s.Name, swatch{Color(i)})
			}
		}
	}
	p.NominalX(categories...)
	headroom(p, len(series))
	return p, nil
}

// swatch is a legend entry of one filled colour: a box plot's own
// thumbnail is not one.
type swatch struct{ c color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	c.FillPolygon(s.c, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}})
}
