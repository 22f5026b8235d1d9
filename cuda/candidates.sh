#!/usr/bin/env bash
# Times the alternatives to the default launches, each in a cuda-check run of
# its own (the fused SRM shapes and block tails against float64 and the copy
# bandwidth, each kernel's time with its registers, every operation, module
# and whole model against the CPU engine, and the plain and SRM ResNet-50
# training steps): for now SRM's and the tails' kernels launched the ordinary
# way (no-pdl), against check.sh's programmatic dependent launch, the default
# on sm_90 (Device.SetPDL). A new candidate gets a run line here until a GPU
# run's timings decide it. Run it on the GPU machine from the repository
# root after cuda/check.sh, with the same bin/srmlab (CGO_ENABLED=0 go build
# -o bin/srmlab ./cmd/srmlab), then compare the runs with `srmlab
# cuda-compare srmlab.json candidates/*.json`. Each run's output and JSON go
# to $OUT/candidates/NAME.txt and NAME.json ($OUT: a temporary folder if
# unset); RUN_TIMEOUT caps each run (s, default 150). Exit status 0 only
# when every run succeeded and every check passed.
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
run no-pdl -pdl=false
echo "candidates: outputs in $out"
exit $status
