package weights

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

// npyBytes assembles a version 1.0 .npy file from a header dict and data.
func npyBytes(dict string, data []byte) []byte {
	h := dict + strings.Repeat(" ", (64-(10+len(dict)+1)%64)%64) + "\n"
	b := append([]byte(npyMagic), 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h)))
	return append(append(b, h...), data...)
}

func TestNpyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, shape := range [][]int{{2, 3, 4}, {5}, {}, {0, 3}, {1, 1, 1, 1}} {
		for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
			x := tensor.New(dt, shape...)
			for i := range x.Len() {
				x.Set(i, float64(i)/7-1)
			}
			p := filepath.Join(dir, fmt.Sprintf("x%v%v.npy", shape, dt))
			if err := WriteNpy(p, x); err != nil {
				t.Fatal(err)
			}
			b := readFile(t, p)
			if hl := 10 + int(binary.LittleEndian.Uint16(b[8:])); hl%64 != 0 || b[hl-1] != '\n' {
				t.Errorf("%v: header of %d bytes is not padded to 64 and ended by a newline", shape, hl)
			}
			y, err := ReadNpy(p)
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.SameShape(x, y) || y.DType() != tensor.Float32 {
				t.Fatalf("%v %v: read back %v", shape, dt, y)
			}
			for i := range x.Len() {
				if y.At(i) != float64(float32(x.At(i))) {
					t.Fatalf("%v %v: element %d = %v, want %v", shape, dt, i, y.At(i), x.At(i))
				}
			}
		}
	}
}

func TestNpyHeaderVariants(t *testing.T) {
	dir := t.TempDir()
	data := f32bytes(1, 2, 3, 4, 5, 6)
	for _, dict := range []string{
		"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
		`{"shape": (2,3), "fortran_order": False, "descr": "<f4"}`,
		"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L)}", // Python 2 NumPy
	} {
		p := writeFile(t, dir, "v.npy", npyBytes(dict, data))
		x, err := ReadNpy(p)
		if err != nil {
			t.Errorf("%s: %v", dict, err)
			continue
		}
		if fmt.Sprint(x.Shape(), x.Float64s()) != "[2 3] [1 2 3 4 5 6]" {
			t.Errorf("%s: read %v %v", dict, x.Shape(), x.Float64s())
		}
	}
	// Format 2.0 has a 4-byte header length.
	h := "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }" + strings.Repeat(" ", 1) + "\n"
	b := append([]byte(npyMagic), 2, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(h)))
	p := writeFile(t, dir, "v2.npy", append(append(b, h...), data...))
	if x, err := ReadNpy(p); err != nil || x.Len() != 6 {
		t.Errorf("format 2.0: %v, %v", x, err)
	}
}

func TestReadNpyCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32bytes(1, 2, 3, 4, 5, 6))
	hdr := func(dict string) []byte { return npyBytes(dict, f32bytes(1, 2, 3, 4, 5, 6)) }
	cases := []struct {
		name  string
		file  []byte
		parts []string
	}{
		{"empty", nil, []string{"not a .npy file"}},
		{"magic", []byte("\x93NUMPX\x01\x00\x10\x00"), []string{"not a .npy file"}},
		{"short", good[:9], []string{"truncated", "offset 8"}},
		{"header cut", good[:40], []string{"truncated", "runs past the end"}},
		{"data cut", good[:len(good)-1], []string{"needs 24 bytes, but 23 follow"}},
		{"trailing", append(append([]byte{}, good...), 0), []string{"needs 24 bytes, but 25 follow"}},
		{"version", append([]byte(npyMagic), 4, 0, 0, 0), []string{"version 4.0"}},
		{"huge v2 header", append([]byte(npyMagic), 2, 0, 0xff, 0xff, 0xff, 0x7f), []string{"exceeds"}},
		{"fortran", hdr("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"), []string{"Fortran-order"}},
		{"big endian", hdr("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }"), []string{"big-endian"}},
		{"int", hdr("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"), []string{`dtype "<i8" not supported`}},
		{"record", hdr("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }"), []string{"descr", "quoted string"}},
		{"extra key", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}"), []string{`unexpected key "x"`}},
		{"missing key", hdr("{'descr': '<f4', 'shape': (6,)}"), []string{"got 2 keys"}},
		{"twice", hdr("{'descr': '<f4', 'descr': '<f4', 'shape': (6,)}"), []string{`"descr" appears twice`}},
		{"negative", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }"), []string{"shape", "non-negative int"}},
		{"overflow", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }"), []string{"needs"}},
		{"not a dict", hdr("['descr']"), []string{"not a dict literal"}},
		{"after dict", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x"), []string{`unexpected "x"`}},
		{"unterminated", hdr("{'descr: '<f4'}"), []string{"missing ':'"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, "bad.npy", c.file)
			_, err := ReadNpy(p)
			wantErr(t, err, append([]string{p}, c.parts...)...)
		})
	}
}
