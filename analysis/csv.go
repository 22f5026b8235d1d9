package analysis

import (
	"bufio"
	"fmt"
	"os"

	"github.com/gocarina/gocsv"
	"github.com/srmlab/srmlab/internal/atomicfile"
)

// WriteCSV replaces path with rows, a slice of one of the package's row
// types, through a temporary file and a rename, so that a later step (or a
// report built while an experiment runs) never reads a half-written table.
func WriteCSV(path string, rows any) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		return gocsv.Marshal(rows, w)
	})
}

// ReadCSV reads a table that WriteCSV wrote into rows, a pointer to a slice
// of the matching row type. Columns are matched by name, so a table keeps
// reading after columns are appended to its schema.
func ReadCSV(path string, rows any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("analysis: %w", err)
	}
	defer f.Close()
	if err := gocsv.UnmarshalFile(f, rows); err != nil {
		return fmt.Errorf("analysis: %s: %w", path, err)
	}
	return nil
}
