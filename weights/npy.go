package weights

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/srmlab/srmlab/tensor"
)

// npyMagic opens every .npy file.
const npyMagic = "\x93NUMPY"

// maxNpyHeader bounds the header; NumPy itself refuses headers over 10,000
// bytes by default, and real ones are under 200.
const maxNpyHeader = 1 << 20

// ReadNpy reads a NumPy .npy array of little-endian float32 or float64 in C
// order, as np.save writes them, into a float32 tensor of the array's shape;
// float64 data is rounded to float32, srmlab's working type. Fortran-order,
// big-endian and other element types are refused rather than reinterpreted:
// save such arrays with np.ascontiguousarray(a, dtype='<f4').
func ReadNpy(path string) (*tensor.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	t, err := parseNpy(b)
	if err != nil {
		return nil, fmt.Errorf("weights: %s: %w", path, err)
	}
	return t, nil
}

// parseNpy decodes a whole .npy file held in b.
func parseNpy(b []byte) (*tensor.Tensor, error) {
	if len(b) < len(npyMagic)+2 || string(b[:len(npyMagic)]) != npyMagic {
		return nil, fmt.Errorf("npy: not a .npy file (no \\x93NUMPY magic at offset 0)")
	}
	major, minor := b[6], b[7]
	var hlen, start int
	switch {
	case major == 1 && minor == 0:
		if len(b) < 10 {
			return nil, fmt.Errorf("npy: truncated: %d bytes, too short for the header length at offset 8", len(b))
		}
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case (major == 2 || major == 3) && minor == 0:
		if len(b) < 12 {
			return nil, fmt.Errorf("npy: truncated: %d bytes, too short for the header length at offset 8", len(b))
		}
		n := binary.LittleEndian.Uint32(b[8:])
		if n > maxNpyHeader {
			return nil, fmt.Errorf("npy: header length %d exceeds the %d-byte limit", n, maxNpyHeader)
		}
		hlen, start = int(n), 12
	default:
		return nil, fmt.Errorf("npy: format version %d.%d not supported", major, minor)
	}
	if start+hlen > len(b) {
		return nil, fmt.Errorf("npy: truncated: header length %d at offset 8 runs past the end of the file (%d bytes)", hlen, len(b))
	}
	h, err := parseNpyHeader(string(b[start : start+hlen]))
	if err != nil {
		return nil, fmt.Errorf("npy: header at offset %d: %w", start, err)
	}
	var dt DType
	switch h.descr {
	case "<f4":
		dt = F32
	case "<f8":
		dt = F64
	case ">f4", ">f8":
		return nil, fmt.Errorf("npy: big-endian dtype %q not supported: save with dtype '<f4'", h.descr)
	default:
		return nil, fmt.Errorf("npy: dtype %q not supported (want little-endian float32 '<f4' or float64 '<f8')", h.descr)
	}
	if h.fortran {
		return nil, fmt.Errorf("npy: Fortran-order array not supported: save np.ascontiguousarray(a) instead")
	}
	data := b[start+hlen:]
	n, ok := numel(h.shape, math.MaxInt64)
	var want int64
	if ok {
		want, ok = mulNonNeg(n, int64(dt.size()), math.MaxInt64)
	}
	if !ok || want != int64(len(data)) {
		return nil, fmt.Errorf("npy: shape %v of %s needs %d bytes, but %d follow the header at offset %d", h.shape, h.descr, want, len(data), start+hlen)
	}
	shape := make([]int, len(h.shape))
	for i, d := range h.shape {
		shape[i] = int(d)
	}
	t, err := decodeLE(data, dt, shape)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	if dt == F64 {
		t = t.As(tensor.Float32)
	}
	return t, nil
}

// npyHeader is the dict literal at the head of a .npy file.
type npyHeader struct {
	descr   string
	fortran bool
	shape   []int64
}

// parseNpyHeader parses the Python dict literal NumPy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, accepting
// only its three keys, each once, as NumPy does.
func parseNpyHeader(s string) (npyHeader, error) {
	var h npyHeader
	p := &pyLit{s: s}
	if !p.eat('{') {
		return h, fmt.Errorf("not a dict literal: %q", s)
	}
	seen := map[string]bool{}
	for !p.eat('}') {
		key, err := p.str()
		if err != nil {
			return h, err
		}
		if !p.eat(':') {
			return h, fmt.Errorf("missing ':' after key %q", key)
		}
		if seen[key] {
			return h, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "descr":
			h.descr, err = p.str()
		case "fortran_order":
			h.fortran, err = p.boolean()
		case "shape":
			h.shape, err = p.tuple()
		default:
			return h, fmt.Errorf("unexpected key %q", key)
		}
		if err != nil {
			return h, fmt.Errorf("%s: %w", key, err)
		}
		if !p.eat(',') && !p.peek('}') {
			return h, fmt.Errorf("missing ',' or '}' at byte %d", p.i)
		}
	}
	if len(seen) != 3 {
		return h, fmt.Errorf("want keys descr, fortran_order and shape, got %d keys", len(seen))
	}
	if rest := strings.Trim(s[p.i:], " \n"); rest != "" {
		return h, fmt.Errorf("unexpected %q after the dict", rest)
	}
	return h, nil
}

// pyLit is a cursor over a Python literal.
type pyLit struct {
	s string
	i int
}

func (p *pyLit) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

// peek reports whether the next non-space byte is c.
func (p *pyLit) peek(c byte) bool {
	p.skipSpace()
	return p.i < len(p.s) && p.s[p.i] == c
}

// eat consumes the next non-space byte if it is c.
func (p *pyLit) eat(c byte) bool {
	if p.peek(c) {
		p.i++
		return true
	}
	return false
}

// str reads a quoted string without escapes, which NumPy's keys and
// dtype descriptions never contain.
func (p *pyLit) str() (string, error) {
	p.skipSpace()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", fmt.Errorf("want a quoted string at byte %d", p.i)
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", fmt.Errorf("unterminated string at byte %d", p.i)
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", fmt.Errorf("escaped string at byte %d", p.i)
	}
	p.i += end + 2
	return v, nil
}

func (p *pyLit) boolean() (bool, error) {
	p.skipSpace()
	for _, w := range []string{"True", "False"} {
		if strings.HasPrefix(p.s[p.i:], w) {
			p.i += len(w)
			return w == "True", nil
		}
	}
	return false, fmt.Errorf("want True or False at byte %d", p.i)
}

// tuple reads a tuple of non-negative ints; Python 2 NumPy wrote them with
// an L suffix.
func (p *pyLit) tuple() ([]int64, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("want a tuple at byte %d", p.i)
	}
	out := []int64{}
	for !p.eat(')') {
		p.skipSpace()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		v, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want a non-negative int at byte %d", p.i)
		}
		out = append(out, v)
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		if !p.eat(',') && !p.peek(')') {
			return nil, fmt.Errorf("missing ',' or ')' at byte %d", p.i)
		}
	}
	return out, nil
}

// WriteNpy writes t to path as a C-order .npy array of its own type
// (float32 '<f4' or float64 '<f8'), replacing path atomically. The header is
// padded to 64 bytes, as NumPy does, so the data can be memory-mapped.
func WriteNpy(path string, t *tensor.Tensor) error {
	if t == nil {
		return fmt.Errorf("weights: %s: nil tensor", path)
	}
	dt := ownDType(t)
	descr := map[DType]string{F32: "<f4", F64: "<f8"}[dt]
	var shape strings.Builder
	for _, d := range t.Shape() {
		fmt.Fprintf(&shape, "%d, ", d)
	}
	dims := strings.TrimSuffix(shape.String(), " ")
	if t.Rank() > 1 {
		dims = strings.TrimSuffix(dims, ",")
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims)
	pad := (64 - (10+len(dict)+1)%64) % 64
	header := dict + strings.Repeat(" ", pad) + "\n"
	if len(header) > math.MaxUint16 {
		return fmt.Errorf("weights: %s: rank %d is too high for a .npy header", path, t.Rank())
	}
	return writeAtomic(path, func(w *bufio.Writer) error {
		var b bytes.Buffer
		b.WriteString(npyMagic)
		b.Write([]byte{1, 0}) // format 1.0: a 2-byte header length
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(header))))
		b.WriteString(header)
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
		data, err := encodeLE(nil, t, dt)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
}
