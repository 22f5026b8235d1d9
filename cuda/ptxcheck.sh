#!/usr/bin/env bash
# Compiles every cuda/kernels/*.cu to PTX for sm_90 with clang, without a
# GPU or a CUDA installation: cuda/testdata/cudashim.h stands in for the
# built-ins NVRTC provides. Catches syntax and type errors and checks that
# every kernel the Go code launches is emitted as an entry point. Needs a
# clang with sm_90 support (16 or newer; Debian 12: apt-get install
# clang-16). CLANG selects the compiler; the PTX goes to $PTX_OUT if set.
# Exit status 2: no suitable clang. With --list it prints, one a line, the
# kernels the Go code can launch, and compiles nothing.
set -euo pipefail
cd "$(dirname "$0")"
status=0
# Every kernel the Go code can launch must be an entry point of the PTX: the
# names it spells out, and the variants it builds from prefixes (srm.go):
# the layouts of srm.cu's SRM_LAYOUTS list (TestGeometryKernels checks that
# srm.go picks no other) and the loop kernels.
want=$(grep -ohE '"(srm|copy|nn|pool|conv)_[a-z0-9_]*[a-z0-9]"' $(ls ./*.go | grep -v '_test\.go$') | tr -d '"')
layouts=$(sed -n '/^#define SRM_LAYOUTS/,/^$/p' kernels/srm.cu | grep -oE 'X\([a-z0-9]+,' | sed 's/X(//; s/,//')
if [ -z "$layouts" ]; then echo "ptxcheck: no SRM_LAYOUTS list in kernels/srm.cu" >&2; status=1; fi
for v in $layouts loop; do
  for k in eval stats scale bwd_dot bwd_dx tail_stats tail_apply tail_bwd_sums tail_dx; do want+=" srm_${k}_$v"; done
done
if [ "${1:-}" = --list ]; then
  # The list alone, for the NVRTC build test (nvrtc_test.go); needs no clang.
  echo $want | tr " " "\n" | sort -u
  exit $status
fi
clang=${CLANG:-}
if [ -z "$clang" ]; then
  for c in clang-19 clang-18 clang-17 clang-16 clang; do
    if command -v "$c" >/dev/null; then clang=$c; break; fi
  done
fi
if [ -z "$clang" ]; then echo "ptxcheck: no clang found (Debian 12: apt-get install clang-16)" >&2; exit 2; fi
major=$({ "$clang" --version || true; } | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
if [ "${major:-0}" -lt 16 ]; then
  echo "ptxcheck: $clang is version ${major:-unknown}; sm_90 needs clang 16 or newer (Debian 12: apt-get install clang-16)" >&2
  exit 2
fi
if [ -n "${PTX_OUT:-}" ]; then
  out=$PTX_OUT
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
arch=${PTX_ARCH:-sm_90}
for src in kernels/*.cu; do
  ptx="$out/$(basename "$src" .cu).ptx"
  # +ptx78: clang cannot read the PTX version from a CUDA installation it
  # does not have; 7.8 is the first with sm_90.
  if ! "$clang" -x cuda --cuda-device-only --cuda-gpu-arch="$arch" -nocudainc -nocudalib \
      -Xclang -target-feature -Xclang +ptx78 -std=c++17 -O3 -Wall -Werror -Wno-unknown-cuda-version \
      -include testdata/cudashim.h -S -o "$ptx" "$src"; then
    echo "ptxcheck: $src failed to compile" >&2
    status=1
    continue
  fi
  echo "ptxcheck: $src -> $ptx ($(grep -c '^\.visible \.entry' "$ptx") kernels, $("$clang" --version | head -1))"
done
for name in $want; do
  if ! grep -q "^\.visible \.entry $name(" "$out"/*.ptx; then echo "ptxcheck: kernel $name not in the PTX" >&2; status=1; fi
done
# Every kernel of srm.cu must open with pdl_enter's wait: the host
# launches them under programmatic dependent launch (Device.SetPDL), which is
# safe only for kernels that wait for the one before them.
if [ -f "$out/srm.ptx" ]; then
  nowait=$(awk '/^\.visible \.entry/ { if (name != "" && !seen) print name; name = $3; sub(/\(.*/, "", name); seen = 0 }
    /griddepcontrol\.wait/ { seen = 1 } END { if (name != "" && !seen) print name }' "$out/srm.ptx")
  if [ -n "$nowait" ]; then echo "ptxcheck: kernels without griddepcontrol.wait in srm.ptx:" $nowait >&2; status=1; fi
fi
# A register array indexed at run time spills to local memory; the plane
# kernels are written so that it never is.
if grep -q '\.local' "$out"/*.ptx; then echo "ptxcheck: local memory in the PTX:" >&2; grep -l '\.local' "$out"/*.ptx >&2; status=1; fi
exit $status
