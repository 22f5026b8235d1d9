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

func TestCUBLASSearch(t *testing.T) {
	venv := "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/"
	env := fakeRoot(t, map[string]string{"CUDA_PATH": "/opt/cuda"},
		"/usr/local/cuda/lib64/libcublas.so.13.1.0.3", "/usr/local/cuda/lib64/libcublas.so.13",
		"/usr/local/cuda/lib64/libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.12",
		venv+"libcublas.so.13", venv+"libcublasLt.so.13")
	want := []string{"/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13.1.0.3",
		venv + "libcublas.so.13", "libcublas.so.13", "libcublas.so.12", "libcublas.so"}
	if got := cublasCandidates(env); !slices.Equal(got, want) {
		t.Errorf("candidates\n%q\nwant\n%q", got, want)
	}
	for lib, lt := range map[string]string{
		"/usr/local/cuda/lib64/libcublas.so.13": "/usr/local/cuda/lib64/libcublasLt.so.13",
		venv + "libcublas.so.13":                venv + "libcublasLt.so.13",
		"libcublas.so.13":                       "",
	} {
		if got := besideLib(env, lib, "libcublasLt.so*"); got != lt {
			t.Errorf("cuBLASLt for %s: %q, want %q", lib, got, lt)
		}
	}
	env.getenv = func(k string) string { return map[string]string{envLibCUBLAS: "/x/libcublas.so"}[k] }
	if got := cublasCandidates(env); !slices.Equal(got, []string{"/x/libcublas.so"}) {
		t.Errorf("with %s: %q", envLibCUBLAS, got)
	}
}

func TestCUDNNSearch(t *testing.T) {
	sys := "/usr/lib/x86_64-linux-gnu/"
	venv := "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib/"
	var files []string
	for _, sub := range []string{"engines_runtime_compiled", "adv", "cnn", "graph", "heuristic", "ops", "engines_precompiled"} {
		files = append(files, sys+"libcudnn_"+sub+".so.9", sys+"libcudnn_"+sub+".so.9.19.0", venv+"libcudnn_"+sub+".so.9")
	}
	env := fakeRoot(t, nil, append(files, sys+"libcudnn.so.9", sys+"libcudnn.so.9.19.0", sys+"libcudnn_ops.so.8",
		sys+"libcudnn_future.so.9", venv+"libcudnn.so.9")...)
	want := []string{sys + "libcudnn.so.9", sys + "libcudnn.so.9.19.0", venv + "libcudnn.so.9", "libcudnn.so.9", "libcudnn.so"}
	if got := cudnnCandidates(env); !slices.Equal(got, want) {
		t.Errorf("candidates\n%q\nwant\n%q", got, want)
	}
	// The sonames of cuDNN 9, dependencies first, unknown ones last.
	var subs []string
	for _, sub := range []string{"graph", "ops", "cnn", "adv", "heuristic", "engines_precompiled", "engines_runtime_compiled", "future"} {
		subs = append(subs, sys+"libcudnn_"+sub+".so.9")
	}
	if got := cudnnSubLibraries(env, sys+"libcudnn.so.9"); !slices.Equal(got, subs) {
		t.Errorf("sub-libraries\n%q\nwant\n%q", got, subs)
	}
	if got := cudnnSubLibraries(env, venv+"libcudnn.so.9"); len(got) != 7 || got[0] != venv+"libcudnn_graph.so.9" {
		t.Errorf("wheel sub-libraries %q", got)
	}
	if got := cudnnSubLibraries(env, "libcudnn.so.9"); got != nil {
		t.Errorf("sub-libraries of a bare soname: %q", got)
	}
	env.getenv = func(k string) string { return map[string]string{envLibCUDNN: "/x/libcudnn.so.9"}[k] }
	if got := cudnnCandidates(env); !slices.Equal(got, []string{"/x/libcudnn.so.9"}) {
		t.Errorf("with %s: %q", envLibCUDNN, got)
	}
}

// TestLoadMissingLibraries checks that the loaders fail with the variable
// to set when the library named there does not exist.
func TestLoadMissingLibraries(t *testing.T) {
	dir := t.TempDir()
	for name, load := range map[string]func(searchEnv) error{
		envLibCUBLAS: func(e searchEnv) error { _, err := loadCUBLAS(e); return err },
		envLibCUDNN:  func(e searchEnv) error { _, err := loadCUDNN(e); return err },
	} {
		env := searchEnv{getenv: func(k string) string { return map[string]string{name: dir + "/missing.so"}[k] }, glob: filepath.Glob}
		if err := load(env); err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "missing.so") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
