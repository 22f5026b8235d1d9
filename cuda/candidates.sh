#!/usr/bin/env bash
# Times the alternatives to the default launches, each in a cuda-check run of
# its own (the fused SRM shapes and block tails against float64 and the copy
# bandwidth, each kernel's time with its registers, every operation, module
# and whole model against the CPU engine, and the plain and SRM ResNet-50
# training steps): for now SRM's and the tails' kernels under programmatic
# dependent launch (pdl; Device.SetPDL, off by default: on the H200 it sped
# the stand-alone small-map kernels up and slowed whole ResNet-50 steps by a
# few per cent). It then times CIFAR ResNet-20 training steps (srmlab bench,
# 32x32 maps, where PDL should help most) with and without it
# (SRMLAB_PDL). A new candidate gets a run line here until a GPU run's
# timings decide it. Run it on the GPU machine from the repository root
# after cuda/check.sh, with the same bin/srmlab (CGO_ENABLED=0 go build -o
# bin/srmlab ./cmd/srmlab), then compare the runs with `srmlab cuda-compare
# srmlab.json candidates/*.json`. Each run's output and JSON go to
# $OUT/candidates/NAME.txt and NAME.json, the GPU's clocks meanwhile to
# NAME-gpu-log.csv ($OUT: a temporary folder if unset); RUN_TIMEOUT caps
# each run (s, default 150). Exit status 0 only when every run succeeded
# and every check passed.
set -u
cd "$(dirname "$0")/.."
. cuda/gpulog.sh
out=${OUT:-$(mktemp -d)}/candidates
mkdir -p "$out"
status=0
run() {
  local name=$1 start rc
  shift
  start=$(date +%s)
  gpulog_start "$out/$name-gpu-log.csv"
  timeout "${RUN_TIMEOUT:-150}" bin/srmlab cuda-check -check-large=false -variants=false -resnet50 plain,srm \
    -json "$out/$name.json" "$@" > "$out/$name.txt" 2>&1
  rc=$?
  gpulog_stop
  echo "candidates: $name (cuda-check $*): exit $rc in $(($(date +%s) - start)) s"
  [ $rc -eq 0 ] || status=1
}
run pdl -pdl
# bench NAME [ENV=VALUE...]: CIFAR ResNet-20 steps (plain and SRM, batch 128)
# under the given environment, into $out/bench-NAME.txt.
bench() {
  local name=$1 start rc
  shift
  start=$(date +%s)
  env "$@" timeout "${RUN_TIMEOUT:-150}" bin/srmlab bench --device cuda --models resnet20,srm-resnet20 --steps 30 \
    --warmup 5 > "$out/bench-$name.txt" 2>&1
  rc=$?
  echo "candidates: bench $name ($*): exit $rc in $(($(date +%s) - start)) s"
  [ $rc -eq 0 ] || status=1
}
py=${PYTHON:-/opt/torch/.venv/bin/python} # PyTorch's steps beside srmlab's, as in check.sh
[ -x "$py" ] || py=python3
bench ordinary SRMLAB_PDL=0 SRMLAB_PYTHON="$py"
bench pdl SRMLAB_PDL=1 SRMLAB_PYTHON="$py"
echo "candidates: outputs in $out"
exit $status
