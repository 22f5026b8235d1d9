package cuda

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeRoot builds a file tree under a temporary folder and returns a
// searchEnv that sees it as the root of the file system.
func fakeRoot(t *testing.T, vars map[string]string, files ...string) searchEnv {
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return searchEnv{
		getenv: func(k string) string { return vars[k] },
		glob: func(pattern string) ([]string, error) {
			m, err := filepath.Glob(filepath.Join(root, pattern))
			for i := range m {
				m[i] = strings.TrimPrefix(m[i], root)
			}
			return m, err
		},
	}
}

func TestLibcudaSearch(t *testing.T) {
	env := fakeRoot(t, nil,
		"/usr/local/nvidia/lib64/libcuda.so.580.159.04", "/usr/local/nvidia/lib64/libcuda.so.1",
		"/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/local/cuda/lib64/stubs/libcuda.so")
	// The stub is never listed; the newest version comes first in a folder.
	want := []string{"libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.580.159.04", "/usr/local/nvidia/lib64/libcuda.so.1",
		"/usr/lib/x86_64-linux-gnu/libcuda.so.1"}
	if got := libcudaCandidates(env); !slices.Equal(got, want) {
		t.Errorf("candidates\n%q\nwant\n%q", got, want)
	}
	env.getenv = func(k string) string { return map[string]string{envLibCUDA: "/mine/libcuda.so"}[k] }
	if got := libcudaCandidates(env); !slices.Equal(got, []string{"/mine/libcuda.so"}) {
		t.Errorf("with %s: %q", envLibCUDA, got)
	}
}

func TestNVRTCSearch(t *testing.T) {
	venv := "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/"
	env := fakeRoot(t, map[string]string{"CUDA_PATH": "/opt/cuda"},
		"/opt/cuda/lib64/libnvrtc.so.12",
		"/usr/local/cuda/lib64/libnvrtc.so.13.0.88", "/usr/local/cuda/lib64/libnvrtc.so.13",
		"/usr/local/cuda/lib64/libnvrtc.so.12.8.93",
		"/usr/local/cuda/lib64/libnvrtc-builtins.so.12.8", "/usr/local/cuda/lib64/libnvrtc-builtins.so.13.0",
		venv+"libnvrtc.so.13", venv+"libnvrtc-builtins.so.13.0")
	got := nvrtcCandidates(env)
	want := []string{"/opt/cuda/lib64/libnvrtc.so.12",
		"/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.13.0.88", "/usr/local/cuda/lib64/libnvrtc.so.12.8.93",
		venv + "libnvrtc.so.13", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}
	if !slices.Equal(got, want) {
		t.Errorf("candidates\n%q\nwant\n%q", got, want)
	}
	for lib, builtins := range map[string]string{
		"/usr/local/cuda/lib64/libnvrtc.so.13":      "/usr/local/cuda/lib64/libnvrtc-builtins.so.13.0",
		"/usr/local/cuda/lib64/libnvrtc.so.12.8.93": "/usr/local/cuda/lib64/libnvrtc-builtins.so.12.8",
		venv + "libnvrtc.so.13":                     venv + "libnvrtc-builtins.so.13.0",
		"/opt/cuda/lib64/libnvrtc.so.12":            "",
		"libnvrtc.so.13":                            "",
	} {
		if got := nvrtcBuiltins(env, lib); got != builtins {
			t.Errorf("builtins for %s: %q, want %q", lib, got, builtins)
		}
	}
	env.getenv = func(k string) string { return map[string]string{envLibNVRTC: "/x/libnvrtc.so"}[k] }
	if got := nvrtcCandidates(env); !slices.Equal(got, []string{"/x/libnvrtc.so"}) {
		t.Errorf("with %s: %q", envLibNVRTC, got)
	}
}
