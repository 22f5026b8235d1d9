package kernel

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"io"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/srmlab/srmlab/display"
	"github.com/srmlab/srmlab/kernel/symbols"
	"github.com/traefik/yaegi/interp"
)

// session is the interpreter state that persists across cells.
type session struct {
	interp *interp.Interpreter
	// imports maps the names cells imported to their paths: yaegi refuses
	// an import seen before, and notebooks re-run cells all the time.
	imports map[string]string
	// declared holds the functions and types cells declared.
	declared map[string]bool
	// captured receives the values of a cell's last expression through
	// the predeclared capture function.
	captured []any
	// funcs holds the result counts of the functions and methods cells
	// declared, to know which calls have values to show.
	funcs map[string]int
	// blocks counts the functions runBlock declared.
	blocks int
	// ctx is the predeclared ctx variable, set before each cell. It is
	// looked up once: yaegi's Globals panics after a failed declaration.
	ctx   reflect.Value
	trace *traceWriter
}

// Names predeclared in every session. ctx is the running cell's context,
// cancelled when the cell is interrupted; Display is gophernotes' global.
const (
	ctxName     = "ctx"
	captureName = "srmlabCaptureResults__"
	blockPrefix = "srmlabBlock__"
)

// prelude runs when a session starts: what gophernotes users expect to
// find (the display package and Display), plus the cell context.
var prelude = []string{
	`import "context"`,
	`import "github.com/srmlab/srmlab/display"`,
	`var ` + ctxName + ` context.Context = context.Background()`,
	`var ` + captureName + ` func(...interface{})`,
	`func Display(d display.Data) error { return display.Display(d) }`,
}

func newSession(stdout, stderr io.Writer) (*session, error) {
	s := &session{
		imports:  map[string]string{},
		declared: map[string]bool{},
		funcs:    map[string]int{"Display": 1},
		trace:    &traceWriter{w: stderr},
	}
	s.interp = interp.New(interp.Options{Stdout: stdout, Stderr: s.trace})
	if err := s.interp.Use(symbols.Symbols); err != nil {
		return nil, err
	}
	for _, src := range prelude {
		if _, err := s.interp.Eval(src); err != nil {
			return nil, fmt.Errorf("prelude %q: %w", src, err)
		}
	}
	s.imports["context"] = "context"
	s.imports["display"] = "github.com/srmlab/srmlab/display"
	s.declared["Display"] = true
	globals := s.interp.Globals()
	capture, ctxVar := globals[captureName], globals[ctxName]
	if !capture.CanSet() || !ctxVar.CanSet() {
		return nil, errors.New("prelude: predeclared variables are not settable")
	}
	capture.Set(reflect.ValueOf(func(v ...any) { s.captured = v }))
	s.ctx = ctxVar
	return s, nil
}

// result is what a cell's last expression evaluated to.
type result struct {
	values []reflect.Value
	shown  bool // the cell ended with an expression
}

// execError is a cell's failure as Jupyter shows it.
type execError struct {
	name, value string
	traceback   []string
	// compiler marks a panic of yaegi's compiler, which is yaegi's
	// trouble more than the code's.
	compiler bool
}

// Error is the error's text as a log line shows it.
func (e *execError) Error() string { return e.name + ": " + e.value }

// run evaluates a cell. A panic in the cell, or in yaegi itself, becomes
// an error: the session lives on with the state the cell left.
func (s *session) run(ctx context.Context, src string) (res result, err error) {
	chunks, _, err := splitCell(src)
	if err != nil {
		return res, compileError(err)
	}
	s.ctx.Set(reflect.ValueOf(&ctx).Elem())
	for ci, c := range chunks {
		last := ci == len(chunks)-1
		switch c.kind {
		case importChunk:
			err = s.runImports(ctx, src, c)
		case declChunk:
			first, end := c.items[0], c.items[len(c.items)-1].end
			if _, err = s.eval(ctx, placed(src, first, end)); err == nil {
				names, funcs := declaredNames(src[first.start:end])
				for _, n := range names {
					s.declared[n] = true
				}
				maps.Copy(s.funcs, funcs)
			}
		case stmtChunk:
			res, err = s.runStmts(ctx, src, c, last)
		}
		if err != nil {
			return result{}, err
		}
	}
	return res, nil
}

func (s *session) runImports(ctx context.Context, src string, c chunk) error {
	specs, err := parseImports(src, c)
	if err != nil {
		return compileError(err)
	}
	var fresh []string
	for _, sp := range specs {
		name := sp.name
		if name == "" {
			name = s.packageName(sp.path)
		}
		if name == "" {
			return &execError{name: "ImportError", value: fmt.Sprintf("cell:%d:%d: package %s is not compiled into the kernel", sp.line, sp.col, sp.path),
				traceback: []string{"The kernel runs the standard library, srmlab, gonum/plot and gocsv compiled in; kernel/internal/gensym lists them."}}
		}
		if name == "_" || name == "." {
			fresh = append(fresh, sp.name+" "+strconv.Quote(sp.path))
			continue
		}
		if have, ok := s.imports[name]; ok {
			if have == sp.path {
				continue
			}
			return &execError{name: "ImportError", value: fmt.Sprintf("cell:%d:%d: %s already names %s in this session; import %s under another name", sp.line, sp.col, name, have, sp.path)}
		}
		fresh = append(fresh, name+" "+strconv.Quote(sp.path))
		s.imports[name] = sp.path
	}
	if len(fresh) == 0 {
		return nil
	}
	_, err = s.eval(ctx, "import (\n"+strings.Join(fresh, "\n")+"\n)")
	return err
}

// packageName is the name a compiled package is imported under, or ""
// when the kernel does not have it.
func (s *session) packageName(importPath string) string {
	for k := range symbols.Symbols {
		if path.Dir(k) == importPath {
			return path.Base(k)
		}
	}
	return ""
}

// runStmts evaluates statements, working around yaegi v0.16.1's trouble
// with top-level statements (statements are what it handles worst; inside
// a function body it is solid):
//   - a statement with a body runs as the body of a function declared for
//     it (runBlock): at top level, "v, err := f()" inside a block reports
//     "undefined"; globals stay reachable, and the statement's own
//     variables are block-scoped anyway;
//   - a statement that starts with "func" makes yaegi declare a main
//     function that it then re-runs on every later evaluation, so
//     statement sources start with ";";
//   - when a group of simple statements fails to compile in ways that are
//     yaegi's (see troubled), each runs alone, through runSimple.
//
// When the cell ends with an expression, it is evaluated on its own so
// that its value can be shown, through the capture function when it is a
// call, since a call may have several results (an error among them) and
// yaegi only returns the first.
func (s *session) runStmts(ctx context.Context, src string, c chunk, last bool) (result, error) {
	items := c.items
	var tail *item
	if last {
		it := items[len(items)-1]
		if expr, _ := isExpr(src[it.start:it.end]); expr {
			tail = &it
			items = items[:len(items)-1]
		}
	}
	for i := 0; i < len(items); {
		if items[i].block {
			if err := s.runBlock(ctx, src[items[i].start:items[i].end], items[i].line, items[i].col); err != nil {
				return result{}, err
			}
			i++
			continue
		}
		j := i
		for j < len(items) && !items[j].block {
			j++
		}
		if _, err := s.eval(ctx, ";"+placed(src, items[i], items[j-1].end)); err != nil {
			if !troubled(err) {
				return result{}, err
			}
			// Nothing ran: compilation failed. Go again statement by
			// statement.
			for _, it := range items[i:j] {
				if err := s.runSimple(ctx, src, it); err != nil {
					return result{}, err
				}
			}
		}
		i = j
	}
	if tail == nil {
		return result{}, nil
	}
	return s.runTail(ctx, src, *tail)
}

// runTail evaluates the cell's last expression and returns its values.
func (s *session) runTail(ctx context.Context, src string, tail item) (result, error) {
	text := src[tail.start:tail.end]
	_, call := isExpr(text)
	n, known := s.resultCount(text)
	if call && known && (n == 0 || printCall(text)) {
		return result{}, s.runSimple(ctx, src, tail)
	}
	if call && known {
		s.captured = nil
		wrapped := strings.Repeat("\n", tail.line-1) + captureName + "(\n" + strings.Repeat(" ", tail.col-1) + text + ")"
		_, err := s.eval(ctx, wrapped)
		if troubled(err) {
			err = s.runBlock(ctx, captureName+"(\n"+strings.Repeat(" ", tail.col-1)+text+")", tail.line-1, 1)
		}
		if err != nil {
			return result{}, err
		}
		vals := make([]reflect.Value, len(s.captured))
		for i, v := range s.captured {
			vals[i] = unbox(v)
		}
		return result{values: vals, shown: true}, nil
	}
	// A lone value, or a call whose results are unknown: yaegi returns
	// the first result, or for a call without results a pointer of its
	// own that is no value of the cell's.
	v, err := s.eval(ctx, ";"+placed(src, tail, tail.end))
	if troubled(err) && !call {
		s.captured = nil
		if err = s.runBlock(ctx, captureName+"("+text+")", tail.line, tail.col); err == nil && len(s.captured) == 1 {
			return result{values: []reflect.Value{unbox(s.captured[0])}, shown: true}, nil
		}
	}
	if err != nil {
		return result{}, err
	}
	if call && v.IsValid() && v.Type() == reflect.TypeFor[*any]() {
		return result{}, nil
	}
	return result{values: []reflect.Value{v}, shown: true}, nil
}

// troubled tells yaegi's own failures to compile valid code at top level:
// a variable whose type it cannot infer ("definition loop"), or a panic
// of its compiler. Such code usually compiles inside a function.
func troubled(err error) bool {
	var ee *execError
	return errors.As(err, &ee) && (ee.compiler || ee.name == "CompileError" && strings.Contains(ee.value, "definition loop"))
}

// runSimple runs one statement without a body. When yaegi fails on it at
// top level, a statement that declares variables is split into typed
// declarations (typedDefine) and an assignment run inside a function;
// any other runs inside a function as a whole.
func (s *session) runSimple(ctx context.Context, src string, it item) error {
	text := src[it.start:it.end]
	_, err := s.eval(ctx, ";"+placed(src, it, it.end))
	if !troubled(err) {
		return err
	}
	if !declares(text) {
		return s.runBlock(ctx, text, it.line, it.col)
	}
	decls, assign, ok := s.typedDefine(text)
	if !ok {
		var ee *execError
		if errors.As(err, &ee) {
			ee.traceback = append(ee.traceback, "yaegi cannot infer this variable's type at top level: declare it with one (var x T = ...), or compute it inside a function.")
		}
		return err
	}
	if _, err := s.eval(ctx, ";"+decls); err != nil {
		return err
	}
	return s.runBlock(ctx, assign, it.line, it.col)
}

// runBlock runs statements as the body of a function declared for them,
// keeping their line and column.
func (s *session) runBlock(ctx context.Context, text string, line, col int) error {
	s.blocks++
	name := fmt.Sprintf("%s%d", blockPrefix, s.blocks)
	decl := strings.Repeat("\n", line-1) + "func " + name + "() {\n" + strings.Repeat(" ", col-1) + text + "\n}"
	if _, err := s.eval(ctx, decl); err != nil {
		return err
	}
	_, err := s.eval(ctx, ";"+name+"()")
	return err
}

// builtinResults are the result counts of Go's builtin functions.
var builtinResults = map[string]int{
	"append": 1, "cap": 1, "complex": 1, "copy": 1, "imag": 1, "len": 1, "make": 1, "new": 1,
	"real": 1, "recover": 1, "close": 0, "delete": 0, "panic": 0, "print": 0, "println": 0,
}

// resultCount tells how many values the call text returns, from what the
// session knows without compiling it: compiling a call to capture its
// results fails for a call without any, and a failed compilation can
// leave yaegi in a bad state.
func (s *session) resultCount(text string) (n int, known bool) {
	e, err := parser.ParseExpr(text)
	if err != nil {
		return 0, false
	}
	c, ok := ast.Unparen(e).(*ast.CallExpr)
	if !ok {
		return 0, false
	}
	switch f := ast.Unparen(c.Fun).(type) {
	case *ast.FuncLit:
		return f.Type.Results.NumFields(), true
	case *ast.ArrayType, *ast.MapType, *ast.ChanType, *ast.StarExpr, *ast.InterfaceType, *ast.StructType, *ast.FuncType:
		return 1, true // a conversion
	case *ast.Ident:
		if n, ok := builtinResults[f.Name]; ok {
			return n, true
		}
		if n, ok := s.funcs[f.Name]; ok {
			return n, true
		}
		if s.declared[f.Name] || slices.Contains(predeclared, f.Name) {
			return 1, true // a conversion to a type
		}
		if v, ok := s.globals()[f.Name]; ok && v.Kind() == reflect.Func {
			return v.Type().NumOut(), true
		}
	case *ast.SelectorExpr:
		parts, ok := identChain(f.X)
		if !ok {
			break
		}
		if p, ok := s.imports[parts[0]]; ok && len(parts) == 1 {
			v, ok := symbolValue(p, f.Sel.Name)
			switch {
			case !ok:
			case v.Kind() == reflect.Func:
				return v.Type().NumOut(), true
			case v.Kind() == reflect.Pointer && v.IsNil():
				return 1, true // a conversion to the package's type
			}
			break
		}
		if t := s.typeOf(parts); t != nil {
			if m, ok := reflect.PointerTo(deref(t)).MethodByName(f.Sel.Name); ok {
				return m.Type.NumOut(), true
			}
			if m, ok := t.MethodByName(f.Sel.Name); ok {
				return m.Type.NumOut(), true
			}
		}
		if n, ok := s.funcs["."+f.Sel.Name]; ok {
			return n, true
		}
	}
	return 0, false
}

// identChain turns a.b.c into its names.
func identChain(e ast.Expr) ([]string, bool) {
	switch x := e.(type) {
	case *ast.Ident:
		return []string{x.Name}, true
	case *ast.SelectorExpr:
		parts, ok := identChain(x.X)
		return append(parts, x.Sel.Name), ok
	}
	return nil, false
}

func deref(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
}

// unbox undoes yaegi's boxing of interpreted values that have methods: it
// passes them to compiled code wrapped in a struct of its own, which would
// print as pointers.
func unbox(v any) reflect.Value {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Struct || rv.Type().PkgPath() != "github.com/traefik/yaegi/interp" || rv.NumField() < 2 {
		return rv
	}
	f, ok := rv.Type().FieldByName("value")
	if !ok || f.Type != reflect.TypeFor[reflect.Value]() {
		return rv
	}
	c := reflect.New(rv.Type()).Elem()
	c.Set(rv)
	inner := *(*reflect.Value)(unsafe.Pointer(c.FieldByIndex(f.Index).UnsafeAddr()))
	return inner
}

// eval runs one chunk and turns yaegi's errors into cell errors.
func (s *session) eval(ctx context.Context, src string) (reflect.Value, error) {
	s.trace.reset()
	v, err := s.interp.EvalWithContext(ctx, src)
	if err == nil {
		return v, nil
	}
	if ctx.Err() != nil {
		return v, &execError{name: "Interrupted", value: "the cell was interrupted"}
	}
	var p interp.Panic
	if errors.As(err, &p) {
		frames := s.trace.frames()
		if len(frames) == 0 {
			// yaegi panicked while compiling: a construct it lacks.
			return v, &execError{name: "CompileError", value: "the interpreter cannot run this code: " + fmt.Sprint(p.Value),
				traceback: []string{"yaegi v0.16.1 lacks range over integers and functions and the min, max and clear builtins."}, compiler: true}
		}
		msg := fmt.Sprint(p.Value)
		return v, &execError{name: "panic", value: msg, traceback: append([]string{"panic: " + msg}, frames...)}
	}
	return v, compileError(err)
}

var posRE = regexp.MustCompile(`^(?:_\.go:)?(\d+):(\d+): `)

// compileError renders an error found before the cell ran, with the
// position in the cell.
func compileError(err error) error {
	var ce *cellError
	if errors.As(err, &ce) {
		return &execError{name: "CompileError", value: ce.Error(), traceback: []string{ce.Error()}}
	}
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = fixPosition(l); l != "" {
			lines = append(lines, l)
		}
	}
	return &execError{name: "CompileError", value: strings.Join(lines, "; "), traceback: lines}
}

// fixPosition maps a yaegi position, one line below the cell's because
// of yaegi's wrapper, back to the cell.
func fixPosition(msg string) string {
	m := posRE.FindStringSubmatchIndex(msg)
	if m == nil {
		return msg
	}
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	return fmt.Sprintf("cell:%d:%s: %s", line-1, msg[m[4]:m[5]], msg[m[1]:])
}

// traceWriter stands between yaegi and standard error: yaegi writes one
// "position: panic: function(...)" line per interpreted frame a panic
// unwinds, which is the cell's traceback; everything else goes through.
type traceWriter struct {
	w     io.Writer
	mu    sync.Mutex
	lines []string
}

var traceRE = regexp.MustCompile(`^(?:_\.go:)?\d+:\d+: panic: (.*)\(\.\.\.\)\n?$`)

// Write keeps trace lines and passes everything else on.
func (t *traceWriter) Write(p []byte) (int, error) {
	if m := traceRE.FindSubmatch(p); m != nil {
		t.mu.Lock()
		pos := fixPosition(strings.TrimSuffix(string(p), "\n"))
		pos = pos[:strings.Index(pos, ": panic: ")]
		line := "  at " + pos
		// The cell's own top level and runBlock's functions are "the cell".
		if fn := string(m[1]); fn != "main" && !strings.HasPrefix(fn, "main."+blockPrefix) {
			line += " in " + fn
		}
		t.lines = append(t.lines, line)
		t.mu.Unlock()
		return len(p), nil
	}
	return t.w.Write(p)
}

func (t *traceWriter) reset() {
	t.mu.Lock()
	t.lines = nil
	t.mu.Unlock()
}

func (t *traceWriter) frames() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// bundle renders a cell's result: a value that renders itself (display
// Data, an image, a plot) as rich output, anything else as text. Nil
// values, such as a nil error next to a result, are left out.
func bundle(res result) (display.Data, bool) {
	var vals []reflect.Value
	for _, v := range res.values {
		if !v.IsValid() || isNil(v) {
			continue
		}
		vals = append(vals, v)
	}
	if !res.shown || len(vals) == 0 {
		return display.Data{}, false
	}
	if len(vals) == 1 && vals[0].CanInterface() {
		if d, ok := display.Render(vals[0].Interface()); ok {
			return d, true
		}
	}
	texts := make([]string, len(vals))
	for i, v := range vals {
		texts[i] = formatValue(v)
	}
	return display.Text(strings.Join(texts, "\n")), true
}

func isNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice, reflect.UnsafePointer:
		return v.IsNil()
	}
	return false
}

// formatValue prints a value the way a Go programmer reads it: strings
// as they are, errors by message, structs with field names.
func formatValue(v reflect.Value) string {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if !v.CanInterface() {
		return fmt.Sprintf("%+v", v)
	}
	switch x := v.Interface().(type) {
	case string:
		return x
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprintf("%+v", v.Interface())
}
