package datasets

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// writeDTD lays out dtd/images/<class>/<class>_000k.jpg for three classes of
// four images, with split 1 putting image 0 of each class in train, 1 in val
// and 2 and 3 in test.
func writeDTD(t *testing.T, root string) {
	classes := []string{"banded", "bubbly", "zigzagged"}
	var parts [3]strings.Builder
	for c, class := range classes {
		for k := 0; k < 4; k++ {
			name := fmt.Sprintf("%s/%s_%04d.jpg", class, class, k)
			encode(t, filepath.Join(root, "dtd", "images", filepath.FromSlash(name)), testImage(8, 6, uint8(40*c)))
			fmt.Fprintln(&parts[min(k, 2)], name)
		}
	}
	for p, kind := range []string{"train", "val", "test"} {
		writeFile(t, filepath.Join(root, "dtd", "labels", kind+"1.txt"), []byte(parts[p].String()))
	}
}

func TestDTD(t *testing.T) {
	root := t.TempDir()
	writeDTD(t, root)
	// Both the folder above dtd/ and dtd/ itself are accepted.
	for _, dir := range []string{root, filepath.Join(root, "dtd")} {
		sp, err := DTD(dir, 1)
		if err != nil {
			t.Fatal(err)
		}
		if sp.Train.Len() != 3 || sp.Val.Len() != 3 || sp.Test.Len() != 6 {
			t.Fatalf("train %d val %d test %d", sp.Train.Len(), sp.Val.Len(), sp.Test.Len())
		}
		s, err := sp.Test.Sample(5)
		if err != nil {
			t.Fatal(err)
		}
		if s.Label != 2 || sp.Test.Classes()[2] != "zigzagged" || s.Image.H != 6 || s.Image.W != 8 {
			t.Errorf("test sample 5: label %d, %dx%d", s.Label, s.Image.H, s.Image.W)
		}
	}
	_, err := DTD(root, 2)
	wantErr(t, err, "train2.txt")
	_, err = DTD(root, 11)
	wantErr(t, err, "split 11")
}

func TestDTDErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"woven/woven_0001.jpg", "class \"woven\" has no folder"},
		{"banded/missing.jpg", "missing.jpg"},
		{"../etc/passwd", "is not class/file.jpg"},
		{"banded_0001.jpg", "is not class/file.jpg"},
	} {
		root := t.TempDir()
		writeDTD(t, root)
		lines := "banded/banded_0000.jpg\n\n" + tc.line + "\n"
		writeFile(t, filepath.Join(root, "dtd", "labels", "val1.txt"), []byte(lines))
		_, err := DTD(root, 1)
		wantErr(t, err, "val1.txt", "line 3", tc.want)
	}
}

func FuzzParseDTDSplit(f *testing.F) {
	f.Add([]byte("banded/banded_0002.jpg\nbubbly/bubbly_0038.jpg\n"))
	f.Add([]byte("a/b\r\n\n./c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseDTDSplit(data, "split.txt")
		if err != nil {
			return
		}
		for _, e := range entries {
			if strings.Contains(e.path, "..") && strings.Count(e.path, "/") != 1 || filepath.IsAbs(e.path) || !strings.HasPrefix(e.path, e.class+"/") {
				t.Errorf("entry %+v escapes its class folder", e)
			}
		}
	})
}
