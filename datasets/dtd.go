package datasets

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// DTD reads the Describable Textures Dataset (dtd-r1.0.1): dir is the
// folder holding images/ and labels/ (the archive's dtd/ folder, or the
// folder above it). split picks one of the ten official splits, 1..10, read
// from labels/train<split>.txt, val<split>.txt and test<split>.txt. Classes
// are the sorted folder names under images/.
func DTD(dir string, split int) (*Splits, error) {
	if split < 1 || split > 10 {
		return nil, fmt.Errorf("datasets: DTD split %d, want 1..10", split)
	}
	if _, err := os.Stat(filepath.Join(dir, "images")); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, "dtd", "images")); err2 == nil {
			dir = filepath.Join(dir, "dtd")
		}
	}
	images := filepath.Join(dir, "images")
	classes, err := subdirs(images)
	if err != nil {
		return nil, err
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("datasets: %s has no class folders", images)
	}
	part := func(kind string) (*fileData, error) {
		file := filepath.Join(dir, "labels", fmt.Sprintf("%s%d.txt", kind, split))
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("datasets: %w", err)
		}
		entries, err := parseDTDSplit(data, file)
		if err != nil {
			return nil, err
		}
		f := &fileData{table: table{classes: classes}}
		for _, e := range entries {
			c, ok := slices.BinarySearch(classes, e.class)
			if !ok {
				return nil, fmt.Errorf("datasets: %s: line %d: class %q has no folder in %s", file, e.line, e.class, images)
			}
			p := filepath.Join(images, filepath.FromSlash(e.path))
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("datasets: %s: line %d: %w", file, e.line, err)
			}
			f.paths = append(f.paths, p)
			f.labels = append(f.labels, c)
		}
		return f, nil
	}
	var parts [3]*fileData
	for k, kind := range []string{"train", "val", "test"} {
		if parts[k], err = part(kind); err != nil {
			return nil, err
		}
	}
	return &Splits{Train: parts[0], Val: parts[1], Test: parts[2]}, nil
}

type dtdEntry struct {
	path, class string
	line        int
}

// parseDTDSplit reads a DTD split file: one "class/file.jpg" a line, blank
// lines ignored. Entries that could leave the images folder are errors.
func parseDTDSplit(data []byte, name string) ([]dtdEntry, error) {
	var out []dtdEntry
	for _, l := range textLines(data) {
		s := l.text
		class, file, ok := strings.Cut(s, "/")
		if !ok || class == "" || file == "" || strings.Contains(file, "/") || strings.Contains(s, `\`) ||
			path.Clean(s) != s || class == ".." || file == ".." || class == "." {
			return nil, fmt.Errorf("datasets: %s: line %d: %q is not class/file.jpg", name, l.num, s)
		}
		out = append(out, dtdEntry{path: s, class: class, line: l.num})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("datasets: %s: no entries", name)
	}
	return out, nil
}
