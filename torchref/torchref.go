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
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// stage writes the embedded scripts into a fresh temporary directory, for
// the caller to remove, and returns it with the interpreter to run them.
func stage(ctx context.Context) (py, dir string, err error) {
	if py, err = Python(ctx); err != nil {
		return "", "", err
	}
	if dir, err = os.MkdirTemp("", "srmlab-torchref-"); err != nil {
		return "", "", fmt.Errorf("torchref: %w", err)
	}
	names, err := scripts.ReadDir(".")
	for _, e := range names {
		var b []byte
		if b, err = scripts.ReadFile(e.Name()); err != nil {
			break
		}
		if err = os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("torchref: %w", err)
	}
	return py, dir, nil
}

// Run runs one of the embedded scripts ("make_parity.py", "torch_step.py")
// with args, from a fresh temporary copy of all of them, and returns its
// standard output. The child inherits the environment, so an
// OPENBLAS_CORETYPE that srmlab's blas package chose reaches PyTorch's
// OpenBLAS as well.
func Run(ctx context.Context, script string, args ...string) ([]byte, error) {
	py, dir, err := stage(ctx)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, py, append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("torchref: %s %s: %v\n%s", py, script, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Peer is a running PyTorch speed peer (torch_step.py --serve) that times
// steps on request, so that a benchmark can alternate its own steps with
// PyTorch's and both meet the same load on a shared machine.
type Peer struct {
	device string
	dir    string
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
}

// StartPeer starts the peer on device ("cpu", or "cuda" where the
// interpreter's torch has CUDA). Close stops it.
func StartPeer(ctx context.Context, device string) (*Peer, error) {
	py, dir, err := stage(ctx)
	if err != nil {
		return nil, err
	}
	p := &Peer{device: device, dir: dir}
	p.cmd = exec.CommandContext(ctx, py, filepath.Join(dir, "torch_step.py"), "--serve")
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err == nil {
		p.in, err = p.cmd.StdinPipe()
	}
	if err == nil {
		err = p.cmd.Start()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("torchref: starting the PyTorch peer: %w", err)
	}
	p.out = bufio.NewScanner(out)
	return p, nil
}

// Times runs warmup untimed and then steps timed steps of the named model
// ("resnet20", "srm-resnet20", ...) with PyTorch on threads threads and
// returns each timed step's milliseconds. kind is "train" for a CIFAR
// training step (batch 128, 32x32, cross-entropy, SGD with momentum) or
// "eval" for a forward pass of the same batch in evaluation mode without
// autograd.
func (p *Peer) Times(kind, model string, threads, warmup, steps int) ([]float64, error) {
	req, _ := json.Marshal(map[string]any{
		"kind": kind, "model": model, "threads": threads, "warmup": warmup, "steps": steps, "device": p.device,
	})
	if _, err := p.in.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("torchref: PyTorch peer: %w (%s)", err, lastLine(p.stderr.Bytes()))
	}
	if !p.out.Scan() {
		return nil, fmt.Errorf("torchref: PyTorch peer stopped: %v %s", p.out.Err(), lastLine(p.stderr.Bytes()))
	}
	var resp struct {
		MS    []float64 `json:"ms"`
		Error string    `json:"error"`
	}
	if err := json.Unmarshal(p.out.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("torchref: PyTorch peer answered %q: %w", p.out.Text(), err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("torchref: PyTorch %s %s: %s", kind, model, resp.Error)
	}
	return resp.MS, nil
}

// Close stops the peer and removes its scripts.
func (p *Peer) Close() error {
	p.in.Close()
	err := p.cmd.Wait()
	os.RemoveAll(p.dir)
	return err
}

// Median returns the median of xs (the mean of the middle two for an even
// count), which one slow step on a shared machine does not move.
func Median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return math.NaN()
	}
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}

// PeakMemory runs steps training steps of the named model on the CPU in a
// fresh PyTorch process and returns the peak resident size during them
// minus the resident size before them, in MiB.
func PeakMemory(ctx context.Context, model string, threads, steps int) (float64, error) {
	out, err := Run(ctx, "torch_step.py", "--memory", model, "--threads", strconv.Itoa(threads), "--steps", strconv.Itoa(steps))
	if err != nil {
		return 0, err
	}
	var r struct{ MB float64 }
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		return 0, fmt.Errorf("torchref: torch_step.py --memory printed %q: %w", lastLine(out), err)
	}
	return r.MB, nil
}

// lastLine is the last non-empty line of a child's output, the line that
// carries Python's exception.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
