package symbols

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// generated lists the generated files of a folder.
func generated(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		name := filepath.Base(f)
		if !strings.HasPrefix(name, "std_") && !strings.HasPrefix(name, "pkg_") && name != "docs.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

// TestGenerated reruns go generate's command into a temporary folder and
// compares: the tables must match the exported APIs of the packages and
// the Go release in use, or notebooks would miss (or fail to build with)
// what changed.
func TestGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerating the symbol tables takes minutes; skipped in -short mode")
	}
	tmp := t.TempDir()
	cmd := exec.Command("go", "run", "../internal/gensym", "-o", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gensym: %v\n%s", err, out)
	}
	have, want := generated(t, "."), generated(t, tmp)
	var stale []string
	for name, b := range want {
		if !bytes.Equal(have[name], b) {
			stale = append(stale, name)
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			stale = append(stale, name+" (no longer generated)")
		}
	}
	if len(stale) > 0 {
		t.Errorf("symbol tables are stale; run: go generate ./kernel/symbols\n%s", strings.Join(stale, "\n"))
	}
}
