package weights

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

func TestSaveLoadModel(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tiny.safetensors")
	src := newTiny()
	src.fill()
	if err := Save(src, p, map[string]string{"arch": "tiny"}); err != nil {
		t.Fatal(err)
	}
	dst := newTiny()
	if err := Load(dst, p); err != nil {
		t.Fatal(err)
	}
	equalValues(t, dst.values(), src.values())
	if dst.vars[8].Value.DType() != tensor.Float64 {
		t.Error("loading changed a variable's dtype")
	}
	ts, md, err := LoadSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	if md["arch"] != "tiny" {
		t.Errorf("metadata %v", md)
	}
	for _, n := range ts {
		want := F32
		switch n.Name {
		case "bn.num_batches_tracked":
			want = I64
		case "scale64":
			want = F64
		}
		if n.DType != want {
			t.Errorf("%s stored as %s, want %s", n.Name, n.DType, want)
		}
	}
}

func TestLoadConvertsDTypes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	src := newTiny()
	src.fill()
	ts := make([]Named, len(src.vars))
	for i, v := range src.vars {
		ts[i] = Named{Name: v.Name, Tensor: v.Value, DType: F64} // everything widened
	}
	ts[5].Tensor = tensor.FromFloat32([]float32{7}, 1) // a counter kept as shape [1]
	if err := SaveSafetensors(p, ts, nil); err != nil {
		t.Fatal(err)
	}
	dst := newTiny()
	if err := Load(dst, p); err != nil {
		t.Fatal(err)
	}
	equalValues(t, dst.values(), src.values())
	if dst.vars[0].Value.DType() != tensor.Float32 {
		t.Error("F64 file data must be converted to the float32 variable")
	}
}

func TestLoadMismatchListsEverythingAndLoadsNothing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	src := newTiny()
	src.fill()
	var ts []Named
	for _, v := range src.vars {
		switch v.Name {
		case "bn.bias", "fc.bias": // missing
		case "fc.weight":
			ts = append(ts, Named{Name: v.Name, Tensor: tensor.Zeros(10, 3)})
		case "conv.weight":
			ts = append(ts, Named{Name: v.Name, Tensor: tensor.Zeros(3, 2, 1, 1)})
		default:
			ts = append(ts, Named{Name: v.Name, Tensor: v.Value})
		}
	}
	ts = append(ts, Named{Name: "layer9.extra", Tensor: tensor.Zeros(2)}, Named{Name: "bn.extra", Tensor: tensor.Zeros(1)})
	if err := SaveSafetensors(p, ts, nil); err != nil {
		t.Fatal(err)
	}
	dst := newTiny()
	for _, v := range dst.vars {
		v.Value.Fill(42)
	}
	before := dst.values()
	err := Load(dst, p)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("error %v is not a *MismatchError", err)
	}
	if fmt.Sprint(me.Missing) != "[bn.bias fc.bias]" {
		t.Errorf("missing %v", me.Missing)
	}
	if len(me.Unexpected) != 2 || !strings.Contains(fmt.Sprint(me.Unexpected), "layer9.extra") || !strings.Contains(fmt.Sprint(me.Unexpected), "bn.extra") {
		t.Errorf("unexpected %v", me.Unexpected)
	}
	if len(me.Misshaped) != 2 {
		t.Errorf("mis-shaped %v", me.Misshaped)
	}
	wantErr(t, err, p, "2 missing keys: bn.bias, fc.bias", "2 unexpected keys",
		"conv.weight (model [3 2 3 3], file [3 2 1 1])", "fc.weight (model [4 3], file [10 3])")
	equalValues(t, dst.values(), before)
}

func TestLoadRefusesDuplicateModelNames(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	m := newTiny()
	if err := Save(m, p, nil); err != nil {
		t.Fatal(err)
	}
	m.vars = append(m.vars, m.vars[0])
	wantErr(t, Load(m, p), `two variables named "conv.weight"`)
}

func TestLoadSniffsFormat(t *testing.T) {
	dir := t.TempDir()
	// A torch archive named like safetensors, and the reverse, load alike.
	torchPath := writeFile(t, dir, "model.safetensors", torchArchiveBytes("m", tinyTorchTensors(), true))
	stPath := filepath.Join(dir, "model.pt")
	src := newTiny()
	src.fill()
	if err := Save(src, stPath, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{torchPath, stPath} {
		m := newTiny()
		if err := Load(m, p); err != nil {
			t.Fatal(err)
		}
		equalValues(t, m.values(), src.values())
	}
	text := writeFile(t, dir, "notes.txt", []byte("these are not weights, just notes\n"))
	wantErr(t, Load(newTiny(), text), text, "not a safetensors file")
	wantErr(t, Load(newTiny(), filepath.Join(dir, "absent")), "absent")
}
