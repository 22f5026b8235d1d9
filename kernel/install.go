package kernel

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Name is the kernel's name in Jupyter: notebooks record it in their
// metadata, and "jupyter nbconvert --ExecutePreprocessor.kernel_name"
// selects it.
const Name = "srmlab"

// Spec is a kernelspec, the kernel.json that tells Jupyter how to start
// the kernel.
type Spec struct {
	// Argv starts the kernel; Jupyter replaces {connection_file}.
	Argv []string `json:"argv"`
	// DisplayName is what notebook front ends list.
	DisplayName string `json:"display_name"`
	// Language is the cells' language, for front ends' highlighting.
	Language string `json:"language"`
	// InterruptMode is "message" (an interrupt_request on the control
	// channel) or "signal" (SIGINT).
	InterruptMode string `json:"interrupt_mode"`
	// Env is added to the kernel's environment.
	Env map[string]string `json:"env,omitempty"`
	// Metadata is free-form, for front ends.
	Metadata map[string]any `json:"metadata"`
}

// NewSpec is the kernelspec of the srmlab binary at exe. Interrupts are
// messages on the control channel, which work where signals do not reach
// the kernel (a remote or containerised one).
func NewSpec(exe string) Spec {
	return Spec{
		Argv:          []string{exe, "kernel", "--connection-file", "{connection_file}"},
		DisplayName:   "Go (srmlab)",
		Language:      "go",
		InterruptMode: "message",
		Metadata:      map[string]any{},
	}
}

// Executable is the running srmlab binary's absolute path, the one a
// kernelspec should start. A binary of "go run" is refused: it is deleted
// when go run exits, and Jupyter could not start the kernel later.
func Executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", err
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "", errors.New("this srmlab binary is a temporary one from go run; install the kernel from a built binary (go build -o bin/srmlab ./cmd/srmlab)")
	}
	return exe, nil
}

// DataDir is Jupyter's data directory for a kernel install: under prefix
// when one is given (prefix/share/jupyter), the user's (JUPYTER_DATA_DIR,
// or the platform default) with user, else the system-wide one.
func DataDir(user bool, prefix string) (string, error) {
	switch {
	case prefix != "":
		return filepath.Abs(filepath.Join(prefix, "share", "jupyter"))
	case user:
		if d := os.Getenv("JUPYTER_DATA_DIR"); d != "" {
			return d, nil
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		if runtime.GOOS == "darwin" {
			return filepath.Join(home, "Library", "Jupyter"), nil
		}
		if x := os.Getenv("XDG_DATA_HOME"); x != "" {
			return filepath.Join(x, "jupyter"), nil
		}
		return filepath.Join(home, ".local", "share", "jupyter"), nil
	}
	return "/usr/local/share/jupyter", nil
}

// Install writes the spec as dataDir/kernels/<name>/kernel.json and
// returns that folder.
func (s Spec) Install(dataDir, name string) (string, error) {
	dir := filepath.Join(dataDir, "kernels", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "kernel.json"), append(b, '\n'), 0o644)
}
