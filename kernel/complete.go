package kernel

import (
	"fmt"
	"go/token"
	"path"
	"reflect"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/srmlab/srmlab/kernel/symbols"
)

// Completion and inspection work on the text around the cursor and on
// what the session knows at run time: imported packages' symbol tables,
// global values and their reflected types. Interpreted types carry no
// methods in reflection, so only compiled types' methods are offered.

// byteOffset converts Jupyter's cursor position, counted in code points
// since protocol 5.2, to a byte offset.
func byteOffset(code string, cursor int) int {
	off := 0
	for i := 0; i < cursor && off < len(code); i++ {
		_, n := utf8.DecodeRuneInString(code[off:])
		off += n
	}
	return off
}

func isIdentByte(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// selectorBefore returns the dotted expression ending at off, such as
// "srm.NewMo" or "m.Forward", split into its parts.
func selectorBefore(code string, off int) []string {
	start := off
	for start > 0 {
		r, n := utf8.DecodeLastRuneInString(code[:start])
		if !isIdentByte(r) && r != '.' {
			break
		}
		start -= n
	}
	return strings.Split(code[start:off], ".")
}

// selectorAt returns the dotted expression the cursor is on, extended to
// the end of the identifier under it.
func selectorAt(code string, off int) []string {
	end := off
	for end < len(code) {
		r, n := utf8.DecodeRuneInString(code[end:])
		if !isIdentByte(r) {
			break
		}
		end += n
	}
	parts := selectorBefore(code, end)
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// complete returns the candidates for the identifier being typed at
// cursor, and where it starts.
func (s *session) complete(code string, cursor int) (matches []string, start, end int) {
	off := byteOffset(code, cursor)
	parts := selectorBefore(code, off)
	prefix := parts[len(parts)-1]
	var names []string
	if len(parts) == 1 {
		names = s.identifiers()
	} else {
		names = s.members(parts[:len(parts)-1])
	}
	seen := map[string]bool{}
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && !seen[n] {
			seen[n] = true
			matches = append(matches, n)
		}
	}
	sort.Strings(matches)
	return matches, cursor - utf8.RuneCountInString(prefix), cursor
}

// predeclared are Go's keywords and universe names.
var predeclared = func() []string {
	names := strings.Fields(`any bool byte comparable complex64 complex128 error float32 float64
		int int8 int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr
		true false iota nil append cap close complex copy delete imag len make new panic
		print println real recover`)
	for t := token.BREAK; t <= token.VAR; t++ {
		if t.IsKeyword() {
			names = append(names, t.String())
		}
	}
	return names
}()

// identifiers lists what a bare name can refer to in a cell.
func (s *session) identifiers() []string {
	names := append([]string{ctxName}, predeclared...)
	for n := range s.imports {
		names = append(names, n)
	}
	for n := range s.declared {
		names = append(names, n)
	}
	for n := range s.globals() {
		if n != captureName {
			names = append(names, n)
		}
	}
	return names
}

// globals is yaegi's Globals. After a failed declaration it panics, its
// frame of values being shorter than its symbols until the next
// evaluation; an empty one sets that right.
func (s *session) globals() map[string]reflect.Value {
	get := func() (g map[string]reflect.Value, ok bool) {
		defer func() {
			if recover() != nil {
				g, ok = nil, false
			}
		}()
		return s.interp.Globals(), true
	}
	if g, ok := get(); ok {
		return g
	}
	_, _ = s.interp.Eval(";")
	g, _ := get()
	return g
}

// exports returns an imported package's symbols, without yaegi's
// interface wrappers.
func exports(importPath string) []string {
	var names []string
	for k, syms := range symbols.Symbols {
		if path.Dir(k) != importPath {
			continue
		}
		for n := range syms {
			if !strings.HasPrefix(n, "_") {
				names = append(names, n)
			}
		}
	}
	return names
}

// members lists what may follow "parts.": a package's exports, or the
// fields and methods of a value's type.
func (s *session) members(parts []string) []string {
	if p, ok := s.imports[parts[0]]; ok && len(parts) == 1 {
		return exports(p)
	}
	t := s.typeOf(parts)
	if t == nil {
		return nil
	}
	return fieldsAndMethods(t)
}

// typeOf resolves a global value followed by field selections to a type.
func (s *session) typeOf(parts []string) reflect.Type {
	v, ok := s.globals()[parts[0]]
	if !ok || !v.IsValid() {
		return nil
	}
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	t := v.Type()
	for _, p := range parts[1:] {
		st := t
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		if st.Kind() != reflect.Struct {
			return nil
		}
		f, ok := st.FieldByName(p)
		if !ok {
			return nil
		}
		t = f.Type
	}
	return t
}

func fieldsAndMethods(t reflect.Type) []string {
	var names []string
	for i := range t.NumMethod() {
		names = append(names, t.Method(i).Name)
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		pt := reflect.PointerTo(t)
		for i := range pt.NumMethod() {
			names = append(names, pt.Method(i).Name)
		}
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		for _, f := range reflect.VisibleFields(t) {
			if f.IsExported() {
				names = append(names, f.Name)
			}
		}
	}
	return names
}

// inspect describes what the cursor is on: the declaration and doc
// comment of srmlab's names, the type of anything else compiled in, the
// type and value of a session's variable.
func (s *session) inspect(code string, cursor int) (string, bool) {
	parts := selectorAt(code, byteOffset(code, cursor))
	if len(parts) == 0 || parts[0] == "" {
		return "", false
	}
	if p, ok := s.imports[parts[0]]; ok {
		switch len(parts) {
		case 1:
			if d, ok := symbols.Docs[p]; ok {
				return d, true
			}
			return "package " + parts[0] + ` // import "` + p + `"`, true
		case 2, 3:
			if d, ok := symbols.Docs[p+"."+strings.Join(parts[1:], ".")]; ok {
				return d, true
			}
			if v, ok := symbolValue(p, parts[1]); ok {
				return parts[0] + "." + parts[1] + ": " + describeSymbol(v), true
			}
		}
		return "", false
	}
	v, ok := s.globals()[parts[0]]
	if !ok || !v.IsValid() {
		return "", false
	}
	if len(parts) == 1 {
		return describeValue(parts[0], v), true
	}
	// A method or field of a compiled type: its doc, or its signature.
	t := s.typeOf(parts[:len(parts)-1])
	if t == nil {
		return "", false
	}
	name := parts[len(parts)-1]
	bt := t
	if bt.Kind() == reflect.Pointer {
		bt = bt.Elem()
	}
	if d, ok := symbols.Docs[bt.PkgPath()+"."+bt.Name()+"."+name]; ok {
		return d, true
	}
	if m, ok := reflect.PointerTo(bt).MethodByName(name); ok {
		return fmt.Sprintf("func (%s) %s%s", reflect.PointerTo(bt), name, strings.TrimPrefix(m.Type.String(), "func")), true
	}
	if bt.Kind() == reflect.Struct {
		if f, ok := bt.FieldByName(name); ok {
			return fmt.Sprintf("%s.%s %s", bt, name, f.Type), true
		}
	}
	return "", false
}

func symbolValue(importPath, name string) (reflect.Value, bool) {
	for k, syms := range symbols.Symbols {
		if path.Dir(k) == importPath {
			v, ok := syms[name]
			return v, ok
		}
	}
	return reflect.Value{}, false
}

// describeSymbol prints a compiled symbol's kind and type: yaegi stores
// types as typed nil pointers and constants as go/constant values.
func describeSymbol(v reflect.Value) string {
	switch {
	case v.Kind() == reflect.Pointer && v.IsNil():
		return "type " + v.Type().Elem().String()
	case v.Kind() == reflect.Func:
		return v.Type().String()
	case v.CanInterface():
		if c, ok := v.Interface().(interface{ ExactString() string }); ok {
			return "const = " + c.ExactString()
		}
	}
	return "var " + v.Type().String()
}

// describeValue shows a session variable: its type, the doc of its type
// when srmlab documents it, and its value, cut short.
func describeValue(name string, v reflect.Value) string {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "var %s %s\n", name, v.Type())
	val := formatValue(v)
	if len(val) > 2000 {
		val = val[:2000] + "…"
	}
	fmt.Fprintf(&b, "= %s\n", val)
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if d, ok := symbols.Docs[t.PkgPath()+"."+t.Name()]; ok {
		b.WriteString("\n" + d)
	}
	return b.String()
}
