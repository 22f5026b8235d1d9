package weights

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	in := []Named{
		{Name: "a", Tensor: tensor.FromFloat32([]float32{1, -2.5, 3e-8, 4, 5, 6}, 2, 3)},
		{Name: "b64", Tensor: tensor.FromFloat64([]float64{0.1, 1e300}, 2)},
		{Name: "count", Tensor: tensor.Scalar(tensor.Float32, 12345), DType: I64},
		{Name: "empty", Tensor: tensor.Zeros(0, 4)},
		{Name: "scalar", Tensor: tensor.Scalar(tensor.Float32, 2)},
		{Name: "narrowed", Tensor: tensor.FromFloat64([]float64{1.5, 2.5}, 1, 2), DType: F32},
	}
	md := map[string]string{"arch": "srm_resnet20", "epoch": "3"}
	if err := SaveSafetensors(p, in, md); err != nil {
		t.Fatal(err)
	}
	got, gotMD, err := LoadSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotMD) != 2 || gotMD["arch"] != "srm_resnet20" || gotMD["epoch"] != "3" {
		t.Errorf("metadata %v, want %v", gotMD, md)
	}
	// 8-byte types are laid out first so that every tensor is aligned.
	order := []string{"b64", "count", "a", "empty", "scalar", "narrowed"}
	wantDT := map[string]DType{"a": F32, "b64": F64, "count": I64, "empty": F32, "scalar": F32, "narrowed": F32}
	byName := map[string]Named{}
	for i, g := range got {
		if g.Name != order[i] {
			t.Errorf("tensor %d is %q, want %q", i, g.Name, order[i])
		}
		if g.DType != wantDT[g.Name] {
			t.Errorf("%s: dtype %s, want %s", g.Name, g.DType, wantDT[g.Name])
		}
		byName[g.Name] = g
	}
	for _, w := range in {
		g := byName[w.Name].Tensor
		if !tensor.SameShape(g, w.Tensor) {
			t.Errorf("%s: shape %v, want %v", w.Name, g.Shape(), w.Tensor.Shape())
			continue
		}
		for i := range g.Len() {
			want := w.Tensor.At(i)
			if w.DType == F32 {
				want = float64(float32(want))
			}
			if g.At(i) != want {
				t.Errorf("%s[%d] = %v, want %v", w.Name, i, g.At(i), want)
			}
		}
	}
	if byName["b64"].Tensor.DType() != tensor.Float64 || byName["a"].Tensor.DType() != tensor.Float32 {
		t.Error("float64 data must stay float64 and float32 float32")
	}

	b := readFile(t, p)
	hlen := binary.LittleEndian.Uint64(b)
	if (8+hlen)%8 != 0 {
		t.Errorf("header of %d bytes leaves the data unaligned", hlen)
	}
	entries, _, err := parseSafetensorsHeader(b[8 : 8+hlen])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if (*e.Offsets)[0]%int64(e.DType.size()) != 0 {
			t.Errorf("%s at offset %d is not aligned for %s", e.name, (*e.Offsets)[0], e.DType)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestSaveSafetensorsRefuses(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	one := tensor.Zeros(1)
	cases := map[string]struct {
		ts   []Named
		want string
	}{
		"duplicate":   {[]Named{{Name: "x", Tensor: one}, {Name: "x", Tensor: one}}, `"x" appears twice`},
		"empty name":  {[]Named{{Name: "", Tensor: one}}, `invalid tensor name ""`},
		"metadata":    {[]Named{{Name: "__metadata__", Tensor: one}}, "invalid tensor name"},
		"nil":         {[]Named{{Name: "x"}}, `"x" is nil`},
		"dtype":       {[]Named{{Name: "x", Tensor: one, DType: "F16"}}, `unsupported dtype "F16"`},
		"fractional":  {[]Named{{Name: "x", Tensor: tensor.FromFloat32([]float32{1.5}, 1), DType: I64}}, "not an integer"},
		"beyond 2^53": {[]Named{{Name: "x", Tensor: tensor.FromFloat64([]float64{1 << 60}, 1), DType: I64}}, "not an integer"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			wantErr(t, SaveSafetensors(p, c.ts, nil), p, c.want)
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("a failed save left %s behind", p)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(leftovers) > 0 {
				t.Errorf("temporary files left behind: %v", leftovers)
			}
		})
	}
}

func TestSaveSafetensorsKeepsOldFileOnError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	good := []Named{{Name: "x", Tensor: tensor.FromFloat32([]float32{1, 2}, 2)}}
	if err := SaveSafetensors(p, good, nil); err != nil {
		t.Fatal(err)
	}
	bad := []Named{{Name: "y", Tensor: tensor.FromFloat32([]float32{0.5}, 1), DType: I64}}
	if err := SaveSafetensors(p, bad, nil); err == nil {
		t.Fatal("saving a fractional I64 succeeded")
	}
	got, _, err := LoadSafetensors(p)
	if err != nil || len(got) != 1 || got[0].Name != "x" {
		t.Fatalf("old file damaged: %v, %v", got, err)
	}
}

func TestLoadSafetensorsCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	err := SaveSafetensors(good, []Named{
		{Name: "w", Tensor: tensor.FromFloat32([]float32{1, 2, 3, 4}, 2, 2)},
		{Name: "b", Tensor: tensor.FromFloat32([]float32{5, 6}, 2)},
	}, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	full := readFile(t, good)
	hlen := int(binary.LittleEndian.Uint64(full))
	d8 := f32bytes(1, 2)
	d16 := f32bytes(1, 2, 3, 4)

	cases := []struct {
		name  string
		file  []byte
		parts []string
	}{
		{"empty", nil, []string{"truncated", "0 bytes"}},
		{"short length", full[:5], []string{"truncated", "5 bytes"}},
		{"header cut", full[:8+hlen-3], []string{"header length", "offset 0", "runs past the end"}},
		{"data cut", full[:len(full)-2], []string{`tensor "b"`, "run past the end", "truncated"}},
		{"trailing bytes", append(append([]byte{}, full...), 0, 0, 0, 0), []string{"data end at 24", "holds 28"}},
		{"huge length", binary.LittleEndian.AppendUint64(nil, 1<<62), []string{"header length 4611686018427387904", "runs past"}},
		{"bad json", rawSafetensors(`{"a": {"dtype": "F32",`, nil), []string{"JSON"}},
		{"not an object", rawSafetensors(`[1, 2]  `, nil), []string{"not a JSON object"}},
		{"after object", rawSafetensors(`{} x`, nil), []string{"data after the JSON header"}},
		{"bad utf8", rawSafetensors("{\"\xff\": 1}", nil), []string{"UTF-8"}},
		{"duplicate key", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), []string{`key "a" appears twice`}},
		{"unknown dtype", rawSafetensors(`{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}`, d8), []string{`tensor "a"`, `dtype "Q7" not supported`}},
		{"half", rawSafetensors(`{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}`, d8), []string{`tensor "a"`, `"F16" not supported`}},
		{"missing field", rawSafetensors(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, d8), []string{`tensor "a"`, "lacks"}},
		{"three offsets", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}`, d8), []string{`tensor "a"`, "pair"}},
		{"negative shape", rawSafetensors(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, d8), []string{`tensor "a"`, "invalid shape [-2]"}},
		{"overflowing shape", rawSafetensors(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, d8), []string{`tensor "a"`, "invalid shape"}},
		{"shape size", rawSafetensors(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, d8), []string{`tensor "a"`, "shape [3]", "needs 12 bytes", "hold 8"}},
		{"overlap", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, d16), []string{`tensor "b"`, "[4, 12]", "overlap", `tensor "a"`}},
		{"gap", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, d16), []string{`tensor "b"`, "gap"}},
		{"backwards", rawSafetensors(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}}`, d8), []string{`tensor "b"`}},
		{"beyond file", rawSafetensors(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, d8), []string{`tensor "a"`, "[0, 16]", "run past the end"}},
		{"metadata not strings", rawSafetensors(`{"__metadata__":{"epoch":3}}`, nil), []string{"__metadata__"}},
		{"entry not object", rawSafetensors(`{"a":7}`, nil), []string{`tensor "a"`, "bad JSON header entry"}},
		{"int64 beyond 2^53", rawSafetensors(`{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, binary.LittleEndian.AppendUint64(nil, 1<<60)), []string{`tensor "a"`, "exact range"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, "bad.safetensors", c.file)
			_, _, err := LoadSafetensors(p)
			wantErr(t, err, append([]string{p}, c.parts...)...)
		})
	}

	_, _, err = LoadSafetensors(filepath.Join(dir, "absent.safetensors"))
	wantErr(t, err, "absent.safetensors")
}
