package plots

import (
	"bufio"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/srmlab/srmlab/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Width and Height are the canvas of every figure; DPI the PNG resolution.
const (
	Width  = 7 * vg.Inch
	Height = 4.5 * vg.Inch
	DPI    = 120
)

// palette is Okabe and Ito's colour-blind-safe set, black last.
var palette = []color.Color{
	color.RGBA{0, 114, 178, 255},   // blue
	color.RGBA{213, 94, 0, 255},    // vermillion
	color.RGBA{0, 158, 115, 255},   // bluish green
	color.RGBA{204, 121, 167, 255}, // reddish purple
	color.RGBA{230, 159, 0, 255},   // orange
	color.RGBA{86, 180, 233, 255},  // sky blue
	color.RGBA{240, 228, 66, 255},  // yellow
	color.RGBA{0, 0, 0, 255},
}

// Color is the colour of series i in every figure.
func Color(i int) color.Color { return palette[i%len(palette)] }

// newPlot starts a figure in the shared style.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 13
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = 11
		a.Tick.Label.Font.Size = 9
	}
	p.Legend.TextStyle.Font.Size = 9
	p.Legend.Top = true
	p.Legend.Padding = vg.Points(2)
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(6), -vg.Points(2)
	p.X.Tick.Marker, p.Y.Tick.Marker = niceTicks{}, niceTicks{}
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 225}
	g.Horizontal.Color = color.Gray{Y: 225}
	p.Add(g)
	return p
}

// niceTicks labels about six round steps (1, 2 or 5 times a power of ten)
// whatever the range, where gonum's default labels as few as two once the
// range is not round.
type niceTicks struct{}

// Ticks implements plot.Ticker.
func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{2, 5, 10} {
		if step < raw {
			step = m * mag
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		x := math.Round(v/step) * step
		if x == 0 {
			x = 0 // not -0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(x, 'g', 6, 64)})
	}
	return ticks
}

// headroom raises the top of the y axis so that the legend, drawn in the
// top right corner, sits above the data instead of on it: one line of
// legend takes about 5 % of the height.
func headroom(p *plot.Plot, entries int) {
	span := p.Y.Max - p.Y.Min
	p.Y.Max += span * 0.06 * float64(entries+1)
}

// Save writes p as base+".png" and base+".svg", creating base's folder;
// each file is replaced atomically, so a report being rebuilt never links a
// half-drawn figure.
func Save(p *plot.Plot, base string) error {
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return err
	}
	png := vgimg.NewWith(vgimg.UseWH(Width, Height), vgimg.UseDPI(DPI))
	p.Draw(draw.New(png))
	if err := write(base+".png", vgimg.PngCanvas{Canvas: png}); err != nil {
		return err
	}
	svg := vgsvg.New(Width, Height)
	p.Draw(draw.New(svg))
	return write(base+".svg", svg)
}

func write(path string, c io.WriterTo) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		_, err := c.WriteTo(w)
		return err
	})
}

// colorRGBA turns color.Color's 16-bit channels into a colour with alpha a,
// for the translucent error bands.
func colorRGBA(r, g, b uint32, a uint8) color.Color {
	return color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), a}
}
