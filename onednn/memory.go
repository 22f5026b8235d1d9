package onednn

import (
	"fmt"
	"unsafe"
)

// plainMD describes a dense float32 array of the given dimensions in row-major
// order (NCHW for activations, OIHW or GOIHW for weights), or lets the
// primitive choose its layout when any is set.
func (l *library) plainMD(any bool, d ...int) (md, error) {
	var m md
	var ds dims
	for i, v := range d {
		ds[i] = int64(v)
	}
	tag := int32(tagAny)
	if !any {
		tag = [...]int32{0, tagA, 0, 0, tagABCD, tagABCDE}[len(d)]
	}
	return m, l.check(fmt.Sprintf("memory descriptor %v", d), l.mdInitByTag(&m, int32(len(d)), &ds, dtF32, tag))
}

// primitive is a created primitive with a memory object per argument,
// whose data pointers run sets per call, and the layout of each argument.
type primitive struct {
	h     uintptr
	args  []execArg
	descs map[int32]md
}

// build makes a primitive descriptor with create, then the primitive it
// describes with memory objects for the arguments named, in the order run
// takes their data. The descriptor is destroyed unless keep receives it.
func (l *library) build(what string, create func(pd *uintptr) int32, keep *uintptr, args ...int32) (*primitive, error) {
	var pd uintptr
	if err := l.check(what, create(&pd)); err != nil {
		return nil, err
	}
	if keep != nil {
		*keep = pd
	} else {
		defer l.pdDestroy(pd)
	}
	p := &primitive{descs: map[int32]md{}}
	if err := l.check(what, l.primCreate(&p.h, pd)); err != nil {
		return nil, err
	}
	for _, a := range args {
		d := l.pdQueryMD(pd, queryExecArgMD, a)
		if d == nil {
			return nil, fmt.Errorf("onednn: %s has no argument %d", what, a)
		}
		var m uintptr
		if err := l.check("memory", l.memCreate(&m, d, l.engine, nil)); err != nil {
			return nil, err
		}
		p.descs[a] = *d
		p.args = append(p.args, execArg{arg: a, mem: m})
	}
	return p, nil
}

// maxReorders caps the layout pairs whose reorder primitives are kept
// (see cache).
var maxReorders = 1024

// free destroys a primitive and its arguments' memory objects; nil is a
// primitive never made.
func (l *library) free(p *primitive) {
	if p == nil {
		return
	}
	for _, a := range p.args {
		l.memDestroy(a.mem)
	}
	l.primDestroy(p.h)
}

// run executes p with the arguments' data at the given addresses, in the
// order the arguments were named, and waits for it.
func (l *library) run(p *primitive, data ...unsafe.Pointer) error {
	for i, ptr := range data {
		if err := l.check("set data", l.memSetHandle(p.args[i].mem, ptr)); err != nil {
			return err
		}
	}
	if err := l.check("execute", l.primExecute(p.h, l.stream, int32(len(p.args)), &p.args[0])); err != nil {
		return err
	}
	return l.check("wait", l.streamWait(l.stream))
}

// reorderKey names a reorder primitive: source and destination layouts and
// whether the destination is added to.
type reorderKey struct {
	from, to md
	add      bool
}

// reorder copies src, laid out as from, into dst, laid out as to, adding
// to what dst holds when add is set.
func (l *library) reorder(from, to *md, add bool, src, dst unsafe.Pointer) error {
	key := reorderKey{*from, *to, add}
	p, ok := l.reorders.get(key)
	if !ok {
		var attr uintptr
		if add {
			if err := l.sumAttr(&attr); err != nil {
				return err
			}
		}
		var err error
		p, err = l.build("reorder", func(pd *uintptr) int32 {
			return l.reorderPDCreate(pd, from, l.engine, to, l.engine, attr)
		}, nil, argSrc, argDst)
		l.dropAttr(attr)
		if err != nil {
			return err
		}
		l.reorders.put(key, p)
	}
	return l.run(p, src, dst)
}

// staged is an operand of a primitive: the layouts srmlab may hand it in
// (NCHW, and Blocked16 for feature maps whose channels allow it) and the
// layout the primitive chose.
type staged struct {
	at     [2]md   // by Layout
	has    [2]bool // Blocked16 only for feature maps of 16k channels
	same   [2]bool // at[layout] is chosen: no reorder
	chosen md
	bytes  uintptr
}

// stage records a primitive's operand that srmlab keeps in plain, or also
// in blocked where that is not nil.
func (l *library) stage(plain md, blocked *md, p *primitive, arg int32) staged {
	s := staged{chosen: p.descs[arg]}
	s.bytes = l.mdSize(&s.chosen)
	s.at[NCHW], s.has[NCHW] = plain, true
	if blocked != nil {
		s.at[Blocked16], s.has[Blocked16] = *blocked, true
	}
	for lay := range s.at {
		s.same[lay] = s.has[lay] && l.mdEqual(&s.at[lay], &s.chosen) == 1
	}
	return s
}

// native is the layout the primitive takes the operand in without a
// reorder: Blocked16 where it chose that, else NCHW.
func (s *staged) native() Layout {
	if s.same[Blocked16] {
		return Blocked16
	}
	return NCHW
}

func (s *staged) layout(lay Layout) (*md, error) {
	if int(lay) >= len(s.at) || !s.has[lay] {
		return nil, fmt.Errorf("onednn: an operand in layout %d, which it cannot take", lay)
	}
	return &s.at[lay], nil
}

// in returns the operand at data, in layout lay, in the primitive's
// layout: data itself, or a scratch buffer it was reordered into.
func (l *library) in(s *staged, data []float32, lay Layout) (unsafe.Pointer, error) {
	from, err := s.layout(lay)
	if err != nil {
		return nil, err
	}
	if s.same[lay] {
		return unsafe.Pointer(unsafe.SliceData(data)), nil
	}
	buf := l.scratch(s.bytes)
	return buf, l.reorder(from, &s.chosen, false, unsafe.Pointer(unsafe.SliceData(data)), buf)
}

// out returns where the primitive should write an operand that ends in
// data, in layout lay: data itself when the layouts agree and data's
// contents are not to be kept, otherwise a scratch buffer that finish
// moves, or adds, into data.
func (l *library) out(s *staged, add bool, data []float32, lay Layout) unsafe.Pointer {
	if int(lay) < len(s.same) && s.same[lay] && !add {
		return unsafe.Pointer(unsafe.SliceData(data))
	}
	return l.scratch(s.bytes)
}

// finish moves or adds the primitive's result at buf into data, in layout
// lay, unless the primitive wrote data itself.
func (l *library) finish(s *staged, add bool, buf unsafe.Pointer, data []float32, lay Layout) error {
	dst := unsafe.Pointer(unsafe.SliceData(data))
	if buf == dst {
		return nil
	}
	to, err := s.layout(lay)
	if err != nil {
		return err
	}
	return l.reorder(&s.chosen, to, add, buf, dst)
}

// scratch returns a 64-byte-aligned buffer of n bytes that stays the
// caller's until the current call on the library's thread returns. Buffers
// are kept for later calls, so a training step does not allocate them.
func (l *library) scratch(n uintptr) unsafe.Pointer {
	if l.used == len(l.arena) {
		l.arena = append(l.arena, nil)
	}
	buf := &l.arena[l.used]
	l.used++
	if uintptr(len(*buf))*4 < n+64 {
		*buf = make([]float32, (n+64)/4+1)
	}
	p := unsafe.Pointer(unsafe.SliceData(*buf))
	return unsafe.Add(p, (64-uintptr(p)%64)%64)
}

// sumAttr makes attributes whose sum post-op adds a primitive's result to
// what its destination holds.
func (l *library) sumAttr(attr *uintptr) error {
	return l.postOpAttr(attr, "sum post-op", func(ops uintptr) int32 { return l.postOpsAppendSum(ops, 1) })
}

// reluAttr makes attributes whose post-op clamps a primitive's result at 0.
func (l *library) reluAttr(attr *uintptr) error {
	return l.postOpAttr(attr, "ReLU post-op", func(ops uintptr) int32 { return l.postOpsAppendElt(ops, 1, algEltwiseReLU, 0, 0) })
}

// postOpAttr makes attributes with the one post-op that add appends.
func (l *library) postOpAttr(attr *uintptr, what string, add func(ops uintptr) int32) (err error) {
	var ops uintptr
	if err := l.check("attributes", l.attrCreate(attr)); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			l.dropAttr(*attr)
			*attr = 0
		}
	}()
	if err := l.check("post-ops", l.postOpsCreate(&ops)); err != nil {
		return err
	}
	defer l.postOpsDestroy(ops) // the attributes keep a copy
	if err := l.check(what, add(ops)); err != nil {
		return err
	}
	return l.check("set post-ops", l.attrSetPostOps(*attr, ops))
}

// dropAttr destroys attributes once a primitive descriptor, which keeps a
// copy, has been made from them; 0 is none.
func (l *library) dropAttr(attr uintptr) {
	if attr != 0 {
		l.attrDestroy(attr)
	}
}
