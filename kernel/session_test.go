package kernel

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// newTestSession is a session whose output goes to buffers.
func newTestSession(t *testing.T) (*session, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	s, err := newSession(&out, &out)
	if err != nil {
		t.Fatal(err)
	}
	return s, &out
}

// text runs a cell and returns its shown result as text.
func text(t *testing.T, s *session, src string) string {
	t.Helper()
	res, err := s.run(context.Background(), src)
	if err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	d, ok := bundle(res)
	if !ok {
		return ""
	}
	return d.Data["text/plain"].(string)
}

func cellErr(t *testing.T, s *session, src string) *execError {
	t.Helper()
	_, err := s.run(context.Background(), src)
	var ee *execError
	if !errors.As(err, &ee) {
		t.Fatalf("%q: error %v, want an execError", src, err)
	}
	return ee
}

func TestSessionResults(t *testing.T) {
	s, out := newTestSession(t)
	for _, c := range []struct{ src, want string }{
		{"x := 40 + 2", ""},
		{"x", "42"},
		{"import \"fmt\"\nimport \"strings\"\n\nstrings.ToUpper(\"go\")", "GO"},
		{"import \"strings\"\nstrings.Repeat(\"a\", 3)", "aaa"},
		{"func twice(n int) int { return 2 * n }\ntype pair struct{ A, B int }\ny := twice(x)\npair{x, y}", "{A:42 B:84}"},
		{"func split() (int, error) { return 7, nil }\nsplit()", "7"},
		{"import \"os\"\nos.ReadFile(\"/nonexistent/file\")", "open /nonexistent/file: no such file or directory"},
		{"fmt.Println(\"printed\")", ""},
		{"func quiet() {}\nquiet()", ""},
		{"var s []int\nfor i := 0; i < 3; i++ { s = append(s, i) }\ns // trailing comment", "[0 1 2]"},
		{"(x)", "42"},
	} {
		if got := text(t, s, c.src); got != c.want {
			t.Errorf("%q shows %q, want %q", c.src, got, c.want)
		}
	}
	if !strings.Contains(out.String(), "printed") {
		t.Errorf("output %q lacks the printed line", out)
	}
}

func TestSessionErrors(t *testing.T) {
	s, _ := newTestSession(t)
	text(t, s, "import \"fmt\"\nx := 1")
	e := cellErr(t, s, "y := 2\n\nfmt.Println(undefinedName)")
	if e.name != "CompileError" || !strings.Contains(e.value, "cell:3:") || !strings.Contains(e.value, "undefinedName") {
		t.Errorf("compile error %+v, want one at cell:3 naming undefinedName", e)
	}
	e = cellErr(t, s, "func boom() {\n\tvar m map[string]int\n\tm[\"a\"] = 1\n}\nboom()")
	if e.name != "panic" || !strings.Contains(e.value, "nil map") {
		t.Errorf("panic %+v, want the nil map assignment", e)
	}
	// yaegi places the panic roughly inside boom; the call site is exact.
	if tb := strings.Join(e.traceback, "\n"); !strings.Contains(tb, "in main.boom") || !strings.Contains(tb, "at cell:5:1") {
		t.Errorf("traceback %q, want frames in boom and at the call on line 5", tb)
	}
	if got := text(t, s, "x"); got != "1" {
		t.Errorf("after the panic x = %q, want 1", got)
	}
	e = cellErr(t, s, "import \"github.com/example/nothere\"")
	if e.name != "ImportError" {
		t.Errorf("import of a missing package: %+v", e)
	}
	e = cellErr(t, s, "for i := range 3 { _ = i }")
	if e.name != "CompileError" {
		t.Errorf("range over int: %+v, want a CompileError", e)
	}
	if got := text(t, s, "x + 1"); got != "2" {
		t.Errorf("after the errors x+1 = %q, want 2", got)
	}
}

func TestSessionInterrupt(t *testing.T) {
	s, _ := newTestSession(t)
	text(t, s, "import \"os/exec\"")
	for _, src := range []string{
		"n := 0\nfor { n++ }",
		"<-ctx.Done()\nprintln(\"cancelled\")",
		// A compiled call that honours ctx, as srmlab's training does.
		"exec.CommandContext(ctx, \"sleep\", \"30\").Run()",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		_, err := s.run(ctx, src)
		cancel()
		var ee *execError
		if !errors.As(err, &ee) || ee.name != "Interrupted" {
			t.Errorf("%q: %v, want Interrupted", src, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%q stopped after %v", src, d)
		}
	}
	if got := text(t, s, "n > 0"); got != "true" {
		t.Errorf("n > 0 = %q after the interrupted loop", got)
	}
}

func TestSessionComplete(t *testing.T) {
	s, _ := newTestSession(t)
	text(t, s, "import (\n\t\"bytes\"\n\t\"fmt\"\n\t\"github.com/srmlab/srmlab/srm\"\n)\n")
	text(t, s, "buf := new(bytes.Buffer)\nmodelName := \"resnet20\"\nfunc helper() {}")
	for _, c := range []struct {
		code string
		want string
	}{
		{"fmt.Prin", "Println"},
		{"srm.NewMo", "NewModel"},
		{"buf.WriteStr", "WriteString"},
		{"model", "modelName"},
		{"help", "helper"},
		{"fm", "fmt"},
		{"x := ct", "ctx"},
	} {
		m, start, end := s.complete(c.code, len(c.code))
		if !slices.Contains(m, c.want) {
			t.Errorf("complete(%q) = %v, want %s among them", c.code, m, c.want)
		}
		if end != len(c.code) || start > end {
			t.Errorf("complete(%q) replaces [%d,%d)", c.code, start, end)
		}
	}
}

func TestSessionInspect(t *testing.T) {
	s, _ := newTestSession(t)
	text(t, s, "import \"github.com/srmlab/srmlab/srm\"\nimport \"bytes\"")
	text(t, s, "buf := new(bytes.Buffer)")
	for _, c := range []struct {
		code   string
		cursor int
		want   string
	}{
		{"srm.NewModel(", 6, "func NewModel(name string"},
		{"srm", 1, "Package srm"},
		{"buf.Len()", 5, "Len"},
		{"buf", 2, "*bytes.Buffer"},
		{"bytes.NewBuffer", 9, "func([]uint8) *bytes.Buffer"},
	} {
		got, ok := s.inspect(c.code, c.cursor)
		if !ok || !strings.Contains(got, c.want) {
			t.Errorf("inspect(%q, %d) = %q, %v; want it to contain %q", c.code, c.cursor, got, ok, c.want)
		}
	}
}

// TestSessionYaegiWorkarounds covers the yaegi v0.16.1 bugs runStmts works
// around: multi-value := inside a top-level block, and top-level function
// literal calls that yaegi would re-run on every later evaluation.
func TestSessionYaegiWorkarounds(t *testing.T) {
	s, out := newTestSession(t)
	text(t, s, "import (\n\t\"fmt\"\n\t\"strconv\"\n)\ncount := 0")
	text(t, s, "for _, w := range []string{\"1\", \"2\"} {\n\tv, err := strconv.Atoi(w)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tcount += v\n}")
	text(t, s, "func() { count += 10 }()")
	text(t, s, "func() { count += 100 }()\nfmt.Println(\"x\", count)")
	if got := text(t, s, "count"); got != "113" {
		t.Errorf("count = %s, want 113: a statement ran more or less than once", got)
	}
	if got := text(t, s, "if v, err := strconv.Atoi(\"5\"); err == nil {\n\tcount += v\n}\ncount"); got != "118" {
		t.Errorf("count = %s after an if with init, want 118", got)
	}
	if got := text(t, s, "func() int { return count }()"); got != "118" {
		t.Errorf("a function literal's value = %q, want 118", got)
	}
	if got := text(t, s, "count"); got != "118" {
		t.Errorf("count = %s at the end, want 118", got)
	}
	if !strings.Contains(out.String(), "x 113") {
		t.Errorf("output %q", out)
	}
}
