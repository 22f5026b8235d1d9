package weights

import (
	"archive/zip"
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

// The fuzz targets feed arbitrary bytes to each parser: they must return a
// tensor consistent with its shape or an error, and never panic.

func FuzzLoadSafetensors(f *testing.F) {
	p := filepath.Join(f.TempDir(), "seed.safetensors")
	src := newTiny()
	src.fill()
	if err := Save(src, p, map[string]string{"arch": "tiny"}); err != nil {
		f.Fatal(err)
	}
	f.Add(readFile(f, p))
	f.Add(rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}`, make([]byte, 16)))
	f.Add(rawSafetensors(`{"__metadata__":{"k":"v"},"e":{"dtype":"F64","shape":[0,3],"data_offsets":[0,0]}}  `, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, _, err := readSafetensors(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, n := range ts {
			if n.Tensor.Len() != tensor.Numel(n.Tensor.Shape()) || n.DType.size() == 0 {
				t.Fatalf("inconsistent tensor %q: %v %s", n.Name, n.Tensor, n.DType)
			}
		}
	})
}

func FuzzReadNpy(f *testing.F) {
	dir := f.TempDir()
	for i, x := range []*tensor.Tensor{
		tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		tensor.FromFloat64([]float64{1, 2}, 2),
		tensor.Scalar(tensor.Float32, 1),
	} {
		p := filepath.Join(dir, string(rune('a'+i))+".npy")
		if err := WriteNpy(p, x); err != nil {
			f.Fatal(err)
		}
		f.Add(readFile(f, p))
	}
	f.Add(npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2L, 1L), }", f32bytes(1, 2)))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := parseNpy(b)
		if err != nil {
			return
		}
		if x.DType() != tensor.Float32 || x.Len() != tensor.Numel(x.Shape()) {
			t.Fatalf("inconsistent tensor %v", x)
		}
	})
}

// FuzzTorchLoad fuzzes whole archives and, since a mutated archive mostly
// fails its CRC checks before the pickle is reached, also pickles wrapped
// in a valid archive that holds the seed state_dict's storages.
func FuzzTorchLoad(f *testing.F) {
	ts := tinyTorchTensors()
	storages := make([][]byte, len(ts))
	for i, t := range ts {
		storages[i] = t.data
	}
	for _, checkpoint := range []bool{false, true} {
		archive := torchArchiveBytes("a", ts, checkpoint)
		f.Add(archive, recordData(f, archive, "a/data.pkl"))
	}
	strided := torchArchiveBytes("s", []fakeTensor{{name: "t", class: "FloatStorage", data: f32bytes(0, 1, 2, 3, 4, 5), numel: 6, offset: 1, size: []int{2, 2}, stride: []int{1, 2}}}, false)
	f.Add(strided, recordData(f, strided, "s/data.pkl"))
	f.Fuzz(func(t *testing.T, archive, pkl []byte) {
		for _, b := range [][]byte{archive, pickleArchive(pkl, storages)} {
			ts, err := readTorch(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				continue
			}
			for _, n := range ts {
				if n.Tensor.Len() != tensor.Numel(n.Tensor.Shape()) || n.DType.size() == 0 {
					t.Fatalf("inconsistent tensor %q: %v %s", n.Name, n.Tensor, n.DType)
				}
			}
		}
	})
}

// recordData returns the content of one record of a zip archive.
func recordData(t testing.TB, archive []byte, name string) []byte {
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name == name {
			b, err := readRecord(f, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no record %s", name)
	return nil
}

// pickleArchive wraps pkl and storages a/data/0, a/data/1, ... in a torch
// archive.
func pickleArchive(pkl []byte, storages [][]byte) []byte {
	var b bytes.Buffer
	zw := newZip(&b)
	zw.add("a/data.pkl", pkl)
	for i, s := range storages {
		zw.add(fmt.Sprint("a/data/", i), s)
	}
	zw.close()
	return b.Bytes()
}
