package report

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"

	"github.com/srmlab/srmlab/analysis"
	"github.com/srmlab/srmlab/internal/atomicfile"
	"github.com/srmlab/srmlab/plots"
	"gonum.org/v1/plot"
)

// Table is one table of the report, cells already formatted.
type Table struct {
	Title  string
	Header []string
	Rows   [][]string
}

// Figure is one figure, File its path relative to the report folder
// without extension (File+".png" and File+".svg" exist).
type Figure struct {
	Title, File string
}

// Section is a heading with its text, tables and figures.
type Section struct {
	Title   string
	Text    string
	Tables  []Table
	Figures []Figure
}

// Report is the whole page.
type Report struct {
	Title    string
	Sections []Section
}

// Build reads the results folder in, draws the figures into out and writes
// out/index.html and out/report.md.
func Build(in, out string) error {
	r, err := Make(in, out)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(out, "report.md"), func(w *bufio.Writer) error {
		_, err := w.WriteString(r.Markdown())
		return err
	}); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(out, "index.html"), func(w *bufio.Writer) error {
		_, err := w.WriteString(r.HTML())
		return err
	})
}

// builder gathers sections while reading tables from in and drawing into
// out.
type builder struct {
	in, out string
	r       Report
}

// read reads a table of the results folder; a missing table (a step not
// run) is no error, the report just leaves its section out.
func (b *builder) read(file string, rows any) (bool, error) {
	err := analysis.ReadCSV(filepath.Join(b.in, file), rows)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// figure saves p as out/figures/name.{png,svg}.
func (b *builder) figure(p *plot.Plot, name, title string) (Figure, error) {
	rel := filepath.Join("figures", name)
	if err := plots.Save(p, filepath.Join(b.out, rel)); err != nil {
		return Figure{}, err
	}
	return Figure{Title: title, File: rel}, nil
}

// Make reads in and draws the figures into out without writing the pages,
// for callers (a notebook) that show the report themselves.
func Make(in, out string) (*Report, error) {
	b := &builder{in: in, out: out, r: Report{Title: "srmlab: the SRM paper's analyses, reproduced"}}
	for _, step := range []func() error{b.environment, b.sizes, b.imagenet, b.compare, b.ablation, b.dtd, b.training, b.pruning, b.domains, b.gates} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return &b.r, nil
}

// Markdown renders the report as GitHub Markdown.
func (r *Report) Markdown() string {
	var s strings.Builder
	fmt.Fprintf(&s, "# %s\n", r.Title)
	for _, sec := range r.Sections {
		s.WriteString(sec.Markdown())
	}
	return s.String()
}

// Section returns the section of the given title, for a notebook that shows
// one analysis.
func (r *Report) Section(title string) (Section, bool) {
	for _, s := range r.Sections {
		if s.Title == title {
			return s, true
		}
	}
	return Section{}, false
}

// Markdown renders one section, figures linked relative to the report
// folder.
func (sec Section) Markdown() string {
	var s strings.Builder
	fmt.Fprintf(&s, "\n## %s\n\n", sec.Title)
	if sec.Text != "" {
		fmt.Fprintf(&s, "%s\n", sec.Text)
	}
	for _, t := range sec.Tables {
		if t.Title != "" {
			fmt.Fprintf(&s, "\n**%s**\n", t.Title)
		}
		fmt.Fprintf(&s, "\n| %s |\n|%s\n", strings.Join(t.Header, " | "), strings.Repeat("---|", len(t.Header)))
		for _, row := range t.Rows {
			cells := make([]string, len(row))
			for i, c := range row {
				cells[i] = strings.ReplaceAll(c, "|", `\|`)
			}
			fmt.Fprintf(&s, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	for _, f := range sec.Figures {
		fmt.Fprintf(&s, "\n![%s](%s.png)\n", f.Title, filepath.ToSlash(f.File))
	}
	return s.String()
}

// HTML renders the report as one self-contained page (figures linked).
func (r *Report) HTML() string {
	var s strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&s, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>\n", e(r.Title))
	s.WriteString("<style>body{font-family:sans-serif;max-width:60em;margin:auto;padding:1em}" +
		"table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}" +
		"th{background:#eee}code{font-size:85%}img{max-width:100%}</style></head><body>\n")
	fmt.Fprintf(&s, "<h1>%s</h1>\n", e(r.Title))
	for _, sec := range r.Sections {
		fmt.Fprintf(&s, "<h2>%s</h2>\n", e(sec.Title))
		for _, para := range strings.Split(sec.Text, "\n\n") {
			if strings.TrimSpace(para) != "" {
				fmt.Fprintf(&s, "<p>%s</p>\n", e(para))
			}
		}
		for _, t := range sec.Tables {
			if t.Title != "" {
				fmt.Fprintf(&s, "<h3>%s</h3>\n", e(t.Title))
			}
			s.WriteString("<table><tr>")
			for _, h := range t.Header {
				fmt.Fprintf(&s, "<th>%s</th>", e(h))
			}
			s.WriteString("</tr>\n")
			for _, row := range t.Rows {
				s.WriteString("<tr>")
				for _, c := range row {
					fmt.Fprintf(&s, "<td>%s</td>", e(c))
				}
				s.WriteString("</tr>\n")
			}
			s.WriteString("</table>\n")
		}
		for _, f := range sec.Figures {
			p := filepath.ToSlash(f.File)
			fmt.Fprintf(&s, "<figure><a href=\"%s.svg\"><img src=\"%s.png\" alt=\"%s\"></a><figcaption>%s</figcaption></figure>\n", p, p, e(f.Title), e(f.Title))
		}
	}
	s.WriteString("</body></html>\n")
	return s.String()
}
