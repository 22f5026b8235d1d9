package weights

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/srmlab/srmlab/tensor"
)

// DType names an element type as stored in a file, in safetensors' spelling.
// srmlab computes in float32 and float64 only; I64 exists because PyTorch
// keeps BatchNorm's num_batches_tracked as int64, and files that keep that
// type load unchanged into PyTorch.
type DType string

// The element types srmlab reads and writes.
const (
	F32 DType = "F32"
	F64 DType = "F64"
	I64 DType = "I64"
)

// size returns the bytes per element, or 0 for a type srmlab does not handle.
func (d DType) size() int {
	switch d {
	case F32:
		return 4
	case F64, I64:
		return 8
	}
	return 0
}

// maxExactInt is the largest integer magnitude float64 holds exactly; I64
// values beyond it are refused rather than silently rounded.
const maxExactInt = 1 << 53

// Named is one tensor of a checkpoint with its state_dict key.
type Named struct {
	Name   string
	Tensor *tensor.Tensor
	// DType is the type in the file. Readers report it (I64 values arrive
	// as a float64 tensor); writers store the tensor's own type when it is
	// empty and convert to it otherwise.
	DType DType
}

// mulNonNeg multiplies non-negative sizes, reporting overflow past limit so
// that hostile shapes cannot wrap around into small allocations.
func mulNonNeg(a, b, limit int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	if a != 0 && b > limit/a {
		return 0, false
	}
	return a * b, true
}

// numel returns the element count of shape, or false if a dimension is
// negative or the count exceeds limit.
func numel(shape []int64, limit int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		var ok bool
		if n, ok = mulNonNeg(n, d, limit); !ok {
			return 0, false
		}
	}
	return n, true
}

// decodeLE converts little-endian data of type dt into a tensor: float32
// stays float32, float64 and int64 become float64.
func decodeLE(data []byte, dt DType, shape []int) (*tensor.Tensor, error) {
	n := len(data) / dt.size()
	switch dt {
	case F32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		return tensor.FromFloat32(out, shape...), nil
	case F64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
		}
		return tensor.FromFloat64(out, shape...), nil
	case I64:
		out := make([]float64, n)
		for i := range out {
			v := int64(binary.LittleEndian.Uint64(data[8*i:]))
			if v > maxExactInt || v < -maxExactInt {
				return nil, fmt.Errorf("int64 element %d (%d) is beyond float64's exact range", i, v)
			}
			out[i] = float64(v)
		}
		return tensor.FromFloat64(out, shape...), nil
	}
	return nil, fmt.Errorf("unsupported dtype %q", dt)
}

// encodeLE appends t's values as little-endian dt to buf.
func encodeLE(buf []byte, t *tensor.Tensor, dt DType) ([]byte, error) {
	if t.Device() != nil { // one copy to the host, not one per element
		h, err := t.To(nil)
		if err != nil {
			return nil, err
		}
		t = h
	}
	n := t.Len()
	switch dt {
	case F32:
		for i := range n {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(t.At(i))))
		}
	case F64:
		for i := range n {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(t.At(i)))
		}
	case I64:
		for i := range n {
			v := t.At(i)
			if v != math.Trunc(v) || v > maxExactInt || v < -maxExactInt {
				return nil, fmt.Errorf("element %d (%v) is not an integer that int64 and float64 both hold", i, v)
			}
			buf = binary.LittleEndian.AppendUint64(buf, uint64(int64(v)))
		}
	default:
		return nil, fmt.Errorf("unsupported dtype %q (want F32, F64 or I64)", dt)
	}
	return buf, nil
}

// ownDType is the file type that stores t without conversion.
func ownDType(t *tensor.Tensor) DType {
	if t.DType() == tensor.Float64 {
		return F64
	}
	return F32
}
