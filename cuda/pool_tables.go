package cuda

import (
	"encoding/binary"
	"strconv"
	"unsafe"
)

// The pooling kernels read their windows from int32 tables in device
// memory. Those are built on the host, and a cuMemcpyHtoD from pageable
// memory waits for the GPU to finish its queued work, so uploading them on
// every call would serialise the host with the device. Each distinct table
// is therefore uploaded once and kept for the device's life, found again by
// its contents: a network pools the same few shapes every step.

// tableReq names a table by a key that determines its contents and builds
// them only when the table is not yet on the device.
type tableReq struct {
	key   string
	build func() []int32
}

// indexTables returns the device tables for reqs, uploading the missing
// ones: one trip to the CUDA thread, however many tables.
func (d *Device) indexTables(reqs ...tableReq) ([]*Buffer, error) {
	out := make([]*Buffer, len(reqs))
	err := d.exec.do(func() error {
		for i, r := range reqs {
			b, ok := d.tables[r.key]
			if !ok {
				var err error
				if b, err = d.uploadTable(r.build()); err != nil {
					return err
				}
				d.tables[r.key] = b
			}
			out[i] = b
		}
		return nil
	})
	return out, err
}

// uploadTable copies data (never empty: the callers refuse empty tables)
// into a new block on the CUDA thread. The block stays live until Close
// returns every block to the driver.
func (d *Device) uploadTable(data []int32) (*Buffer, error) {
	raw := make([]byte, 0, 4*len(data))
	for _, v := range data {
		raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
	}
	ptr, _, err := d.alloc.get(uint64(len(raw)))
	if err != nil {
		return nil, err
	}
	b := &Buffer{dev: d, ptr: ptr, size: len(raw)}
	if err := check(d.drv, "cuMemcpyHtoD_v2", d.drv.MemcpyHtoD(ptr, unsafe.Pointer(&raw[0]), uint64(len(raw)))); err != nil {
		return nil, err
	}
	return b, nil
}

// tableKey spells a kind of table, a size it depends on and the values it
// is derived from as a map key.
func tableKey(kind string, size int, vals []int32) string {
	k := make([]byte, 0, len(kind)+12+4*len(vals))
	k = append(k, kind...)
	k = append(k, ':')
	k = strconv.AppendInt(k, int64(size), 10)
	k = append(k, ':')
	for _, v := range vals {
		k = binary.LittleEndian.AppendUint32(k, uint32(v))
	}
	return string(k)
}

// spanTable is the {lo, hi, div} triples of spans, as the kernels read them.
func spanTable(spans []PoolSpan) []int32 {
	t := make([]int32, 0, 3*len(spans))
	for _, s := range spans {
		t = append(t, s.Lo, s.Hi, s.Div)
	}
	return t
}

// spansReq is the request for the table of spans.
func spansReq(spans []PoolSpan) tableReq {
	t := spanTable(spans)
	return tableReq{key: tableKey("spans", 0, t), build: func() []int32 { return t }}
}

// inverseReq is the request for the inverse of spans over an axis of size
// in: for every input index, the output indices whose windows hold it, in
// increasing order, as in+1 offsets followed by the lists (CSR). The
// backward passes gather through it.
func inverseReq(spans []PoolSpan, in int) tableReq {
	t := spanTable(spans)
	return tableReq{key: tableKey("inverse", in, t), build: func() []int32 {
		count := make([]int32, in+1)
		for _, s := range spans {
			for i := s.Lo; i < s.Hi; i++ {
				count[i+1]++
			}
		}
		for i := range in {
			count[i+1] += count[i]
		}
		inv := append(count, make([]int32, count[in])...)
		next := append([]int32(nil), count[:in]...)
		for o, s := range spans {
			for i := s.Lo; i < s.Hi; i++ {
				inv[in+1+int(next[i])] = int32(o)
				next[i]++
			}
		}
		return inv
	}}
}

// sourceReq is the request for an upsampling source table.
func sourceReq(src []int32) tableReq {
	return tableReq{key: tableKey("source", 0, src), build: func() []int32 { return src }}
}
