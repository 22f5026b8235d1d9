package datasets

import (
	"fmt"
	"slices"
)

// Image is one picture in CHW order, the layout a Batch and the engine use,
// so a Loader copies it without reordering.
type Image struct {
	Pix     []float32 // C*H*W values, channel planes one after another
	C, H, W int
}

// NewImage allocates a zeroed image; zero is what padding fills with.
func NewImage(c, h, w int) Image {
	return Image{Pix: make([]float32, c*h*w), C: c, H: h, W: w}
}

// Sample is one decoded example. Domain is 0 for data sets without domains.
type Sample struct {
	Image  Image
	Label  int
	Domain int
}

// Dataset is random access to decoded examples. Sample must be safe for
// concurrent use: a Loader calls it from several goroutines.
type Dataset interface {
	// Len is the number of examples.
	Len() int
	// Classes names the labels, index by index.
	Classes() []string
	// Domains names the domains index by index, or is nil when the data
	// set has none. A domain-filtered view keeps the full list so that
	// domain ids agree between views of the same data.
	Domains() []string
	// Sample decodes example i, 0 <= i < Len(), as RGB in [0, 1].
	Sample(i int) (Sample, error)
}

// Splits are the parts of a data set that Open returns. Val is nil where the
// data set has no validation split.
type Splits struct {
	Train, Val, Test Dataset
}

// table holds what every reader knows about its examples without decoding
// them, so class balance, stratified splits and domain filters work the same
// for in-memory and on-disk data.
type table struct {
	classes []string
	domains []string
	labels  []int
	doms    []int // nil when the data set has no domains
}

func (t *table) Len() int          { return len(t.labels) }
func (t *table) Classes() []string { return t.classes }
func (t *table) Domains() []string { return t.domains }

func (t *table) domain(i int) int {
	if t.doms == nil {
		return 0
	}
	return t.doms[i]
}

// pick returns the table restricted to the given examples.
func (t *table) pick(keep []int) table {
	out := table{classes: t.classes, domains: t.domains, labels: make([]int, len(keep))}
	if t.doms != nil {
		out.doms = make([]int, len(keep))
	}
	for k, i := range keep {
		out.labels[k] = t.labels[i]
		if t.doms != nil {
			out.doms[k] = t.doms[i]
		}
	}
	return out
}

// domainIndices returns the examples whose domain is one of names.
func (t *table) domainIndices(names []string) ([]int, error) {
	if t.domains == nil {
		return nil, fmt.Errorf("datasets: domain filter on a data set without domains")
	}
	want := make([]bool, len(t.domains))
	for _, n := range names {
		d := slices.Index(t.domains, n)
		if d < 0 {
			return nil, fmt.Errorf("datasets: unknown domain %q (have %q)", n, t.domains)
		}
		want[d] = true
	}
	var keep []int
	for i := range t.labels {
		if want[t.doms[i]] {
			keep = append(keep, i)
		}
	}
	return keep, nil
}

// memData holds 8-bit CHW images in one contiguous block: CIFAR, MNIST and
// the bundled sets fit in memory, and a quarter of the float32 size matters
// for CIFAR's 150 MB of pixels.
type memData struct {
	table
	pix     []uint8
	rows    []int // row of pix for each example
	c, h, w int   // c is 3 (RGB) or 1 (grey)
}

func (m *memData) Sample(i int) (Sample, error) {
	if i < 0 || i >= len(m.rows) {
		return Sample{}, fmt.Errorf("datasets: sample %d out of range [0, %d)", i, len(m.rows))
	}
	n := m.c * m.h * m.w
	src := m.pix[m.rows[i]*n : (m.rows[i]+1)*n]
	// Grey data (MNIST) is stored once and replicated into RGB here.
	img := NewImage(3, m.h, m.w)
	plane := m.h * m.w
	for c := range 3 {
		from := src[c%m.c*plane : (c%m.c+1)*plane]
		for k, v := range from {
			img.Pix[c*plane+k] = float32(v) / 255
		}
	}
	return Sample{Image: img, Label: m.labels[i], Domain: m.domain(i)}, nil
}

func (m *memData) subset(keep []int) *memData {
	rows := make([]int, len(keep))
	for k, i := range keep {
		rows[k] = m.rows[i]
	}
	return &memData{table: m.pick(keep), pix: m.pix, rows: rows, c: m.c, h: m.h, w: m.w}
}

// identityRows numbers rows 0..n-1, the layout of freshly read data.
func identityRows(n int) []int {
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	return rows
}
