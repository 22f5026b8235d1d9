package weights

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
	"github.com/srmlab/srmlab/tensor"
)

// maxPickle bounds data.pkl, which holds only names, shapes and strides
// (tens of kilobytes for a ResNet-101 checkpoint), so that a corrupt size
// cannot demand a huge allocation.
const maxPickle = 256 << 20

// LoadTorch reads the tensors of a state_dict written by torch.save (the zip
// format, the default since PyTorch 1.6; 1.13 and 2.x are tested), in
// state_dict order. A checkpoint dict with a "state_dict" entry, as the
// official SRM code saves, yields that entry, and the other entries are
// skipped without their tensors being read. A "module." prefix on every key,
// left by torch.nn.DataParallel, is removed. float32 tensors stay float32;
// float64 and int64 (num_batches_tracked) become float64 tensors, with
// DType telling which. Strided views (slices, transposes, permutations)
// are copied out in row-major order; a view with more elements than its
// storage (an expand beyond it) is refused.
//
// The pickle is evaluated with only the few PyTorch globals a state_dict
// needs; other Python objects become inert placeholders, so no code named
// in the file runs.
func LoadTorch(path string) ([]Named, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	ts, err := readTorch(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	return ts, nil
}

// readTorch parses a torch.save archive of size bytes read through r.
// gopickle can panic on malformed pickles (an unknown opcode, an unhashable
// dict key); such a panic is turned into an error naming the part being
// read, so no panic leaves the package.
func readTorch(r io.ReaderAt, size int64) (out []Named, err error) {
	part := "the zip directory"
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("torch: %s is malformed: %v", part, p)
		}
	}()
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("torch: not a readable zip archive (the torch.save format): %w", err)
	}
	arch, err := openArchive(zr)
	if err != nil {
		return nil, err
	}
	part = arch.prefix + "/data.pkl"
	pkl, err := readRecord(arch.records[part], maxPickle)
	if err != nil {
		return nil, fmt.Errorf("torch: %w", err)
	}
	if err := checkPickle(pkl); err != nil {
		return nil, fmt.Errorf("torch: %s: %w", part, err)
	}
	u := pickle.NewUnpickler(bytes.NewReader(pkl))
	u.FindClass = findTorchClass
	u.PersistentLoad = arch.persistentLoad
	obj, err := u.Load()
	if err != nil {
		return nil, fmt.Errorf("torch: %s: %w", part, err)
	}
	entries, err := stateDictEntries(obj)
	if err != nil {
		return nil, fmt.Errorf("torch: %w", err)
	}
	out = make([]Named, len(entries))
	for i, e := range entries {
		part = fmt.Sprintf("tensor %q", e.key)
		t, dt, err := e.value.materialize()
		if err != nil {
			return nil, fmt.Errorf("torch: %s: %w", part, err)
		}
		out[i] = Named{Name: e.key, Tensor: t, DType: dt}
	}
	return out, nil
}

// torchArchive is an opened torch.save zip: its records by full name, the
// folder they share, and the storages the pickle has named so far.
type torchArchive struct {
	records  map[string]*zip.File
	prefix   string
	storages map[string]*torchStorage
}

func openArchive(zr *zip.Reader) (*torchArchive, error) {
	a := &torchArchive{records: map[string]*zip.File{}, storages: map[string]*torchStorage{}}
	var pickles []string
	for _, f := range zr.File {
		if a.records[f.Name] != nil {
			return nil, fmt.Errorf("torch: record %q appears twice in the archive", f.Name)
		}
		a.records[f.Name] = f
		dir, base, ok := strings.Cut(f.Name, "/")
		if !ok || strings.Contains(base, "/") {
			continue
		}
		switch base {
		case "data.pkl":
			pickles = append(pickles, dir)
		case "constants.pkl":
			return nil, fmt.Errorf("torch: a TorchScript archive (torch.jit.save), not a state_dict: save model.state_dict() with torch.save instead")
		}
	}
	if len(pickles) != 1 {
		return nil, fmt.Errorf("torch: want one <folder>/data.pkl record in the archive, found %d: not a torch.save file", len(pickles))
	}
	a.prefix = pickles[0]
	if bo := a.records[a.prefix+"/byteorder"]; bo != nil {
		b, err := readRecord(bo, 16)
		if err != nil {
			return nil, fmt.Errorf("torch: %w", err)
		}
		if string(b) != "little" {
			return nil, fmt.Errorf("torch: byte order %q is not supported (want little)", b)
		}
	}
	return a, nil
}

// readRecord reads a whole zip record of at most limit bytes. Reading on to
// the end makes archive/zip check the size and CRC-32 the archive declares.
func readRecord(f *zip.File, limit uint64) ([]byte, error) {
	if f.UncompressedSize64 > limit {
		return nil, fmt.Errorf("record %s declares %d bytes, more than the %d expected", f.Name, f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if err != nil {
		return nil, fmt.Errorf("record %s (at offset %d): %w", f.Name, recordOffset(f), err)
	}
	if uint64(len(b)) != f.UncompressedSize64 {
		return nil, fmt.Errorf("record %s holds %d bytes but declares %d", f.Name, len(b), f.UncompressedSize64)
	}
	return b, nil
}

// recordOffset locates a record's data in the file for error messages.
func recordOffset(f *zip.File) int64 {
	off, err := f.DataOffset()
	if err != nil {
		return -1
	}
	return off
}

// persistentLoad resolves the pickle's ('storage', class, key, location,
// numel) references to records of the archive without reading them: only
// the tensors of the state_dict are read, so optimizer state in a
// checkpoint costs nothing.
func (a *torchArchive) persistentLoad(id any) (any, error) {
	tup, ok := id.(*types.Tuple)
	if !ok || tup.Len() < 5 || tup.Get(0) != "storage" {
		return nil, fmt.Errorf("unexpected persistent id %v", id)
	}
	class, okc := tup.Get(1).(*storageClass)
	key, okk := tup.Get(2).(string)
	n, okn := tup.Get(4).(int)
	if !okc || !okk || !okn || n < 0 {
		return nil, fmt.Errorf("malformed storage reference %v", id)
	}
	if s := a.storages[key]; s != nil {
		if s.class.name != class.name || s.numel != n {
			return nil, fmt.Errorf("storage %s is referenced with two types or sizes", key)
		}
		return s, nil
	}
	rec := a.records[a.prefix+"/data/"+key]
	if rec == nil {
		return nil, fmt.Errorf("storage %s: record %s/data/%s is missing", key, a.prefix, key)
	}
	s := &torchStorage{class: class, key: key, numel: n, record: rec}
	a.storages[key] = s
	return s, nil
}

// findTorchClass maps the pickle's globals to the few callables a
// state_dict needs. Everything else (numpy scalars, argparse.Namespace in a
// checkpoint) becomes an inert placeholder, so such checkpoints still load
// as long as the state_dict itself holds only tensors.
func findTorchClass(module, name string) (any, error) {
	switch full := module + "." + name; {
	case full == "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{}, nil
	case full == "torch._utils._rebuild_parameter":
		return rebuildParameter{}, nil
	case module == "torch" && strings.HasSuffix(name, "Storage"):
		c := &storageClass{name: full}
		switch name {
		case "FloatStorage":
			c.dtype = F32
		case "DoubleStorage":
			c.dtype = F64
		case "LongStorage":
			c.dtype = I64
		}
		return c, nil
	default:
		return &placeholder{name: full}, nil
	}
}

// storageClass is a torch.*Storage global; dtype is empty for element types
// srmlab does not read (half, bfloat16, integers other than int64).
type storageClass struct {
	name  string
	dtype DType
}

// torchStorage is a storage the pickle refers to; its record is read the
// first time a tensor of the state_dict needs it.
type torchStorage struct {
	class  *storageClass
	key    string
	numel  int
	record *zip.File
	data   []byte
}

func (s *torchStorage) bytes() ([]byte, error) {
	if s.data != nil {
		return s.data, nil
	}
	if s.class.dtype == "" {
		return nil, fmt.Errorf("storage type %s is not supported (want FloatStorage, DoubleStorage or LongStorage)", s.class.name)
	}
	want, ok := mulNonNeg(int64(s.numel), int64(s.class.dtype.size()), math.MaxInt64)
	if !ok || uint64(want) != s.record.UncompressedSize64 {
		return nil, fmt.Errorf("storage %s: record %s holds %d bytes, but %d elements of %s need %d", s.key, s.record.Name, s.record.UncompressedSize64, s.numel, s.class.name, want)
	}
	b, err := readRecord(s.record, uint64(want))
	if err != nil {
		return nil, err
	}
	s.data = b
	return b, nil
}

// lazyTensor is torch._utils._rebuild_tensor_v2's result: a strided view of
// a storage, copied out only if the state_dict needs it.
type lazyTensor struct {
	storage *torchStorage
	offset  int
	size    []int
	stride  []int
}

// rebuildTensor stands for torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want at least 4", len(args))
	}
	s, ok := args[0].(*torchStorage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: first argument is %T, not a storage", args[0])
	}
	off, ok := args[1].(int)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset is %T, not an int", args[1])
	}
	size, err := intTuple(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride")
	if err != nil {
		return nil, err
	}
	return &lazyTensor{storage: s, offset: off, size: size, stride: stride}, nil
}

func intTuple(v any, what string) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %s is %T, not a tuple", what, v)
	}
	out := make([]int, t.Len())
	for i := range out {
		if out[i], ok = t.Get(i).(int); !ok {
			return nil, fmt.Errorf("_rebuild_tensor_v2: %s %v holds a non-int", what, *t)
		}
	}
	return out, nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks), which appears when nn.Parameters rather
// than plain tensors were saved (state_dict(keep_vars=True)).
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter: no arguments")
	}
	if _, ok := args[0].(*lazyTensor); !ok {
		return nil, fmt.Errorf("_rebuild_parameter: data is %T, not a tensor", args[0])
	}
	return args[0], nil
}

// placeholder stands for any Python class or function srmlab does not
// need; calling it yields an inert object that accepts its state.
type placeholder struct{ name string }

func (p *placeholder) Call(...any) (any, error)  { return &pyObject{class: p.name}, nil }
func (p *placeholder) PyNew(...any) (any, error) { return &pyObject{class: p.name}, nil }

// pyObject is an instance of a placeholder class.
type pyObject struct{ class string }

func (*pyObject) PySetState(any) error { return nil }

// materialize checks the view against its storage and copies it out in
// row-major order.
func (t *lazyTensor) materialize() (*tensor.Tensor, DType, error) {
	if len(t.size) != len(t.stride) {
		return nil, "", fmt.Errorf("size %v and stride %v differ in rank", t.size, t.stride)
	}
	n, ok := int64(1), true
	last := int64(t.offset) // highest storage index the view touches
	for d := range t.size {
		if t.size[d] < 0 || t.stride[d] < 0 {
			return nil, "", fmt.Errorf("negative size or stride: size %v, stride %v", t.size, t.stride)
		}
		if n, ok = mulNonNeg(n, int64(t.size[d]), math.MaxInt64); !ok {
			return nil, "", fmt.Errorf("size %v overflows", t.size)
		}
		if t.size[d] > 0 {
			var span int64
			if span, ok = mulNonNeg(int64(t.size[d]-1), int64(t.stride[d]), math.MaxInt64/2); !ok || last > math.MaxInt64/2 {
				return nil, "", fmt.Errorf("stride %v overflows", t.stride)
			}
			last += span
		}
	}
	if t.offset < 0 || (n > 0 && last >= int64(t.storage.numel)) {
		return nil, "", fmt.Errorf("view (offset %d, size %v, stride %v) reaches past its storage of %d elements", t.offset, t.size, t.stride, t.storage.numel)
	}
	// A view that repeats elements (torch.expand) could otherwise turn a
	// few corrupt bytes into a huge tensor; no other view is larger than
	// its storage.
	if n > int64(t.storage.numel) {
		return nil, "", fmt.Errorf("view of size %v (stride %v) has more elements than its storage of %d: save t.contiguous() instead", t.size, t.stride, t.storage.numel)
	}
	data, err := t.storage.bytes()
	if err != nil {
		return nil, "", err
	}
	es := t.storage.class.dtype.size()
	var out []byte
	switch {
	case n == 0:
	case t.contiguous():
		out = data[t.offset*es : (t.offset+int(n))*es]
	default:
		out = make([]byte, int(n)*es)
		idx := make([]int, len(t.size))
		pos := t.offset
		for i := range int(n) {
			copy(out[i*es:(i+1)*es], data[pos*es:])
			for d := len(idx) - 1; d >= 0; d-- {
				idx[d]++
				pos += t.stride[d]
				if idx[d] < t.size[d] {
					break
				}
				pos -= t.stride[d] * t.size[d]
				idx[d] = 0
			}
		}
	}
	v, err := decodeLE(out, t.storage.class.dtype, t.size)
	return v, t.storage.class.dtype, err
}

// contiguous reports whether the view is row-major without gaps, as
// nearly every state_dict tensor is, so it can be decoded in place.
func (t *lazyTensor) contiguous() bool {
	want := 1
	for d := len(t.size) - 1; d >= 0; d-- {
		if t.size[d] != 1 && t.stride[d] != want {
			return false
		}
		want *= t.size[d]
	}
	return true
}

// stateEntry is one key of a state_dict with its tensor.
type stateEntry struct {
	key   string
	value *lazyTensor
}

// stateDictEntries finds the state_dict in the unpickled object: the object
// itself, or its "state_dict" entry.
func stateDictEntries(obj any) ([]stateEntry, error) {
	keys, values, ok := dictItems(obj)
	if !ok {
		return nil, fmt.Errorf("the file holds a value of type %s, not a state_dict", pyType(obj))
	}
	what := "state_dict"
	for i, k := range keys {
		if k == "state_dict" {
			if keys, values, ok = dictItems(values[i]); !ok {
				return nil, fmt.Errorf(`the checkpoint's "state_dict" entry has type %s, not dict`, pyType(values[i]))
			}
			what = `checkpoint's "state_dict"`
			break
		}
	}
	entries := make([]stateEntry, len(keys))
	seen := make(map[string]bool, len(keys))
	strip := len(keys) > 0
	for i, k := range keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%s key %v has type %s, not str", what, k, pyType(k))
		}
		t, ok := values[i].(*lazyTensor)
		if !ok {
			err := fmt.Errorf("%s entry %q has type %s, not tensor", what, key, pyType(values[i]))
			if what == "state_dict" {
				err = fmt.Errorf(`%w: neither a state_dict nor a checkpoint with a "state_dict" entry (keys: %v)`, err, keys)
			}
			return nil, err
		}
		if seen[key] {
			return nil, fmt.Errorf("%s key %q appears twice", what, key)
		}
		seen[key] = true
		strip = strip && strings.HasPrefix(key, "module.")
		entries[i] = stateEntry{key: key, value: t}
	}
	if strip {
		for i := range entries {
			entries[i].key = strings.TrimPrefix(entries[i].key, "module.")
		}
	}
	return entries, nil
}

// dictItems lists the keys and values of a pickled dict or OrderedDict in
// their order.
func dictItems(obj any) (keys, values []any, ok bool) {
	switch d := obj.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			keys = append(keys, entry.Key)
			values = append(values, entry.Value)
		}
		return keys, values, true
	case *types.Dict:
		for _, entry := range *d {
			keys = append(keys, entry.Key)
			values = append(values, entry.Value)
		}
		return keys, values, true
	}
	return nil, nil, false
}

// pyType names a pickled value's Python type for error messages.
func pyType(v any) string {
	switch v := v.(type) {
	case *lazyTensor:
		return "tensor"
	case *pyObject:
		return v.class + " object"
	case nil:
		return "None"
	case string:
		return "str"
	case int, *big.Int:
		return "int"
	case float64:
		return "float"
	case bool:
		return "bool"
	case *types.OrderedDict:
		return "OrderedDict"
	case *types.Dict:
		return "dict"
	case *types.List:
		return "list"
	case *types.Tuple:
		return "tuple"
	}
	return fmt.Sprintf("%T", v)
}
