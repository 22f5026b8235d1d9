package plots

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Series is one line: Y over X, and optionally a band from Lo to Hi (the
// seed spread) drawn behind it in the line's colour.
type Series struct {
	Name   string
	X, Y   []float64
	Lo, Hi []float64
	// Dashed draws a baseline (a random ranking, say) apart from the
	// methods it is a baseline for.
	Dashed bool
}

// Lines draws series against shared axes, a point marker at every X so that
// sparse curves (few epochs, few pruning fractions) show where they were
// measured.
func Lines(title, xLabel, yLabel string, series []Series) (*plot.Plot, error) {
	p := newPlot(title, xLabel, yLabel)
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("plots: series %q has %d x and %d y values", s.Name, len(s.X), len(s.Y))
		}
		if len(s.X) == 0 {
			continue
		}
		col := Color(i)
		if len(s.Lo) == len(s.X) && len(s.Hi) == len(s.X) {
			band := make(plotter.XYs, 0, 2*len(s.X))
			for j := range s.X {
				band = append(band, plotter.XY{X: s.X[j], Y: s.Hi[j]})
			}
			for j := len(s.X) - 1; j >= 0; j-- {
				band = append(band, plotter.XY{X: s.X[j], Y: s.Lo[j]})
			}
			poly, err := plotter.NewPolygon(band)
			if err != nil {
				return nil, err
			}
			r, g, b, _ := col.RGBA()
			poly.Color = colorRGBA(r, g, b, 50)
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		xys := make(plotter.XYs, len(s.X))
		for j := range s.X {
			xys[j] = plotter.XY{X: s.X[j], Y: s.Y[j]}
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = col, vg.Points(1.6)
		if s.Dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		pts.Color, pts.Shape, pts.Radius = col, draw.CircleGlyph{}, vg.Points(2.2)
		p.Add(l, pts)
		p.Legend.Add(s.Name, l, pts)
	}
	headroom(p, len(series))
	return p, nil
}
