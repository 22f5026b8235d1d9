package datasets

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// textLine is a non-blank line of a text file, trimmed, with its 1-based
// number for error messages.
type textLine struct {
	text string
	num  int
}

// textLines splits the label and split files that CIFAR and DTD ship, which
// end in blank lines and may have CRLF endings.
func textLines(data []byte) []textLine {
	var out []textLine
	for k, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, textLine{text: l, num: k + 1})
		}
	}
	return out
}

// The CIFAR binary layout: label byte(s), then 1024 R, 1024 G and 1024 B
// bytes of a row-major 32x32 image, which is already CHW.
const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide
)

// CIFAR100Label picks which of CIFAR-100's two labels becomes Sample.Label.
type CIFAR100Label int

const (
	// Fine is the 100-class label, the one the SRM paper reports.
	Fine CIFAR100Label = iota
	// Coarse is the 20-superclass label.
	Coarse
)

// CIFAR10 reads the binary version of CIFAR-10 (cifar-10-batches-bin):
// data_batch_1..5.bin for training, test_batch.bin for testing and
// batches.meta.txt for the class names.
func CIFAR10(dir string) (*Splits, error) {
	classes, err := readNames(filepath.Join(dir, "batches.meta.txt"), 10)
	if err != nil {
		return nil, err
	}
	var train []string
	for k := 1; k <= 5; k++ {
		train = append(train, filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", k)))
	}
	return readCIFAR(classes, train, filepath.Join(dir, "test_batch.bin"), 1, 0)
}

// CIFAR100 reads the binary version of CIFAR-100 (cifar-100-binary):
// train.bin, test.bin, and fine_label_names.txt or coarse_label_names.txt.
func CIFAR100(dir string, label CIFAR100Label) (*Splits, error) {
	names, count, at := "fine_label_names.txt", 100, 1
	switch label {
	case Fine:
	case Coarse:
		names, count, at = "coarse_label_names.txt", 20, 0
	default:
		return nil, fmt.Errorf("datasets: CIFAR-100 label kind %d", label)
	}
	classes, err := readNames(filepath.Join(dir, names), count)
	if err != nil {
		return nil, err
	}
	return readCIFAR(classes, []string{filepath.Join(dir, "train.bin")}, filepath.Join(dir, "test.bin"), 2, at)
}

func readCIFAR(classes []string, train []string, test string, labelBytes, labelAt int) (*Splits, error) {
	tr, err := readCIFARFiles(classes, train, labelBytes, labelAt)
	if err != nil {
		return nil, err
	}
	te, err := readCIFARFiles(classes, []string{test}, labelBytes, labelAt)
	if err != nil {
		return nil, err
	}
	return &Splits{Train: tr, Test: te}, nil
}

func readCIFARFiles(classes []string, files []string, labelBytes, labelAt int) (*memData, error) {
	m := &memData{table: table{classes: classes}, c: 3, h: cifarSide, w: cifarSide}
	var size int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("datasets: %w", err)
		}
		size += st.Size()
	}
	m.pix = make([]uint8, 0, size)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("datasets: %w", err)
		}
		var labels []int
		labels, m.pix, err = parseCIFAR(m.pix, data, filepath.Base(f), labelBytes, labelAt, len(classes))
		if err != nil {
			return nil, err
		}
		m.labels = append(m.labels, labels...)
	}
	m.rows = identityRows(len(m.labels))
	return m, nil
}

// parseCIFAR splits CIFAR records of labelBytes label bytes and 3072 pixel
// bytes, taking the label at byte labelAt of each record and appending the
// pixels to dst.
func parseCIFAR(dst, data []byte, name string, labelBytes, labelAt, classes int) (labels []int, pix []uint8, err error) {
	rec := labelBytes + cifarPixels
	n := len(data) / rec
	if len(data)%rec != 0 {
		return nil, nil, fmt.Errorf("datasets: %s: record %d truncated at byte offset %d: the file has %d bytes, not a multiple of the %d-byte record",
			name, n, n*rec, len(data), rec)
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("datasets: %s: no records", name)
	}
	labels = make([]int, n)
	pix = dst
	for r := 0; r < n; r++ {
		off := r * rec
		labels[r] = int(data[off+labelAt])
		if labels[r] >= classes {
			return nil, nil, fmt.Errorf("datasets: %s: record %d (byte offset %d): label %d out of range [0, %d)",
				name, r, off+labelAt, labels[r], classes)
		}
		pix = append(pix, data[off+labelBytes:off+rec]...)
	}
	return labels, pix, nil
}

// readNames reads a file of class names, one a line, as CIFAR ships them
// (batches.meta.txt ends with blank lines); want is the expected count.
func readNames(path string, want int) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	return parseNames(data, filepath.Base(path), want)
}

func parseNames(data []byte, name string, want int) ([]string, error) {
	var names []string
	for _, l := range textLines(data) {
		if len(names) == want {
			return nil, fmt.Errorf("datasets: %s: line %d: more than %d class names", name, l.num, want)
		}
		names = append(names, l.text)
	}
	if len(names) != want {
		return nil, fmt.Errorf("datasets: %s: %d class names, want %d", name, len(names), want)
	}
	return names, nil
}
