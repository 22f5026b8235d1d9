#!/usr/bin/env bash
# Installs what srmlab's tests and benchmarks use from Debian: OpenBLAS (the
# fast CPU BLAS, found at run time), oneDNN 2 (the CPU convolutions, found at
# run time), PyTorch 1.13 for CPU (the numerical
# oracle and speed peer), clang-16 (compiles the CUDA kernels to PTX with no
# GPU), g++ (builds the emulator that runs them on the CPU in the tests) and
# Jupyter's headless tools. srmlab itself builds and runs without any of them.
set -euo pipefail
pkgs=(libopenblas0-pthread libdnnl2 python3-torch python3-numpy clang-16 g++ jupyter-nbconvert python3-jupyter-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "scripts/deps.sh: missing ${missing[*]}; install them with apt-get as root (tests that need them skip)" >&2
  exit 0
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
