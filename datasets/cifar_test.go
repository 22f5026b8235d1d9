package datasets

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cifarRecord builds one record whose pixel p of channel c is (label+c+p)%256,
// so a test can check the layout without storing images.
func cifarRecord(labels ...byte) []byte {
	rec := append([]byte{}, labels...)
	for c := 0; c < 3; c++ {
		for p := 0; p < cifarSide*cifarSide; p++ {
			rec = append(rec, byte(int(labels[len(labels)-1])+c+p))
		}
	}
	return rec
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeCIFAR10 lays out a CIFAR-10 binary folder with n records per batch
// file, labels cycling through the classes.
func writeCIFAR10(t testing.TB, dir string, n int) {
	names := "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
	writeFile(t, filepath.Join(dir, "batches.meta.txt"), []byte(names))
	files := []string{"test_batch.bin"}
	for k := 1; k <= 5; k++ {
		files = append(files, fmt.Sprintf("data_batch_%d.bin", k))
	}
	for f, name := range files {
		var buf bytes.Buffer
		for r := 0; r < n; r++ {
			buf.Write(cifarRecord(byte((f + r) % 10)))
		}
		writeFile(t, filepath.Join(dir, name), buf.Bytes())
	}
}

func TestCIFAR10(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR10(t, dir, 4)
	sp, err := CIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Train.Len() != 20 || sp.Test.Len() != 4 || sp.Val != nil {
		t.Fatalf("train %d test %d, want 20 and 4", sp.Train.Len(), sp.Test.Len())
	}
	if c := sp.Train.Classes(); len(c) != 10 || c[0] != "airplane" || c[9] != "truck" {
		t.Errorf("classes %q", c)
	}
	if sp.Train.Domains() != nil {
		t.Errorf("domains %q, want nil", sp.Train.Domains())
	}
	// Record 1 of data_batch_1 (file 1) has label 2.
	s, err := sp.Train.Sample(1)
	if err != nil {
		t.Fatal(err)
	}
	img := s.Image
	if s.Label != 2 || img.C != 3 || img.H != 32 || img.W != 32 {
		t.Fatalf("label %d shape %dx%dx%d", s.Label, img.C, img.H, img.W)
	}
	// Green plane, row 1, column 3: pixel 35 of channel 1.
	if got, want := img.Pix[1024+35], float32(byte(2+1+35))/255; got != want {
		t.Errorf("pixel %v, want %v", got, want)
	}
	if _, err := sp.Train.Sample(20); err == nil {
		t.Error("sample 20 of 20: no error")
	}
}

func TestCIFAR100(t *testing.T) {
	dir := t.TempDir()
	var fine, coarse strings.Builder
	for k := 0; k < 100; k++ {
		fmt.Fprintf(&fine, "fine%d\n", k)
	}
	for k := 0; k < 20; k++ {
		fmt.Fprintf(&coarse, "coarse%d\n", k)
	}
	writeFile(t, filepath.Join(dir, "fine_label_names.txt"), []byte(fine.String()))
	writeFile(t, filepath.Join(dir, "coarse_label_names.txt"), []byte(coarse.String()))
	writeFile(t, filepath.Join(dir, "train.bin"), append(cifarRecord(3, 42), cifarRecord(19, 99)...))
	writeFile(t, filepath.Join(dir, "test.bin"), cifarRecord(0, 7))
	for _, tc := range []struct {
		label CIFAR100Label
		want  []int
		name  string
	}{{Fine, []int{42, 99}, "fine99"}, {Coarse, []int{3, 19}, "coarse19"}} {
		sp, err := CIFAR100(dir, tc.label)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range tc.want {
			s, err := sp.Train.Sample(i)
			if err != nil || s.Label != w {
				t.Errorf("label kind %d, sample %d: label %d (%v), want %d", tc.label, i, s.Label, err, w)
			}
		}
		if got := sp.Train.Classes()[tc.want[1]]; got != tc.name {
			t.Errorf("class name %q, want %q", got, tc.name)
		}
	}
}

func TestCIFARErrors(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR10(t, dir, 3)
	// Truncate data_batch_3 by one byte: record 2 is cut.
	p := filepath.Join(dir, "data_batch_3.bin")
	data, _ := os.ReadFile(p)
	writeFile(t, p, data[:len(data)-1])
	_, err := CIFAR10(dir)
	wantErr(t, err, "data_batch_3.bin", "record 2", "offset 6146")

	writeFile(t, p, data)
	bad := append([]byte{}, data...)
	bad[3073] = 10 // label of record 1
	writeFile(t, filepath.Join(dir, "test_batch.bin"), bad)
	_, err = CIFAR10(dir)
	wantErr(t, err, "test_batch.bin", "record 1", "offset 3073", "label 10")

	os.Remove(filepath.Join(dir, "data_batch_5.bin"))
	_, err = CIFAR10(dir)
	wantErr(t, err, "data_batch_5.bin")

	writeFile(t, filepath.Join(dir, "batches.meta.txt"), []byte("a\nb\n"))
	_, err = CIFAR10(dir)
	wantErr(t, err, "batches.meta.txt", "2 class names, want 10")
}

// wantErr fails unless err mentions every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// FuzzParseCIFAR builds files from fuzzed label bytes and a fuzzed cut
// rather than fuzzing whole files: 3 KB records make byte-level fuzzing
// crawl, and the pixel bytes take no part in parsing.
func FuzzParseCIFAR(f *testing.F) {
	f.Add([]byte{3}, 0, 1, 0)
	f.Add([]byte{3, 42, 19, 99}, 0, 2, 1)
	f.Add([]byte{3, 10}, -100, 1, 0)
	f.Fuzz(func(t *testing.T, labels []byte, cut, labelBytes, labelAt int) {
		labelBytes = 1 + fold(labelBytes)%2
		labelAt = fold(labelAt) % labelBytes
		if len(labels) > 64 {
			return
		}
		var data []byte
		for r := 0; r+labelBytes <= len(labels); r += labelBytes {
			data = append(data, cifarRecord(labels[r:r+labelBytes]...)...)
		}
		if cut = fold(cut) % (2*labelBytes + 2*cifarPixels); cut < len(data) {
			data = data[:len(data)-cut]
		}
		recs, pix, err := parseCIFAR(nil, data, "fuzz.bin", labelBytes, labelAt, 10)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.bin") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if len(pix) != len(recs)*cifarPixels || len(data) != len(recs)*(labelBytes+cifarPixels) {
			t.Errorf("%d bytes gave %d labels, %d pixels", len(data), len(recs), len(pix))
		}
		for _, l := range recs {
			if l < 0 || l >= 10 {
				t.Errorf("label %d accepted", l)
			}
		}
	})
}

func FuzzParseNames(f *testing.F) {
	f.Add([]byte("airplane\nautomobile\n\n"), 2)
	f.Add([]byte("a\r\nb\r\n"), 2)
	f.Fuzz(func(t *testing.T, data []byte, want int) {
		want = fold(want) % 200
		names, err := parseNames(data, "names.txt", want)
		if err == nil && len(names) != want {
			t.Errorf("%d names, want %d", len(names), want)
		}
	})
}

// fold maps any int to a non-negative one without overflowing at MinInt,
// for turning fuzzed ints into sizes.
func fold(n int) int {
	if n < 0 {
		return -(n + 1)
	}
	return n
}
