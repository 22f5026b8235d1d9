// Package torchref is srmlab's PyTorch reference: PyTorch twins of the srm
// package's models (models.py, after the official SRM code), the script
// that writes the parity test's expected outputs and gradients
// (make_parity.py) and the PyTorch speed peer of the training-step
// benchmark (torch_step.py).
//
// The scripts are embedded, so the srmlab binary runs them from any
// directory. They need PyTorch, which srmlab gets from Debian's
// python3-torch (scripts/deps.sh); srmlab itself never does.
package torchref

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

//go:embed models.py make_parity.py torch_step.py
var scripts embed.FS

// DefaultPython is Debian's interpreter, the one python3-torch installs
// into; the python3 first on PATH may be another one without torch.
const DefaultPython = "/usr/bin/python3"

// Python returns the interpreter that runs the scripts: $SRMLAB_PYTHON if
// set, else DefaultPython. The error says why it cannot import torch, for
// tests to skip with and the bench command to print.
func Python(ctx context.Context) (string, error) {
	py := os.Getenv("SRMLAB_PYTHON")
	if py == "" {
		py = DefaultPython
	}
	out, err := exec.CommandContext(ctx, py, "-c", "import torch, numpy").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("torchref: %s cannot import torch and numpy (install python3-torch, or set SRMLAB_PYTHON): %v: %s", py, err, lastLine(out))
	}
	return py, nil
}

// Run runs one of the embedded scripts ("make_parity.py", "torch_step.py")
// with args, from a fresh temporary copy of all of them, and returns its
// standard output. The child inherits the environment, so an
// OPENBLAS_CORETYPE that srmlab's blas package chose reaches PyTorch's
// OpenBLAS as well.
func Run(ctx context.Context, script string, args ...string) ([]byte, error) {
	py, err := Python(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "srmlab-torchref-")
	if err != nil {
		return nil, fmt.Errorf("torchref: %w", err)
	}
	defer os.RemoveAll(dir)
	names, err := scripts.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("torchref: %w", err)
	}
	for _, e := range names {
		b, err := scripts.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("torchref: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return nil, fmt.Errorf("torchref: %w", err)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, py, append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("torchref: %s %s: %v\n%s", py, script, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// StepTimes runs torch_step.py: the median milliseconds of one CIFAR
// training step (batch 128, 32x32, cross-entropy, SGD with momentum) of
// each named model ("resnet20", "srm-resnet20", ...), after warmup
// untimed steps, over steps timed ones, with PyTorch on threads threads,
// on device ("cpu", or "cuda" where the interpreter's torch has CUDA).
func StepTimes(ctx context.Context, names []string, device string, threads, warmup, steps int) (map[string]float64, error) {
	args := []string{
		"--device", device,
		"--threads", strconv.Itoa(threads),
		"--warmup", strconv.Itoa(warmup),
		"--steps", strconv.Itoa(steps),
	}
	out, err := Run(ctx, "torch_step.py", append(args, names...)...)
	if err != nil {
		return nil, err
	}
	ms := map[string]float64{}
	if err := json.Unmarshal(bytes.TrimSpace(out), &ms); err != nil {
		return nil, fmt.Errorf("torchref: torch_step.py printed %q: %w", lastLine(out), err)
	}
	return ms, nil
}

// lastLine is the last non-empty line of a child's output, the line that
// carries Python's exception.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
