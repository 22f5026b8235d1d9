package plots

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
)

// saved writes p and decodes its PNG, checking the canvas size and that
// the figure is more than a blank page: the data colours must appear.
func saved(t *testing.T, p *plot.Plot) image.Image {
	t.Helper()
	base := filepath.Join(t.TempDir(), "fig")
	if err := Save(p, base); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(base + ".svg")
	if err != nil || !strings.Contains(string(svg), "<svg") {
		t.Fatalf("svg: %v", err)
	}
	f, err := os.Open(base + ".png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 840 || h != 540 {
		t.Errorf("canvas %dx%d, want 840x540 (7x4.5 in at 120 dpi)", w, h)
	}
	r0, g0, b0, _ := Color(0).RGBA()
	found := false
	for y := 0; y < img.Bounds().Dy() && !found; y++ {
		for x := 0; x < img.Bounds().Dx(); x++ {
			if r, g, b, _ := img.At(x, y).RGBA(); r == r0 && g == g0 && b == b0 {
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("the first series' colour appears nowhere in the figure")
	}
	return img
}

func TestFigures(t *testing.T) {
	lines, err := Lines("pruning", "fraction pruned", "top-1 (%)", []Series{
		{Name: "SRM", X: []float64{0, 0.5, 0.9}, Y: []float64{90, 70, 20}, Lo: []float64{88, 65, 15}, Hi: []float64{92, 75, 25}},
		{Name: "random", X: []float64{0, 0.5, 0.9}, Y: []float64{90, 40, 10}, Dashed: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	saved(t, lines)
	bars, err := Bars("ablation", "top-1 (%)", []string{"avg", "std"}, []BarSeries{{Name: "SRM", Values: []float64{40, 30}, Errors: []float64{2, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	saved(t, bars)
	boxes, err := Boxes("gates", "gate", []string{"a", "b"}, []BoxSeries{{Name: "SE", Values: [][]float64{{0.1, 0.5, 0.6}, {0.4, 0.7, 0.9}}}})
	if err != nil {
		t.Fatal(err)
	}
	saved(t, boxes)
}

func TestBarsRejectsMismatch(t *testing.T) {
	if _, err := Bars("x", "y", []string{"a", "b"}, []BarSeries{{Name: "s", Values: []float64{1}}}); err == nil {
		t.Error("one value for two categories accepted")
	}
}

func TestCrowdedLabelsSlant(t *testing.T) {
	short, err := Bars("x", "y", []string{"a", "b"}, []BarSeries{{Name: "s", Values: []float64{1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	long := make([]string, 8)
	for i := range long {
		long[i] = strings.Repeat("avg+std+max ", 2)
	}
	crowded, err := Bars("x", "y", long, []BarSeries{{Name: "s", Values: make([]float64, 8)}})
	if err != nil {
		t.Fatal(err)
	}
	if short.X.Tick.Label.Rotation != 0 || crowded.X.Tick.Label.Rotation == 0 {
		t.Errorf("rotations %v (short labels) and %v (crowded), want 0 and non-zero",
			short.X.Tick.Label.Rotation, crowded.X.Tick.Label.Rotation)
	}
}
