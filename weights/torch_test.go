package weights

import (
	"bytes"
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/srmlab/srmlab/tensor"
)

func TestLoadTorchHandmade(t *testing.T) {
	dir := t.TempDir()
	want := newTiny()
	want.fill()
	for _, checkpoint := range []bool{false, true} {
		ts := tinyTorchTensors()
		if checkpoint {
			for i := range ts {
				ts[i].name = "module." + ts[i].name
			}
		}
		p := writeFile(t, dir, "tiny.pt", torchArchiveBytes("tiny", ts, checkpoint))
		got, err := LoadTorch(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range got {
			v := want.vars[i]
			if g.Name != v.Name {
				t.Errorf("tensor %d is %q, want %q (prefix not stripped?)", i, g.Name, v.Name)
			}
			wantDT := map[string]DType{"bn.num_batches_tracked": I64, "scale64": F64}[v.Name]
			if wantDT == "" {
				wantDT = F32
			}
			if g.DType != wantDT {
				t.Errorf("%s: dtype %s, want %s", g.Name, g.DType, wantDT)
			}
		}
		m := newTiny()
		if err := Load(m, p); err != nil {
			t.Fatal(err)
		}
		equalValues(t, m.values(), want.values())
	}
}

func TestLoadTorchStrided(t *testing.T) {
	storage := f32bytes(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	ts := []fakeTensor{
		// torch.arange(12.).reshape(3, 4).t()
		{name: "transposed", class: "FloatStorage", data: storage, numel: 12, size: []int{4, 3}, stride: []int{1, 4}},
		// torch.arange(12.)[2:8:2]
		{name: "sliced", class: "FloatStorage", data: storage, numel: 12, offset: 2, size: []int{3}, stride: []int{2}},
		// torch.arange(3.).expand(2, 3)
		{name: "expanded", class: "FloatStorage", data: storage, numel: 12, size: []int{2, 3}, stride: []int{0, 1}},
		{name: "empty", class: "FloatStorage", data: storage, numel: 12, offset: 12, size: []int{0, 5}, stride: []int{5, 1}},
	}
	p := writeFile(t, t.TempDir(), "strided.pt", torchArchiveBytes("archive", ts, false))
	got, err := LoadTorch(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{
		"transposed": {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11},
		"sliced":     {2, 4, 6},
		"expanded":   {0, 1, 2, 0, 1, 2},
		"empty":      {},
	}
	for _, g := range got {
		if v := g.Tensor.Float64s(); fmtEq(v, want[g.Name]) == false {
			t.Errorf("%s = %v %v, want %v", g.Name, g.Tensor.Shape(), v, want[g.Name])
		}
	}
}

func fmtEq(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoadTorchCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := torchArchiveBytes("tiny", tinyTorchTensors(), false)
	one := func(f fakeTensor) []byte { return torchArchiveBytes("a", []fakeTensor{f}, false) }
	base := fakeTensor{name: "w", class: "FloatStorage", data: f32bytes(1, 2, 3, 4), numel: 4, size: []int{2, 2}, stride: []int{2, 1}}
	with := func(edit func(*fakeTensor)) []byte {
		f := base
		edit(&f)
		return one(f)
	}
	// A storage record's data begins right after its local header; flip a
	// byte of the first storage to break its CRC.
	corrupt := append([]byte{}, good...)
	i := bytes.Index(corrupt, []byte("tiny/data/0"))
	corrupt[i+len("tiny/data/0")+4] ^= 0xff

	var script bytes.Buffer
	{
		zw := newZip(&script)
		zw.add("m/data.pkl", []byte("\x80\x02}."))
		zw.add("m/constants.pkl", []byte("\x80\x02)."))
		zw.close()
	}
	var noPickle bytes.Buffer
	{
		zw := newZip(&noPickle)
		zw.add("m/version", []byte("3\n"))
		zw.close()
	}

	cases := []struct {
		name  string
		file  []byte
		parts []string
	}{
		{"truncated", good[:len(good)/2], []string{"not a readable zip archive"}},
		{"bad crc", corrupt, []string{`tensor "conv.weight"`, "tiny/data/0", "checksum"}},
		{"torchscript", script.Bytes(), []string{"TorchScript"}},
		{"no data.pkl", noPickle.Bytes(), []string{"data.pkl", "not a torch.save file"}},
		{"past storage", with(func(f *fakeTensor) { f.offset = 1 }), []string{`tensor "w"`, "reaches past its storage of 4 elements"}},
		{"negative stride", with(func(f *fakeTensor) { f.stride = []int{-2, 1} }), []string{`tensor "w"`, "negative"}},
		{"expanded", with(func(f *fakeTensor) { f.size, f.stride = []int{1 << 20, 2}, []int{0, 1} }), []string{`tensor "w"`, "more elements than its storage of 4", "contiguous()"}},
		{"rank", with(func(f *fakeTensor) { f.stride = []int{1} }), []string{`tensor "w"`, "differ in rank"}},
		{"record size", with(func(f *fakeTensor) { f.numel = 5; f.size = []int{5}; f.stride = []int{1} }), []string{`tensor "w"`, "holds 16 bytes", "5 elements", "need 20"}},
		{"half", with(func(f *fakeTensor) { f.class = "HalfStorage"; f.data = f.data[:8] }), []string{`tensor "w"`, "torch.HalfStorage is not supported"}},
		{"huge int64", with(func(f *fakeTensor) {
			f.class = "LongStorage"
			f.data = binary.LittleEndian.AppendUint64(nil, math.MaxInt64)
			f.numel, f.size, f.stride = 1, []int{}, []int{}
		}), []string{`tensor "w"`, "exact range"}},
		{"garbage pickle", func() []byte {
			var b bytes.Buffer
			zw := newZip(&b)
			zw.add("a/data.pkl", []byte("\x80\x02\xff"))
			zw.close()
			return b.Bytes()
		}(), []string{"a/data.pkl", "unknown pickle opcode 0xff at byte 2"}},
		{"huge string", func() []byte {
			var b bytes.Buffer
			zw := newZip(&b)
			zw.add("a/data.pkl", []byte("\x80\x02X\xff\xff\xff\xffabc."))
			zw.close()
			return b.Bytes()
		}(), []string{"a/data.pkl", "announces 4294967295 bytes, but only 4 follow"}},
		{"huge frame", func() []byte {
			var b bytes.Buffer
			zw := newZip(&b)
			zw.add("a/data.pkl", []byte("\x80\x04\x95\x00\x00\x00\x00\x00\x01\x00\x00."))
			zw.close()
			return b.Bytes()
		}(), []string{"a/data.pkl", "frame at byte 2 announces 1099511627776 bytes, but only 1 follow"}},
		{"model entry", func() []byte {
			var p pickler
			p.op("\x80\x02}(")
			p.str("epoch")
			p.int(3)
			p.str("model")
			p.global("collections", "OrderedDict")
			p.op(")Ru.")
			var b bytes.Buffer
			zw := newZip(&b)
			zw.add("a/data.pkl", p.Bytes())
			zw.close()
			return b.Bytes()
		}(), []string{`state_dict entry "epoch" has type int, not tensor`, `neither a state_dict nor a checkpoint with a "state_dict" entry (keys: [epoch model])`}},
		{"not a dict", func() []byte {
			var b bytes.Buffer
			zw := newZip(&b)
			zw.add("a/data.pkl", []byte("\x80\x02J\x07\x00\x00\x00."))
			zw.close()
			return b.Bytes()
		}(), []string{"int, not a state_dict"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, "bad.pt", c.file)
			_, err := LoadTorch(p)
			wantErr(t, err, append([]string{p}, c.parts...)...)
		})
	}
}

func TestLoadTorchUnhashableKeyIsAnError(t *testing.T) {
	// An OrderedDict keyed by bytes makes gopickle panic (unhashable map
	// key); the panic must come back as an error naming the file.
	var p pickler
	p.op("\x80\x02")
	p.global("collections", "OrderedDict")
	p.op(")R(C\x01xJ\x01\x00\x00\x00u.")
	var b bytes.Buffer
	zw := newZip(&b)
	zw.add("a/data.pkl", p.Bytes())
	zw.close()
	path := writeFile(t, t.TempDir(), "unhashable.pt", b.Bytes())
	_, err := LoadTorch(path)
	wantErr(t, err, path, "malformed")
}

func TestLoadTorchSharedStorage(t *testing.T) {
	// Two views of one storage, as tied weights are saved.
	storage := f32bytes(1, 2, 3, 4)
	var p pickler
	p.op("\x80\x02")
	p.global("collections", "OrderedDict")
	p.op(")R(")
	for i, name := range []string{"a", "b"} {
		p.str(name)
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.op("((")
		p.str("storage")
		p.global("torch", "FloatStorage")
		p.str("0")
		p.str("cpu")
		p.int(4)
		p.op("tQ")
		p.int(2 * i)
		p.ints([]int{2})
		p.ints([]int{1})
		p.op("\x89")
		p.global("collections", "OrderedDict")
		p.op(")RtR")
	}
	p.op("u.")
	var b bytes.Buffer
	zw := newZip(&b)
	zw.add("a/data.pkl", p.Bytes())
	zw.add("a/data/0", storage)
	zw.close()
	got, err := LoadTorch(writeFile(t, t.TempDir(), "shared.pt", b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !fmtEq(got[0].Tensor.Float64s(), []float64{1, 2}) || !fmtEq(got[1].Tensor.Float64s(), []float64{3, 4}) {
		t.Errorf("got %v and %v", got[0].Tensor.Float64s(), got[1].Tensor.Float64s())
	}
	got[0].Tensor.F32()[0] = 9
	if got[1].Tensor.At(0) == 9 || got[0].Tensor.DType() != tensor.Float32 {
		t.Error("views of one storage must be independent copies")
	}
}

func TestLoadLegacyAndNpyRefused(t *testing.T) {
	dir := t.TempDir()
	legacy := writeFile(t, dir, "legacy.pt", []byte(legacyTorchMagic+".\x80\x02"))
	wantErr(t, Load(newTiny(), legacy), legacy, "legacy torch.save format")
	npy := filepath.Join(dir, "x.npy")
	if err := WriteNpy(npy, tensor.Zeros(2)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, Load(newTiny(), npy), npy, ".npy array, not a checkpoint")
}
