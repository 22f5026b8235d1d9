package cuda

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Environment variables that name a library outright; when set, nothing
// else is tried, so that a wrong path fails loudly instead of silently
// picking another install.
const (
	envLibCUDA   = "SRMLAB_LIBCUDA"
	envLibNVRTC  = "SRMLAB_LIBNVRTC"
	envLibCUBLAS = "SRMLAB_LIBCUBLAS"
	envLibCUDNN  = "SRMLAB_LIBCUDNN"
)

// searchEnv is what library search reads from the machine, replaceable in
// tests.
type searchEnv struct {
	getenv func(string) string
	glob   func(string) ([]string, error)
}

var hostEnv = searchEnv{getenv: os.Getenv, glob: filepath.Glob}

// libcudaCandidates lists the driver library paths to try, in order. The
// bare soname comes first so that the dynamic loader's own configuration
// (ld.so.cache, LD_LIBRARY_PATH) wins; the fixed places cover containers
// that mount the driver without registering it (/usr/local/nvidia is where
// the NVIDIA container toolkit puts it) and WSL. The stub libcuda shipped
// with the toolkit is never listed: it loads but answers every call with
// CUDA_ERROR_STUB_LIBRARY.
func libcudaCandidates(env searchEnv) []string {
	if p := env.getenv(envLibCUDA); p != "" {
		return []string{p}
	}
	out := []string{"libcuda.so.1"}
	for _, dir := range []string{
		"/usr/local/nvidia/lib64",
		"/usr/local/nvidia/lib",
		"/usr/lib/x86_64-linux-gnu",
		"/usr/lib/aarch64-linux-gnu",
		"/usr/lib64",
		"/usr/lib",
		"/usr/lib/wsl/lib",
	} {
		out = append(out, versionSorted(env, filepath.Join(dir, "libcuda.so*"))...)
	}
	return dedupe(out)
}

// nvrtcCandidates lists NVRTC library paths to try, newest version first
// within each folder. NVRTC ships with the CUDA toolkit and, separately, in
// NVIDIA's Python wheels (nvidia/cu13/lib for CUDA 13, nvidia/cuda_nvrtc/lib
// for CUDA 12), which is the only copy on machines that have PyTorch but no
// toolkit.
func nvrtcCandidates(env searchEnv) []string {
	if p := env.getenv(envLibNVRTC); p != "" {
		return []string{p}
	}
	var out []string
	for _, dir := range toolkitDirs(env, "nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib", "nvidia/cu12/lib") {
		out = append(out, versionSorted(env, filepath.Join(dir, "libnvrtc.so*"))...)
	}
	// Last, whatever the dynamic loader finds by soname.
	out = append(out, "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so")
	return dedupe(out)
}

// cublasCandidates lists cuBLAS library paths to try, in the same places
// as NVRTC: the toolkit, then the wheels (nvidia/cublas/lib for CUDA 12),
// then the sonames.
func cublasCandidates(env searchEnv) []string {
	if p := env.getenv(envLibCUBLAS); p != "" {
		return []string{p}
	}
	var out []string
	for _, dir := range toolkitDirs(env, "nvidia/cu13/lib", "nvidia/cublas/lib", "nvidia/cu12/lib") {
		out = append(out, versionSorted(env, filepath.Join(dir, "libcublas.so*"))...)
	}
	out = append(out, "libcublas.so.13", "libcublas.so.12", "libcublas.so")
	return dedupe(out)
}

// cudnnCandidates lists cuDNN library paths to try. cuDNN comes as a
// system package (registered with the loader), inside a toolkit folder
// (the tar install), or as the nvidia-cudnn wheel. Paths come before the
// soname because the folder is needed to preload the sub-libraries (see
// cudnnSubLibraries).
func cudnnCandidates(env searchEnv) []string {
	if p := env.getenv(envLibCUDNN); p != "" {
		return []string{p}
	}
	var out []string
	for _, dir := range toolkitDirs(env, "nvidia/cudnn/lib") {
		out = append(out, versionSorted(env, filepath.Join(dir, "libcudnn.so*"))...)
	}
	out = append(out, "libcudnn.so.9", "libcudnn.so")
	return dedupe(out)
}

// toolkitDirs lists the folders that may hold a CUDA toolkit library, in
// the order they are tried: CUDA_PATH and its relatives, /usr/local/cuda
// and versioned installs, the system library folders, then the given
// subfolders of Python site-packages (NVIDIA's wheels).
func toolkitDirs(env searchEnv, wheelDirs ...string) []string {
	var dirs []string
	for _, v := range []string{"CUDA_PATH", "CUDA_HOME", "CUDA_ROOT"} {
		if root := env.getenv(v); root != "" {
			dirs = append(dirs, filepath.Join(root, "lib64"), filepath.Join(root, "lib"))
		}
	}
	dirs = append(dirs, "/usr/local/cuda/lib64")
	dirs = append(dirs, globDirs(env, "/usr/local/cuda-*/lib64")...)
	dirs = append(dirs, "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64")
	var sitePackages []string
	if venv := env.getenv("VIRTUAL_ENV"); venv != "" {
		sitePackages = append(sitePackages, filepath.Join(venv, "lib/python3*/site-packages"))
	}
	if home := env.getenv("HOME"); home != "" {
		sitePackages = append(sitePackages, filepath.Join(home, ".local/lib/python3*/site-packages"))
	}
	sitePackages = append(sitePackages,
		"/opt/torch/.venv/lib/python3*/site-packages",
		"/opt/*/.venv/lib/python3*/site-packages",
		"/usr/local/lib/python3*/dist-packages",
		"/usr/local/lib/python3*/site-packages",
		"/usr/lib/python3/dist-packages",
	)
	for _, sp := range sitePackages {
		for _, sub := range wheelDirs {
			dirs = append(dirs, globDirs(env, filepath.Join(sp, sub))...)
		}
	}
	return dedupe(dirs)
}

// nvrtcBuiltins names the libnvrtc-builtins beside an NVRTC library, or ""
// when there is none. NVRTC opens it by soname at its first compile; when
// the folder is not on the loader's path that fails, unless the library is
// already loaded, so it is preloaded from the same folder. Among several,
// the one whose major version matches NVRTC's wins.
func nvrtcBuiltins(env searchEnv, nvrtcPath string) string {
	if !strings.Contains(nvrtcPath, "/") {
		return ""
	}
	cands := versionSorted(env, filepath.Join(filepath.Dir(nvrtcPath), "libnvrtc-builtins.so*"))
	if len(cands) == 0 {
		return ""
	}
	if major := soMajor(nvrtcPath); major != "" {
		for _, c := range cands {
			if soMajor(c) == major {
				return c
			}
		}
	}
	return cands[0]
}

// besideLib names the library matching pattern (e.g. "libcublasLt.so*")
// in the folder of libPath, preferring the one whose major version matches
// libPath's, or "" when there is none or libPath is a bare soname. It finds
// the libraries a library loads by soname, which must be preloaded when
// their folder is not on the loader's path (see nvrtcBuiltins).
func besideLib(env searchEnv, libPath, pattern string) string {
	if !strings.Contains(libPath, "/") {
		return ""
	}
	cands := versionSorted(env, filepath.Join(filepath.Dir(libPath), pattern))
	if len(cands) == 0 {
		return ""
	}
	if major := soMajor(libPath); major != "" {
		for _, c := range cands {
			if soMajor(c) == major {
				return c
			}
		}
	}
	return cands[0]
}

// cudnnSubLibraries lists the libcudnn_*.so libraries beside a cuDNN 9
// shim, one file each, in dependency order (graph first, the engines
// last). libcudnn.so.9 holds little more than the API entry points and
// dlopens these by soname at cudnnCreate and on first use; where their
// folder is not on the loader's path (a wheel) that fails unless they are
// already loaded.
func cudnnSubLibraries(env searchEnv, cudnnPath string) []string {
	if !strings.Contains(cudnnPath, "/") {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range versionSorted(env, filepath.Join(filepath.Dir(cudnnPath), "libcudnn_*.so*")) {
		name, _, _ := strings.Cut(filepath.Base(c), ".so")
		if !seen[name] {
			seen[name] = true
			if lib := besideLib(env, cudnnPath, name+".so*"); lib != "" {
				out = append(out, lib)
			}
		}
	}
	rank := func(p string) int {
		for i, name := range []string{"graph", "ops", "cnn", "adv", "heuristic", "engines_precompiled", "engines_runtime_compiled"} {
			if strings.HasPrefix(filepath.Base(p), "libcudnn_"+name+".so") {
				return i
			}
		}
		return 100
	}
	sort.SliceStable(out, func(i, j int) bool {
		if ri, rj := rank(out[i]), rank(out[j]); ri != rj {
			return ri < rj
		}
		return out[i] < out[j]
	})
	return out
}

// soMajor returns "13" for ".../libx.so.13.0.88", "" for an unversioned name.
func soMajor(path string) string {
	_, v, ok := strings.Cut(filepath.Base(path), ".so.")
	if !ok {
		return ""
	}
	major, _, _ := strings.Cut(v, ".")
	return major
}

// versionSorted globs a pattern and orders the matches newest version
// first. A version that is a prefix of another sorts first, so an
// unversioned link or the soname (libnvrtc.so.13) comes before the file it
// points to (libnvrtc.so.13.0.88).
func versionSorted(env searchEnv, pattern string) []string {
	matches, _ := env.glob(pattern)
	sort.SliceStable(matches, func(i, j int) bool {
		vi, vj := soVersion(matches[i]), soVersion(matches[j])
		for k := 0; k < len(vi) && k < len(vj); k++ {
			if vi[k] != vj[k] {
				return vi[k] > vj[k]
			}
		}
		return len(vi) < len(vj)
	})
	return matches
}

// soVersion parses the numbers after ".so." ("libnvrtc.so.13.0.88" -> 13 0 88).
func soVersion(path string) []int {
	_, v, ok := strings.Cut(filepath.Base(path), ".so.")
	if !ok {
		return nil
	}
	var out []int
	for _, part := range strings.Split(v, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}

// globDirs expands a folder pattern, newest-looking (lexically last) first.
func globDirs(env searchEnv, pattern string) []string {
	m, _ := env.glob(pattern)
	sort.Sort(sort.Reverse(sort.StringSlice(m)))
	return m
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
