package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srmlab/srmlab/nn"
	"github.com/srmlab/srmlab/tensor"
)

// tinyModule is a hand-built module whose state mirrors a PyTorch module
// of a bias-free conv, a BatchNorm and a linear layer, plus a float64 buffer.
type tinyModule struct{ vars []nn.Var }

func newTiny() *tinyModule {
	return &tinyModule{vars: []nn.Var{
		{Name: "conv.weight", Value: tensor.Zeros(3, 2, 3, 3)},
		{Name: "bn.weight", Value: tensor.Zeros(3), NoDecay: true},
		{Name: "bn.bias", Value: tensor.Zeros(3), NoDecay: true},
		{Name: "bn.running_mean", Value: tensor.Zeros(3), Buffer: true},
		{Name: "bn.running_var", Value: tensor.Zeros(3), Buffer: true},
		{Name: "bn.num_batches_tracked", Value: tensor.Zeros(), Buffer: true},
		{Name: "fc.weight", Value: tensor.Zeros(4, 3)},
		{Name: "fc.bias", Value: tensor.Zeros(4)},
		{Name: "scale64", Value: tensor.New(tensor.Float64, 3), Buffer: true},
	}}
}

func (m *tinyModule) Forward(x *tensor.Tensor) *tensor.Tensor { return x }
func (m *tinyModule) Vars() []nn.Var                          { return m.vars }
func (m *tinyModule) SetTraining(bool)                        {}

// fill gives every variable distinct values derived from its index.
func (m *tinyModule) fill() {
	for i, v := range m.vars {
		for j := range v.Value.Len() {
			v.Value.Set(j, float64(i)+0.25*float64(j)-1)
		}
	}
	m.vars[5].Value.Set(0, 7) // num_batches_tracked
}

func (m *tinyModule) values() [][]float64 {
	out := make([][]float64, len(m.vars))
	for i, v := range m.vars {
		out[i] = v.Value.Float64s()
	}
	return out
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantErr fails unless err mentions every part (the file name, the key,
// the offset...).
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

// rawSafetensors assembles a safetensors file from a header and data, for
// files the writer would never produce.
func rawSafetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func f32bytes(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// pickler writes the protocol-2 opcodes torch.save uses, so the tests can
// build torch archives, well-formed or not, without PyTorch.
type pickler struct{ bytes.Buffer }

func (p *pickler) op(s string)             { p.WriteString(s) }
func (p *pickler) global(mod, name string) { p.WriteString("c" + mod + "\n" + name + "\n") }
func (p *pickler) str(s string) {
	p.WriteByte('X')
	p.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
	p.WriteString(s)
}
func (p *pickler) int(v int) {
	p.WriteByte('J')
	p.Write(binary.LittleEndian.AppendUint32(nil, uint32(int32(v))))
}
func (p *pickler) ints(vs []int) {
	p.op("(")
	for _, v := range vs {
		p.int(v)
	}
	p.op("t")
}

// fakeTensor is one state_dict entry of a hand-made torch archive.
type fakeTensor struct {
	name          string
	class         string // "FloatStorage", "DoubleStorage", "LongStorage", ...
	data          []byte // the whole storage
	numel, offset int
	size, stride  []int
}

// torchArchiveBytes builds a torch.save-style zip: records under prefix,
// data.pkl holding an OrderedDict of the tensors, wrapped in a checkpoint
// dict {"epoch": 1, "state_dict": ...} when checkpoint is set.
func torchArchiveBytes(prefix string, ts []fakeTensor, checkpoint bool) []byte {
	var p pickler
	p.op("\x80\x02")
	if checkpoint {
		p.op("}(")
		p.str("epoch")
		p.int(1)
		p.str("state_dict")
	}
	p.global("collections", "OrderedDict")
	p.op(")R(")
	for i, t := range ts {
		p.str(t.name)
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.op("((")
		p.str("storage")
		p.global("torch", t.class)
		p.str(fmt.Sprint(i))
		p.str("cpu")
		p.int(t.numel)
		p.op("tQ")
		p.int(t.offset)
		p.ints(t.size)
		p.ints(t.stride)
		p.op("\x89")
		p.global("collections", "OrderedDict")
		p.op(")RtR")
	}
	p.op("u")
	if checkpoint {
		p.op("u")
	}
	p.op(".")

	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	add := func(name string, data []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + "/" + name, Method: zip.Store})
		if err != nil {
			panic(err)
		}
		w.Write(data)
	}
	add("data.pkl", p.Bytes())
	add("byteorder", []byte("little"))
	for i, t := range ts {
		add(fmt.Sprint("data/", i), t.data)
	}
	add("version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// tinyTorchTensors is newTiny's state as a hand-made torch state_dict with
// the values fill gives, num_batches_tracked as int64 and scale64 as float64.
func tinyTorchTensors() []fakeTensor {
	m := newTiny()
	m.fill()
	var ts []fakeTensor
	for _, v := range m.vars {
		shape := v.Value.Shape()
		stride := make([]int, len(shape))
		s := 1
		for d := len(shape) - 1; d >= 0; d-- {
			stride[d] = s
			s *= shape[d]
		}
		ft := fakeTensor{name: v.Name, numel: v.Value.Len(), size: shape, stride: stride}
		switch {
		case strings.HasSuffix(v.Name, "num_batches_tracked"):
			ft.class = "LongStorage"
			ft.data = binary.LittleEndian.AppendUint64(nil, uint64(v.Value.Item()))
		case v.Value.DType() == tensor.Float64:
			ft.class = "DoubleStorage"
			for _, x := range v.Value.F64() {
				ft.data = binary.LittleEndian.AppendUint64(ft.data, math.Float64bits(x))
			}
		default:
			ft.class = "FloatStorage"
			ft.data = f32bytes(v.Value.F32()...)
		}
		ts = append(ts, ft)
	}
	return ts
}

func equalValues(t *testing.T, got, want [][]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	for i := range got {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Errorf("tensor %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// testZip writes stored (uncompressed) records, as PyTorch does.
type testZip struct{ w *zip.Writer }

func newZip(b *bytes.Buffer) testZip { return testZip{zip.NewWriter(b)} }

func (z testZip) add(name string, data []byte) {
	w, err := z.w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
	if err != nil {
		panic(err)
	}
	w.Write(data)
}

func (z testZip) close() {
	if err := z.w.Close(); err != nil {
		panic(err)
	}
}
