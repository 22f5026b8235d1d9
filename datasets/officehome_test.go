package datasets

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// writeOfficeHome lays out the archive's tree: four domains, "Real World"
// with its space, three classes of five images each (JPEGs whose red tells
// domain and class), one class missing
// from Product.
func writeOfficeHome(t *testing.T, root string) {
	for d, dom := range []string{"Art", "Clipart", "Product", "Real World"} {
		for c, class := range []string{"Alarm_Clock", "Backpack", "Bike"} {
			if dom == "Product" && class == "Bike" {
				continue
			}
			for k := 0; k < 5; k++ {
				p := filepath.Join(root, officeHomeRoot, dom, class, fmt.Sprintf("%05d.jpg", k))
				encode(t, p, testImage(4, 4, uint8(60*d+20*c)))
			}
		}
	}
	writeFile(t, filepath.Join(root, officeHomeRoot, "ImageInfo.csv"), []byte("not a domain"))
}

func TestOfficeHome(t *testing.T) {
	root := t.TempDir()
	writeOfficeHome(t, root)
	sp, err := OfficeHome(root, nil, 0.2, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 11 (domain, class) groups of 5: 1 each to test.
	if sp.Train.Len() != 44 || sp.Test.Len() != 11 {
		t.Fatalf("train %d test %d", sp.Train.Len(), sp.Test.Len())
	}
	if !slices.Equal(sp.Train.Domains(), []string{"Art", "Clipart", "Product", "Real World"}) {
		t.Errorf("domains %q", sp.Train.Domains())
	}
	if !slices.Equal(sp.Train.Classes(), []string{"Alarm_Clock", "Backpack", "Bike"}) {
		t.Errorf("classes %q", sp.Train.Classes())
	}
	counts := map[[2]int]int{}
	for i := 0; i < sp.Test.Len(); i++ {
		s, err := sp.Test.Sample(i)
		if err != nil {
			t.Fatal(err)
		}
		counts[[2]int{s.Domain, s.Label}]++
		if tag, want := s.Image.Pix[0]*255, float32(60*s.Domain+20*s.Label); tag < want-8 || tag > want+8 {
			t.Errorf("test %d: domain %d label %d, but the image's tag is %v", i, s.Domain, s.Label, tag)
		}
	}
	if len(counts) != 11 {
		t.Errorf("test groups %v, want one image from each of 11", counts)
	}

	// A domain filter keeps the ids and the split of the full set.
	rw, err := OfficeHome(filepath.Join(root, officeHomeRoot), []string{"Real World"}, 0.2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rw.Train.Len() != 12 || rw.Test.Len() != 3 {
		t.Fatalf("Real World: train %d test %d", rw.Train.Len(), rw.Test.Len())
	}
	full := sp.Test.(*fileData)
	for _, p := range rw.Test.(*fileData).paths {
		if !slices.Contains(full.paths, p) {
			t.Errorf("%s is in the filtered test split but not the full one", p)
		}
	}
	if s, _ := rw.Test.Sample(0); s.Domain != 3 {
		t.Errorf("Real World has domain %d, want 3", s.Domain)
	}
	_, err = OfficeHome(root, []string{"Sketch"}, 0.2, 0)
	wantErr(t, err, `unknown domain "Sketch"`)
}
