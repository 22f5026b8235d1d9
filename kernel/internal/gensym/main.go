// Command gensym writes the symbol tables that let srmlab's kernel call
// compiled packages from interpreted notebook cells, and the table of doc
// comments the kernel shows on inspection. It runs from kernel/symbols
// through go generate:
//
//	go generate ./kernel/symbols
//
// The tables are what "yaegi extract" writes (gensym calls the same
// extractor, github.com/traefik/yaegi/extract) for the standard library
// of the Go toolchain that runs it and for the packages listed below; they
// are regenerated rather than taken from yaegi because yaegi v0.16.1 ships
// Go 1.22's standard library. A test in kernel/symbols reruns gensym into
// a temporary folder and fails when the committed tables differ.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/traefik/yaegi/extract"
)

// packages are compiled into the kernel besides the standard library.
// Adding a package to notebooks is one line here and a go generate.
var packages = []string{
	"github.com/srmlab/srmlab/analysis",
	"github.com/srmlab/srmlab/blas",
	"github.com/srmlab/srmlab/cuda",
	"github.com/srmlab/srmlab/datasets",
	"github.com/srmlab/srmlab/display",
	"github.com/srmlab/srmlab/nn",
	"github.com/srmlab/srmlab/onednn",
	"github.com/srmlab/srmlab/op",
	"github.com/srmlab/srmlab/optim",
	"github.com/srmlab/srmlab/plots",
	"github.com/srmlab/srmlab/report",
	"github.com/srmlab/srmlab/srm",
	"github.com/srmlab/srmlab/tensor",
	"github.com/srmlab/srmlab/train",
	"github.com/srmlab/srmlab/weights",
	"gonum.org/v1/plot",
	"gonum.org/v1/plot/plotter",
	"gonum.org/v1/plot/plotutil",
	"gonum.org/v1/plot/vg",
	"gonum.org/v1/plot/vg/draw",
	"github.com/gocarina/gocsv",
}

// documented is the prefix of the packages whose doc comments the kernel
// shows on inspection: srmlab's own, which notebooks are about.
const documented = "github.com/srmlab/srmlab/"

// stdSkip are standard packages left out: low-level ones yaegi handles
// itself or cannot use (syscall, unsafe, cgo), sanitizer hooks, and
// packages that only make sense inside the Go tool.
var stdSkip = map[string]bool{
	"syscall":          true,
	"unsafe":           true,
	"plugin":           true,
	"runtime/cgo":      true,
	"runtime/race":     true,
	"runtime/msan":     true,
	"runtime/asan":     true,
	"runtime/coverage": true,
	"testing/synctest": true,
}

func main() {
	out := flag.String("o", ".", "folder to write the tables to")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("gensym: ")
	std, err := stdPackages()
	if err != nil {
		log.Fatal(err)
	}
	files, err := extractAll(std, packages)
	if err != nil {
		log.Fatal(err)
	}
	var docPkgs []string
	for _, p := range packages {
		if strings.HasPrefix(p, documented) {
			docPkgs = append(docPkgs, p)
		}
	}
	files["docs.go"], err = docTable(docPkgs)
	if err != nil {
		log.Fatal(err)
	}
	if err := write(*out, files); err != nil {
		log.Fatal(err)
	}
}

// stdPackages lists the importable standard library of the running
// toolchain, so that a new Go release brings its new packages along.
func stdPackages() ([]string, error) {
	cmd := exec.Command("go", "list", "std")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list std: %w", err)
	}
	var std []string
	for _, p := range strings.Fields(string(b)) {
		internal := slices.Contains(strings.Split(p, "/"), "internal")
		if internal || strings.HasPrefix(p, "vendor/") || strings.HasPrefix(p, "cmd/") || stdSkip[p] {
			continue
		}
		std = append(std, p)
	}
	return std, nil
}

// fileName maps an import path to its table's file: std_ and pkg_ keep the
// two kinds apart and away from the hand-written files.
func fileName(path string, std bool) string {
	r := strings.NewReplacer("/", "_", ".", "_", "-", "_", "~", "_")
	if std {
		return "std_" + r.Replace(path) + ".go"
	}
	return "pkg_" + r.Replace(path) + ".go"
}

// extractAll runs the extractor on every package, in parallel since each
// call type-checks its package from source.
func extractAll(std, others []string) (map[string][]byte, error) {
	type job struct {
		path string
		std  bool
	}
	var jobs []job
	for _, p := range std {
		jobs = append(jobs, job{p, true})
	}
	for _, p := range others {
		jobs = append(jobs, job{p, false})
	}
	var (
		mu    sync.Mutex
		files = map[string][]byte{}
		errs  []error
		wg    sync.WaitGroup
		next  = make(chan job)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			ext := extract.Extractor{Dest: "symbols"}
			for j := range next {
				var buf bytes.Buffer
				_, err := ext.Extract(j.path, "", &buf)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", j.path, err))
				} else {
					files[fileName(j.path, j.std)] = buf.Bytes()
				}
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("extract: %v", errs)
	}
	return files, nil
}

// write replaces the generated files in dir, removing tables of packages
// no longer listed so that the folder is exactly what gensym makes.
func write(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	for _, f := range old {
		name := filepath.Base(f)
		generated := strings.HasPrefix(name, "std_") || strings.HasPrefix(name, "pkg_") || name == "docs.go"
		if _, keep := files[name]; generated && !keep {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
