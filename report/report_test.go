package report_test

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/analysis"
	"github.com/srmlab/srmlab/plots"
	"github.com/srmlab/srmlab/report"
	"gonum.org/v1/plot/vg"
)

// TestReproduce runs every step and builds the report, then holds the
// report's tables to the CSV files and its figures to decodable,
// non-blank PNGs.
func TestReproduce(t *testing.T) {
	dir := t.TempDir()
	c := analysis.Tiny()
	c.Out = dir
	if err := analysis.Reproduce(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report")
	if err := report.Build(dir, out); err != nil {
		t.Fatal(err)
	}
	r, err := report.Make(dir, out)
	if err != nil {
		t.Fatal(err)
	}
	var sums []analysis.Summary
	if err := analysis.ReadCSV(filepath.Join(dir, analysis.SummaryFile), &sums); err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, s := range r.Sections {
		if s.Title == "Module comparison" {
			rows = s.Tables[0].Rows
		}
	}
	var want [][]string
	for _, s := range sums {
		if s.Experiment == "compare" {
			want = append(want, []string{s.Data, s.Model, fmt.Sprint(s.N), fmt.Sprintf("%.1f ± %.1f", s.Mean, s.SD), fmt.Sprintf("%.1f", s.Min), fmt.Sprintf("%.1f", s.Max)})
		}
	}
	if len(want) != 6 || fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("comparison table\n%v\nsummary.csv\n%v", rows, want)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range []string{"Module comparison", "Pooling and integration ablation", "Channel pruning by gate", "Multi-domain results", "Gate statistics", "Training curves", "Model size against the paper"} {
		if !strings.Contains(string(md), "## "+sec) || !strings.Contains(string(html), "<h2>"+sec) {
			t.Errorf("section %q missing", sec)
		}
	}
	for _, s := range r.Sections {
		if strings.HasPrefix(s.Title, "Model size") {
			for _, row := range s.Tables[0].Rows {
				if row[len(row)-1] != report.Held || row[len(row)-2] != report.Held {
					t.Errorf("size of %s not the paper's: %v", row[0], row)
				}
			}
		}
	}
	figs, _ := filepath.Glob(filepath.Join(out, "figures", "*.png"))
	if len(figs) < 7 {
		t.Fatalf("%d figures: %v", len(figs), figs)
	}
	for _, f := range figs {
		checkPNG(t, f)
		if _, err := os.Stat(strings.TrimSuffix(f, ".png") + ".svg"); err != nil {
			t.Error(err)
		}
	}
}

// checkPNG decodes a figure and wants the canvas size and real drawing on
// it: many distinct colours, not a blank page.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	wantW, wantH := int(float64(plots.Width/vg.Inch)*plots.DPI), int(float64(plots.Height/vg.Inch)*plots.DPI)
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("%s is %dx%d, want %dx%d", path, b.Dx(), b.Dy(), wantW, wantH)
	}
	if n := colours(img); n < 8 {
		t.Errorf("%s has %d colours: blank?", path, n)
	}
}

func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}
