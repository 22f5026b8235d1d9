package weights

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/srmlab/srmlab/tensor"
)

// python is Debian's interpreter, which has python3-torch; the python3
// first on PATH may be another one without it.
const python = "/usr/bin/python3"

// interopScript writes state_dicts and arrays with PyTorch and NumPy into
// argv[1], and reads back the files the Go side wrote there first,
// reporting what PyTorch and NumPy see in them.
const interopScript = `
import argparse, json, sys
import numpy as np
import torch
import torch.nn as nn

out = sys.argv[1]
torch.manual_seed(0)

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, 4)
        self.register_buffer('scale64', torch.arange(3, dtype=torch.float64) / 3)
    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))

def describe(t):
    return {'shape': list(t.shape), 'dtype': str(t.dtype), 'values': t.flatten().tolist()}

m = Tiny()
opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
for _ in range(3):
    opt.zero_grad()
    m(torch.randn(4, 2, 5, 5)).square().sum().backward()
    opt.step()
sd = m.state_dict()
torch.save(sd, out + '/sd.pt')
torch.save({'epoch': 3, 'arch': 'tiny', 'state_dict': nn.DataParallel(m).state_dict(),
            'best_prec1': np.float64(0.5), 'optimizer': opt.state_dict(),
            'args': argparse.Namespace(lr=0.1)}, out + '/ckpt.pt')
torch.save(m.state_dict(keep_vars=True), out + '/params.pt')
base = torch.arange(24, dtype=torch.float32) / 8
strided = {'t': base[:12].reshape(3, 4).t(), 'e': base[:3].expand(2, 3),
           'v': base[2:20:3], 'p': base.reshape(2, 3, 4).permute(2, 0, 1)[1:, :, 1:]}
torch.save(strided, out + '/strided.pt')
torch.save({'h': torch.zeros(2, dtype=torch.float16)}, out + '/half.pt')
torch.save(torch.ones(2), out + '/tensor.pt')
torch.save(sd, out + '/legacy.pt', _use_new_zipfile_serialization=False)
torch.jit.save(torch.jit.trace(m.eval(), torch.randn(1, 2, 5, 5)), out + '/script.pt')

a = np.arange(24).reshape(2, 3, 4) / 7
np.save(out + '/np_f32.npy', a.astype('<f4'))
np.save(out + '/np_f64.npy', a)
np.save(out + '/np_scalar.npy', np.array(3.5, dtype='<f4'))
np.save(out + '/np_fortran.npy', np.asfortranarray(a.astype('<f4')))
np.save(out + '/np_big.npy', a.astype('>f4'))

def read_safetensors(path):
    b = open(path, 'rb').read()
    n = int.from_bytes(b[:8], 'little')
    header = json.loads(b[8:8 + n])
    types = {'F32': '<f4', 'F64': '<f8', 'I64': '<i8'}
    res = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        assert (8 + n + s) % np.dtype(types[v['dtype']]).itemsize == 0, k + ' unaligned'
        a = np.frombuffer(b[8 + n + s:8 + n + e], dtype=types[v['dtype']]).reshape(v['shape'])
        res[k] = torch.from_numpy(a.copy())
    return res, header.get('__metadata__')

go_st, go_md = read_safetensors(out + '/go.safetensors')
m2 = Tiny()
m2.load_state_dict(go_st)
report = {
    'order': list(sd.keys()),
    'sd': {k: describe(v) for k, v in sd.items()},
    'strided': {k: describe(v) for k, v in strided.items()},
    'go_safetensors': {k: describe(v) for k, v in m2.state_dict().items()},
    'go_metadata': go_md,
    'go_torch': {k: describe(v) for k, v in torch.load(out + '/go.pt').items()},
    'go_npy': {k: {'dtype': str(a.dtype), 'shape': list(a.shape), 'values': a.flatten().tolist(),
                   'c_order': bool(a.flags.c_contiguous)}
               for k in ['go_f32', 'go_f64', 'go_scalar']
               for a in [np.load(out + '/' + k + '.npy')]},
}
json.dump(report, open(out + '/report.json', 'w'))
`

type described struct {
	Shape  []int
	DType  string
	Values []float64
}

func (d described) check(t *testing.T, what string, x *tensor.Tensor) {
	t.Helper()
	if !sameInts(x.Shape(), d.Shape) {
		t.Errorf("%s: shape %v, want %v", what, x.Shape(), d.Shape)
		return
	}
	for i, v := range d.Values {
		if x.At(i) != v {
			t.Errorf("%s[%d] = %v, want %v", what, i, x.At(i), v)
			return
		}
	}
}

func sameInts(a, b []int) bool {
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

// TestPyTorchInterop checks files written by PyTorch and NumPy against the
// values they report, and files written here against what PyTorch and
// NumPy read from them.
func TestPyTorchInterop(t *testing.T) {
	if err := exec.Command(python, "-c", "import torch, numpy").Run(); err != nil {
		t.Skipf("%s cannot import torch and numpy (%v): apt-get install python3-torch to run this test", python, err)
	}
	dir := t.TempDir()

	src := newTiny()
	src.fill()
	if err := Save(src, filepath.Join(dir, "go.safetensors"), map[string]string{"from": "srmlab"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "go.pt", torchArchiveBytes("go", tinyTorchTensors(), false))
	x := tensor.Zeros(2, 3, 4)
	for i := range x.Len() {
		x.Set(i, float64(i)/7)
	}
	for name, v := range map[string]*tensor.Tensor{"go_f32": x, "go_f64": x.As(tensor.Float64), "go_scalar": tensor.Scalar(tensor.Float32, 3.5)} {
		if err := WriteNpy(filepath.Join(dir, name+".npy"), v); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, python, "-c", interopScript, dir).CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var report struct {
		Order         []string
		SD            map[string]described
		Strided       map[string]described
		GoSafetensors map[string]described `json:"go_safetensors"`
		GoMetadata    map[string]string    `json:"go_metadata"`
		GoTorch       map[string]described `json:"go_torch"`
		GoNpy         map[string]struct {
			described
			COrder bool `json:"c_order"`
		} `json:"go_npy"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "report.json")), &report); err != nil {
		t.Fatal(err)
	}

	t.Run("state_dict", func(t *testing.T) {
		checkStateDicts(t, dir, []string{"sd.pt", "ckpt.pt", "params.pt"}, report.Order, report.SD)
	})
	t.Run("strided", func(t *testing.T) { checkStrided(t, filepath.Join(dir, "strided.pt"), report.Strided) })

	t.Run("refused", func(t *testing.T) {
		for f, want := range map[string]string{
			"half.pt":    "torch.HalfStorage is not supported",
			"tensor.pt":  "tensor, not a state_dict",
			"legacy.pt":  "legacy torch.save format",
			"script.pt":  "TorchScript",
			"np_f32.npy": ".npy array",
		} {
			p := filepath.Join(dir, f)
			wantErr(t, Load(newTiny(), p), p, want)
		}
	})

	t.Run("numpy", func(t *testing.T) {
		for _, f := range []string{"np_f32.npy", "np_f64.npy"} {
			got, err := ReadNpy(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			want := described{Shape: []int{2, 3, 4}}
			for i := range 24 {
				want.Values = append(want.Values, float64(float32(float64(i)/7)))
			}
			want.check(t, f, got)
		}
		got, err := ReadNpy(filepath.Join(dir, "np_scalar.npy"))
		if err != nil || got.Rank() != 0 || got.Item() != 3.5 {
			t.Errorf("np_scalar.npy: %v, %v", got, err)
		}
		for f, want := range map[string]string{"np_fortran.npy": "Fortran-order", "np_big.npy": "big-endian"} {
			p := filepath.Join(dir, f)
			_, err := ReadNpy(p)
			wantErr(t, err, p, want)
		}
	})

	t.Run("written here", func(t *testing.T) {
		for _, v := range src.vars {
			report.GoSafetensors[v.Name].check(t, "go.safetensors: "+v.Name, v.Value)
			report.GoTorch[v.Name].check(t, "go.pt: "+v.Name, v.Value)
		}
		if d := report.GoSafetensors["bn.num_batches_tracked"].DType; d != "torch.int64" {
			t.Errorf("num_batches_tracked reads as %s in PyTorch, want torch.int64", d)
		}
		if report.GoMetadata["from"] != "srmlab" {
			t.Errorf("metadata %v", report.GoMetadata)
		}
		for name, want := range map[string]string{"go_f32": "float32", "go_f64": "float64", "go_scalar": "float32"} {
			n := report.GoNpy[name]
			if n.DType != want || !n.COrder {
				t.Errorf("%s.npy reads in NumPy as %s (C order %v), want %s", name, n.DType, n.COrder, want)
			}
		}
		report.GoNpy["go_f32"].check(t, "go_f32.npy", x)
		report.GoNpy["go_f64"].check(t, "go_f64.npy", x.As(tensor.Float64))
		if n := report.GoNpy["go_scalar"]; len(n.Shape) != 0 || n.Values[0] != 3.5 {
			t.Errorf("go_scalar.npy reads as %v", n)
		}
	})
}

// checkStateDicts loads each file, a state_dict of interopScript's Tiny
// module or a checkpoint holding one, and compares it with what PyTorch
// reported: key order, types and values, and the values Load puts into
// newTiny's variables.
func checkStateDicts(t *testing.T, dir string, files, order []string, sd map[string]described) {
	for _, f := range files {
		p := filepath.Join(dir, f)
		var got []Named
		var err error
		if strings.HasSuffix(f, ".safetensors") {
			got, _, err = LoadSafetensors(p)
		} else {
			got, err = LoadTorch(p)
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(order) {
			t.Fatalf("%s: %d tensors, want %d", f, len(got), len(order))
		}
		for i, g := range got {
			if g.Name != order[i] && !strings.HasSuffix(f, ".safetensors") {
				t.Errorf("%s: tensor %d is %q, want %q", f, i, g.Name, order[i])
			}
			want := sd[g.Name]
			wantDT := map[string]DType{"torch.float32": F32, "torch.float64": F64, "torch.int64": I64}[want.DType]
			if g.DType != wantDT {
				t.Errorf("%s: %s is %s, want %s", f, g.Name, g.DType, wantDT)
			}
			want.check(t, f+": "+g.Name, g.Tensor)
		}
		m := newTiny()
		if err := Load(m, p); err != nil {
			t.Fatal(err)
		}
		for _, v := range m.vars {
			sd[v.Name].check(t, f+" loaded: "+v.Name, v.Value)
		}
		if nbt := m.vars[5].Value.Item(); nbt != 3 {
			t.Errorf("%s: num_batches_tracked = %v, want 3", f, nbt)
		}
	}
}

// checkStrided compares the views of a strided.pt with PyTorch's report.
func checkStrided(t *testing.T, path string, want map[string]described) {
	got, err := LoadTorch(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		want[g.Name].check(t, g.Name, g.Tensor)
	}
	if len(got) != len(want) {
		t.Errorf("%d tensors, want %d", len(got), len(want))
	}
}

// TestTorch2Fixtures reads files written by PyTorch 2.11 and by the
// safetensors library (testdata/torch2, made by its make_fixtures.py), so
// that the newer format is checked where only an older PyTorch is
// installed. ckpt.pt was saved from a model on a GPU ("cuda:0" storages).
func TestTorch2Fixtures(t *testing.T) {
	dir := filepath.Join("testdata", "torch2")
	var expect struct {
		Torch   string
		Order   []string
		SD      map[string]described
		Strided map[string]described
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "expect.json")), &expect); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(expect.Torch, "2.") {
		t.Fatalf("fixtures made by PyTorch %s, want 2.x", expect.Torch)
	}
	checkStateDicts(t, dir, []string{"sd.pt", "ckpt.pt", "params.pt", "ref.safetensors"}, expect.Order, expect.SD)
	checkStrided(t, filepath.Join(dir, "strided.pt"), expect.Strided)
	if _, md, err := LoadSafetensors(filepath.Join(dir, "ref.safetensors")); err != nil || md["from"] != "safetensors" {
		t.Errorf("ref.safetensors metadata %v, %v", md, err)
	}
}
