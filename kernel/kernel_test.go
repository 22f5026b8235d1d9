package kernel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// childEnv makes the test binary a kernel: Jupyter starts it from the
// test's kernelspec, so the protocol tests need no separate build.
const childEnv = "SRMLAB_KERNEL_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := Run(context.Background(), os.Args[len(os.Args)-1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Debian's Python, which has jupyter_client; the python3 first on PATH
// may be another.
const python = "/usr/bin/python3"

// TestJupyterProtocol runs testdata/client.py, which drives the kernel
// through jupyter_client (execute, stream order, display and updates,
// complete, inspect, is_complete, interrupts by message and by SIGINT, a
// panicking cell, a forged message, restart and shutdown), and reports
// each of its checks as a subtest.
func TestJupyterProtocol(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Jupyter kernels; skipped in -short mode")
	}
	if err := exec.Command(python, "-c", "import jupyter_client").Run(); err != nil {
		t.Skipf("skipping: %s cannot import jupyter_client (apt-get install python3-jupyter-client): %v", python, err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := NewSpec(exe)
	spec.Argv = []string{exe, "{connection_file}"}
	spec.Env = map[string]string{childEnv: "1"}
	if _, err := spec.Install(dir, "srmlab-test"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "testdata/client.py", "srmlab-test", dir)
	cmd.Env = append(os.Environ(), "JUPYTER_PATH="+dir, "JUPYTER_RUNTIME_DIR="+filepath.Join(dir, "runtime"),
		"JUPYTER_PLATFORM_DIRS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	sc := bufio.NewScanner(bytes.NewReader(out))
	checks := 0
	for sc.Scan() {
		var r struct {
			Check  string
			OK     bool
			Detail string
		}
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			t.Logf("client: %s", sc.Text())
			continue
		}
		checks++
		t.Run(r.Check, func(t *testing.T) {
			if !r.OK {
				t.Errorf("failed: %s", r.Detail)
			}
			t.Log(r.Detail)
		})
	}
	if err != nil || checks < 17 {
		log, _ := os.ReadFile(filepath.Join(dir, "kernel.log"))
		t.Fatalf("client ran %d checks, err %v\nstderr:\n%s\nkernel log:\n%s", checks, err, stderr.String(), log)
	}
}
