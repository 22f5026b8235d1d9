#!/usr/bin/env bash
# Installs what srmlab's tests and benchmarks use from Debian: OpenBLAS (the
# fast CPU BLAS, found at run time), oneDNN 2 (the CPU convolutions, found at
# run time), PyTorch 1.13 for CPU (the numerical
# oracle and speed peer), clang-16 (compiles the CUDA kernels to PTX with no
# GPU), g++ (builds the emulator that runs them on the CPU in the tests),
# Jupyter's headless tools, and NVIDIA's NVRTC (libnvrtc, from Debian's
# non-free component, which this script enables if it must): the compiler the
# CUDA backend uses on a GPU machine, which needs no GPU, so the tests build
# every kernel with it. srmlab itself builds and runs without any of them.
set -euo pipefail
pkgs=(libopenblas0-pthread libdnnl2 python3-torch python3-numpy clang-16 g++ jupyter-nbconvert python3-jupyter-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
have_nvrtc() { dpkg-query -W -f='${Package} ${Status}\n' 'libnvrtc[0-9]*' 2>/dev/null | grep -q "install ok installed"; }
[ ${#missing[@]} -eq 0 ] && have_nvrtc && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "scripts/deps.sh: missing ${missing[*]}$(have_nvrtc || echo " libnvrtc"); install them with apt-get as root (tests that need them skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! have_nvrtc; then
  nvrtc() { apt-cache pkgnames libnvrtc | grep -E '^libnvrtc[0-9.]+$' | sort -V | tail -1; }
  if [ -z "$(nvrtc)" ] && [ -r /etc/os-release ]; then
    . /etc/os-release
    echo "enabling Debian's non-free component for ${VERSION_CODENAME:?} (NVRTC)" >&2
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$VERSION_CODENAME" "$VERSION_CODENAME" > /etc/apt/sources.list.d/srmlab-nonfree.sources
    apt-get update -qq
  fi
  if [ -n "$(nvrtc)" ]; then
    echo "installing $(nvrtc)" >&2
    apt-get install -y -qq --no-install-recommends "$(nvrtc)" >/dev/null
  else
    echo "scripts/deps.sh: no NVRTC package in Debian's non-free component here; the NVRTC kernel build test skips" >&2
  fi
fi
