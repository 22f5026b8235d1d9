package weights

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"unicode/utf8"
)

// maxSafetensorsHeader bounds the JSON header as the reference
// implementation does, so a corrupt length cannot demand a huge allocation.
const maxSafetensorsHeader = 100_000_000

// metadataKey is the header entry that holds free-form string metadata.
const metadataKey = "__metadata__"

// SaveSafetensors writes tensors and metadata to path in the safetensors
// format, replacing path atomically. Tensors with larger elements are laid
// out first, and the header is padded to 8 bytes, so every tensor is aligned
// for readers that map the file; within a type the given order is kept.
func SaveSafetensors(path string, tensors []Named, metadata map[string]string) error {
	header, order, err := safetensorsHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("weights: %s: %w", path, err)
	}
	return writeAtomic(path, func(w *bufio.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(header); err != nil {
			return err
		}
		var buf []byte
		for _, i := range order {
			t := tensors[i]
			var err error
			if buf, err = encodeLE(buf[:0], t.Tensor, fileDType(t)); err != nil {
				return fmt.Errorf("tensor %q: %w", t.Name, err)
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
}

// fileDType is the type t is stored as.
func fileDType(t Named) DType {
	if t.DType == "" {
		return ownDType(t.Tensor)
	}
	return t.DType
}

// safetensorsHeader builds the padded JSON header and the order in which the
// tensors' data follow it.
func safetensorsHeader(tensors []Named, metadata map[string]string) ([]byte, []int, error) {
	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		switch {
		case t.Name == "" || t.Name == metadataKey:
			return nil, nil, fmt.Errorf("invalid tensor name %q", t.Name)
		case seen[t.Name]:
			return nil, nil, fmt.Errorf("tensor name %q appears twice", t.Name)
		case t.Tensor == nil:
			return nil, nil, fmt.Errorf("tensor %q is nil", t.Name)
		case fileDType(t).size() == 0:
			return nil, nil, fmt.Errorf("tensor %q: unsupported dtype %q (want F32, F64 or I64)", t.Name, t.DType)
		}
		seen[t.Name] = true
	}
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return fileDType(tensors[b]).size() - fileDType(tensors[a]).size()
	})

	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		md, err := json.Marshal(metadata)
		if err != nil {
			return nil, nil, err
		}
		h.WriteString(`"` + metadataKey + `":`)
		h.Write(md)
	}
	var offset int64
	for _, i := range order {
		t := tensors[i]
		if h.Len() > 1 {
			h.WriteByte(',')
		}
		name, err := json.Marshal(t.Name)
		if err != nil {
			return nil, nil, err
		}
		dt := fileDType(t)
		end := offset + int64(t.Tensor.Len()*dt.size())
		h.Write(name)
		fmt.Fprintf(&h, `:{"dtype":%q,"shape":[`, dt)
		for j, d := range t.Tensor.Shape() {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, offset, end)
		offset = end
	}
	h.WriteByte('}')
	for (8+h.Len())%8 != 0 {
		h.WriteByte(' ')
	}
	return h.Bytes(), order, nil
}

// LoadSafetensors reads every tensor of the safetensors file at path, in the
// order of their data in the file (the order SaveSafetensors wrote them in),
// and its metadata. The header is validated as strictly as the reference
// implementation does: the tensors' byte ranges must tile the data exactly,
// without gaps or overlaps, and match their shapes.
func LoadSafetensors(path string) ([]Named, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("weights: %w", err)
	}
	ts, md, err := readSafetensors(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	return ts, md, nil
}

// stEntry is one tensor's header entry, kept with its key for checks and
// error messages. Pointers tell a missing field from an empty one.
type stEntry struct {
	name    string
	DType   DType    `json:"dtype"`
	Shape   *[]int64 `json:"shape"`
	Offsets *[]int64 `json:"data_offsets"`
}

// readSafetensors parses a safetensors file of size bytes read through r.
func readSafetensors(r io.ReaderAt, size int64) ([]Named, map[string]string, error) {
	if size < 8 {
		return nil, nil, fmt.Errorf("safetensors: truncated: %d bytes, too short for the 8-byte header length", size)
	}
	var nb [8]byte
	if _, err := r.ReadAt(nb[:], 0); err != nil {
		return nil, nil, fmt.Errorf("safetensors: reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(nb[:])
	switch {
	case n > uint64(size-8):
		return nil, nil, fmt.Errorf("safetensors: header length %d (at offset 0) runs past the end of the file (%d bytes): truncated or not a safetensors file", n, size)
	case n > maxSafetensorsHeader:
		return nil, nil, fmt.Errorf("safetensors: header length %d exceeds the %d-byte limit", n, maxSafetensorsHeader)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, nil, fmt.Errorf("safetensors: reading the %d-byte header at offset 8: %w", n, err)
	}
	entries, md, err := parseSafetensorsHeader(header)
	if err != nil {
		return nil, nil, err
	}
	dataStart := 8 + int64(n)
	if err := checkLayout(entries, size-dataStart, dataStart); err != nil {
		return nil, nil, err
	}
	out := make([]Named, len(entries))
	for i, e := range entries {
		begin, end := (*e.Offsets)[0], (*e.Offsets)[1]
		buf := make([]byte, end-begin)
		if _, err := r.ReadAt(buf, dataStart+begin); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: reading %d bytes at offset %d: %w", e.name, len(buf), dataStart+begin, err)
		}
		shape := make([]int, len(*e.Shape))
		for j, d := range *e.Shape {
			shape[j] = int(d)
		}
		t, err := decodeLE(buf, e.DType, shape)
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %w", e.name, err)
		}
		out[i] = Named{Name: e.name, Tensor: t, DType: e.DType}
	}
	return out, md, nil
}

// parseSafetensorsHeader decodes the JSON header, refusing duplicate keys
// (which encoding/json would silently collapse) and anything after the
// object but the space padding.
func parseSafetensorsHeader(header []byte) ([]stEntry, map[string]string, error) {
	if !utf8.Valid(header) {
		return nil, nil, fmt.Errorf("safetensors: header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("safetensors: header is not a JSON object (bad JSON at offset 8)")
	}
	var entries []stEntry
	var md map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: bad JSON header near byte %d: %w", 8+dec.InputOffset(), err)
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			return nil, nil, fmt.Errorf("safetensors: key %q appears twice in the header", key)
		}
		seen[key] = true
		if key == metadataKey {
			if err := dec.Decode(&md); err != nil {
				return nil, nil, fmt.Errorf("safetensors: %s must map strings to strings: %w", metadataKey, err)
			}
			continue
		}
		e := stEntry{name: key}
		if err := dec.Decode(&e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: bad JSON header entry: %w", key, err)
		}
		if e.DType == "" || e.Shape == nil || e.Offsets == nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: header entry lacks dtype, shape or data_offsets", key)
		}
		if len(*e.Offsets) != 2 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: data_offsets %v is not a [begin, end] pair", key, *e.Offsets)
		}
		if e.DType.size() == 0 {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: dtype %q not supported (srmlab reads F32, F64 and I64)", key, e.DType)
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("safetensors: bad JSON header near byte %d: %w", 8+dec.InputOffset(), err)
	}
	if rest := header[dec.InputOffset():]; len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, fmt.Errorf("safetensors: data after the JSON header object at offset %d", 8+dec.InputOffset())
	}
	return entries, md, nil
}

// checkLayout sorts entries by their data and checks that they tile the
// dataSize bytes after the header exactly and that each range fits its
// shape, before any tensor is allocated.
func checkLayout(entries []stEntry, dataSize, dataStart int64) error {
	slices.SortFunc(entries, func(a, b stEntry) int {
		return cmp.Or(cmp.Compare((*a.Offsets)[0], (*b.Offsets)[0]), cmp.Compare((*a.Offsets)[1], (*b.Offsets)[1]), cmp.Compare(a.name, b.name))
	})
	var pos int64
	prev := "the header"
	for _, e := range entries {
		begin, end := (*e.Offsets)[0], (*e.Offsets)[1]
		switch {
		case begin < pos:
			return fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] overlap %s, which ends at %d", e.name, begin, end, prev, pos)
		case begin > pos:
			return fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] leave a gap after %s, which ends at %d", e.name, begin, end, prev, pos)
		case end < begin:
			return fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] end before they begin", e.name, begin, end)
		case end > dataSize:
			return fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] (file offsets %d to %d) run past the end of the file (%d bytes): truncated", e.name, begin, end, dataStart+begin, dataStart+end, dataStart+dataSize)
		}
		n, ok := numel(*e.Shape, math.MaxInt64)
		var nbytes int64
		if ok {
			nbytes, ok = mulNonNeg(n, int64(e.DType.size()), math.MaxInt64)
		}
		if !ok {
			return fmt.Errorf("safetensors: tensor %q: invalid shape %v", e.name, *e.Shape)
		}
		if nbytes != end-begin {
			return fmt.Errorf("safetensors: tensor %q: shape %v of %s needs %d bytes but data_offsets [%d, %d] hold %d", e.name, *e.Shape, e.DType, nbytes, begin, end, end-begin)
		}
		pos, prev = end, fmt.Sprintf("tensor %q", e.name)
	}
	if pos != dataSize {
		return fmt.Errorf("safetensors: the tensors' data end at %d but the file holds %d data bytes after the header", pos, dataSize)
	}
	return nil
}
