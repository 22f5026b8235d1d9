package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"reflect"
	"regexp"
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
	// results receives the values of a cell's last expression through
	// the predeclared capture function.
	results []any
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
	capture.Set(reflect.ValueOf(func(v ...any) { s.results = v }))
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
}

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
				for _, n := range declaredNames(src[first.start:end]) {
					s.declared[n] = true
				}
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
			return &execError{"ImportError", fmt.Sprintf("cell:%d:%d: package %s is not compiled into the kernel", sp.line, sp.col, sp.path),
				[]string{"The kernel runs the standard library, srmlab, gonum/plot and gocsv compiled in; kernel/internal/gensym lists them."}}
		}
		if name == "_" || name == "." {
			fresh = append(fresh, sp.name+" "+strconv.Quote(sp.path))
			continue
		}
		if have, ok := s.imports[name]; ok {
			if have == sp.path {
				continue
			}
			return &execError{"ImportError", fmt.Sprintf("cell:%d:%d: %s already names %s in this session; import %s under another name", sp.line, sp.col, name, have, sp.path), nil}
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

// runStmts evaluates statements; when the cell ends with an expression,
// it is evaluated on its own so that its value can be shown, through the
// capture function when it is a call, since a call may have several
// results (an error among them) and yaegi only returns the first.
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
	if len(items) > 0 {
		if _, err := s.eval(ctx, placed(src, items[0], items[len(items)-1].end)); err != nil {
			return result{}, err
		}
	}
	if tail == nil {
		return result{}, nil
	}
	text := src[tail.start:tail.end]
	if _, call := isExpr(text); call {
		if printCall(text) {
			_, err := s.eval(ctx, placed(src, *tail, tail.end))
			return result{}, err
		}
		s.results = nil
		wrapped := strings.Repeat("\n", tail.line-1) + captureName + "(\n" + strings.Repeat(" ", tail.col-1) + text + ")"
		_, err := s.eval(ctx, wrapped)
		if err == nil {
			vals := make([]reflect.Value, len(s.results))
			for i, v := range s.results {
				vals[i] = unbox(v)
			}
			return result{values: vals, shown: true}, nil
		}
		var ee *execError
		if !errors.As(err, &ee) || ee.name != "CompileError" {
			return result{}, err
		}
		// A call with no result cannot be captured; run it as it is.
		_, err = s.eval(ctx, placed(src, *tail, tail.end))
		return result{}, err
	}
	v, err := s.eval(ctx, placed(src, *tail, tail.end))
	if err != nil {
		return result{}, err
	}
	return result{values: []reflect.Value{v}, shown: true}, nil
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
		return v, &execError{"Interrupted", "the cell was interrupted", nil}
	}
	var p interp.Panic
	if errors.As(err, &p) {
		frames := s.trace.frames()
		if len(frames) == 0 {
			// yaegi panicked while compiling: a construct it lacks.
			return v, &execError{"CompileError", "the interpreter cannot run this code: " + fmt.Sprint(p.Value),
				[]string{"yaegi v0.16.1 lacks range over integers and functions and the min, max and clear builtins."}}
		}
		msg := fmt.Sprint(p.Value)
		return v, &execError{"panic", msg, append([]string{"panic: " + msg}, frames...)}
	}
	return v, compileError(err)
}

var posRE = regexp.MustCompile(`^(?:_\.go:)?(\d+):(\d+): `)

// compileError renders an error found before the cell ran, with the
// position in the cell.
func compileError(err error) error {
	var ce *cellError
	if errors.As(err, &ce) {
		return &execError{"CompileError", ce.Error(), []string{ce.Error()}}
	}
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = fixPosition(l); l != "" {
			lines = append(lines, l)
		}
	}
	return &execError{"CompileError", strings.Join(lines, "; "), lines}
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

func (t *traceWriter) Write(p []byte) (int, error) {
	if m := traceRE.FindSubmatch(p); m != nil {
		t.mu.Lock()
		pos := fixPosition(strings.TrimSuffix(string(p), "\n"))
		pos = pos[:strings.Index(pos, ": panic: ")]
		t.lines = append(t.lines, "  at "+pos+" in "+string(m[1]))
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
