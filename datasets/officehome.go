package datasets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// officeHomeRoot is the folder the Office-Home archive unpacks to.
const officeHomeRoot = "OfficeHomeDataset_10072016"

// OfficeHome reads Office-Home: dir holds the domain folders (Art, Clipart,
// Product, "Real World"), each with one folder per class; dir may also be
// the folder above OfficeHomeDataset_10072016. There is no official split,
// so each (domain, class) group is split by a seeded shuffle with testFrac
// of it going to test. A non-empty domains keeps only those domains; the
// split and the domain ids do not depend on it, so a model trained on
// {Art, Clipart} and tested on Product sees consistent ids and never a
// training image.
func OfficeHome(dir string, domains []string, testFrac float64, seed uint64) (*Splits, error) {
	if st, err := os.Stat(filepath.Join(dir, officeHomeRoot)); err == nil && st.IsDir() {
		dir = filepath.Join(dir, officeHomeRoot)
	}
	doms, err := subdirs(dir)
	if err != nil {
		return nil, err
	}
	if len(doms) == 0 {
		return nil, fmt.Errorf("datasets: %s has no domain folders", dir)
	}
	var classes []string
	for _, d := range doms {
		cs, err := subdirs(filepath.Join(dir, d))
		if err != nil {
			return nil, err
		}
		classes = append(classes, cs...)
	}
	slices.Sort(classes)
	classes = slices.Compact(classes)
	all := &fileData{table: table{classes: classes, domains: doms}}
	for d, dom := range doms {
		for c, class := range classes {
			files, err := imageFiles(filepath.Join(dir, dom, class))
			if errors.Is(err, fs.ErrNotExist) {
				continue // a class a domain lacks
			}
			if err != nil {
				return nil, err
			}
			for _, p := range files {
				all.paths = append(all.paths, p)
				all.labels = append(all.labels, c)
				all.doms = append(all.doms, d)
			}
		}
	}
	if len(all.paths) == 0 {
		return nil, fmt.Errorf("datasets: %s has no images", dir)
	}
	if len(domains) > 0 {
		keep, err := all.domainIndices(domains)
		if err != nil {
			return nil, err
		}
		all = all.subset(keep)
	}
	train, test, err := stratify(&all.table, testFrac, seed)
	if err != nil {
		return nil, err
	}
	return &Splits{Train: all.subset(train), Test: all.subset(test)}, nil
}
