#!/usr/bin/env bash
# The GPU check of srmlab's CUDA backend, for a machine with an NVIDIA GPU
# and PyTorch but no Go toolchain. Build the binary elsewhere, from the
# repository root:
#     CGO_ENABLED=0 go build -o bin/srmlab ./cmd/srmlab
# then run, from the repository root on the GPU machine:
#     cuda/check.sh
# It runs `bin/srmlab cuda-check` (the fused SRM kernels and the fused
# residual-block tails, ReLU(SRM(BN(x)) + short) and ReLU(BN(x) + short),
# against float64, and their timings against the copy kernel's bandwidth;
# every operation's GPU path, each module and whole models' training steps
# against the CPU engine; timings of the fused SRM eval forward, training
# forward and training forward+backward against a copy kernel's bandwidth,
# and of ResNet-50 training steps), then the commands a user runs with
# --device cuda (train one epoch on the bundled textures, eval on the GPU
# and on the CPU, bench of CIFAR ResNets against PyTorch on the GPU), then
# cuda/bench_torch.py (the official PyTorch
# SRM module on the same shapes, eager and torch.compile; ResNet-50
# training steps, plain, SRM, SE and GE-θ, in PyTorch eager) and the speed
# ratios, with the ResNet-50 targets: an SRM-ResNet-50 step no slower than
# PyTorch eager's, SRM adding at most 3 % to a step (reported, not part of
# the exit status). The GPU's clocks and power are sampled while cuda-check
# runs (gpu-log.csv; cuda/gpulog.sh), to set beside its ResNet-50 steps in
# the order they ran. Outputs (text and JSON) go to $OUT, or a temporary
# folder. Each part has its own time limit, so the whole run ends within 5
# minutes; a part that fails does not stop the next. Exit status 0 only
# when every part succeeded and every check passed.
#
# Knobs: PYTHON (default /opt/torch/.venv/bin/python, else python3),
# CHECK_TIMEOUT (s, default 120), USE_TIMEOUT (s, default 60 for the
# commands), TORCH_TIMEOUT (s, default 100: about 10 of start, 10 of SRM
# ops, 45 of ResNet-50 steps, the compile budget and the last compile's
# overrun), COMPILE_BUDGET (s of torch.compile to start, default 25),
# CHECK_ARGS (more flags for cuda-check, e.g. -check-large=false),
# MODEL_SEEDS (more seeds, e.g. "2 3", at which to repeat the operation,
# module and whole-model comparisons, about 30 s each, SEED_TIMEOUT s at
# most, default 90; the full output goes to $OUT/seed-N.txt),
# DETERMINISTIC_SEEDS (seeds at which to repeat them with cuDNN's
# deterministic algorithms only, cuda-check -deterministic, into
# $OUT/seed-N-deterministic.txt).
set -u
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
. cuda/gpulog.sh
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
status=0
start=$(date +%s)
section() { printf '\n==== %s (%ds) ====\n' "$*" "$(($(date +%s) - start))"; }

section "machine"
date -u '+%Y-%m-%d %H:%M:%S UTC'
uname -sr
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
  --format=csv 2>&1 || echo "nvidia-smi failed"

section "srmlab cuda-check"
if [ -x bin/srmlab ]; then
  gpulog_start "$out/gpu-log.csv"
  timeout --kill-after=5 "${CHECK_TIMEOUT:-120}" bin/srmlab cuda-check -json "$out/srmlab.json" -cpuprofile "$out/cuda-check.pprof" ${CHECK_ARGS:-} 2>&1 | tee "$out/cuda-check.txt"
  rc=${PIPESTATUS[0]}
  gpulog_stop
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 124 ] && echo "cuda-check timed out"
    echo "cuda-check exited with status $rc"
    status=1
  fi
else
  echo "bin/srmlab is missing: build it with CGO_ENABLED=0 go build -o bin/srmlab ./cmd/srmlab"
  status=1
fi

# seed_check SEED NAME [FLAGS]: the comparisons alone at SEED into
# $out/NAME.txt and .json.
seed_check() {
  local seed=$1 name=$2
  shift 2
  section "srmlab cuda-check at seed $seed $* (operations, modules, whole models)"
  timeout --kill-after=5 "${SEED_TIMEOUT:-90}" bin/srmlab cuda-check -seed "$seed" -resnet50 "" -check-large=false \
    -variants=false -shapes 2x8x7x7 -reps 1 -warmup 0 -json "$out/$name.json" "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  sed -n '/== training steps of whole models/,$p' "$out/$name.txt"
  if [ "$rc" -ne 0 ]; then
    echo "cuda-check at seed $seed $* exited with status $rc"
    status=1
  fi
}
for seed in ${MODEL_SEEDS:-}; do seed_check "$seed" "seed-$seed"; done
for seed in ${DETERMINISTIC_SEEDS:-}; do seed_check "$seed" "seed-$seed-deterministic" -deterministic; done

py=${PYTHON:-/opt/torch/.venv/bin/python}
[ -x "$py" ] || py=python3

section "srmlab --device cuda"
if [ -x bin/srmlab ]; then
  run="$out/textures-run"
  rm -rf "$run"
  SRMLAB_PYTHON=$py RUN=$run timeout --kill-after=5 "${USE_TIMEOUT:-60}" bash -euc '
    bin/srmlab train --device cuda --model srm-resnet20 --data textures --epochs 1 --batch 128 --out "$RUN"
    echo "-- the trained weights scored on the GPU, then on the CPU"
    bin/srmlab eval --device cuda --model srm-resnet20 --weights "$RUN/weights.safetensors" --data textures
    bin/srmlab eval --model srm-resnet20 --weights "$RUN/weights.safetensors" --data textures
    echo "-- CIFAR training steps on the GPU, PyTorch eager beside them"
    bin/srmlab bench --device cuda --models resnet20,srm-resnet20,se-resnet20,ge-resnet20 --steps 20 --warmup 5
  ' 2>&1 | tee "$out/device-cuda.txt"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 124 ] && echo "the --device cuda commands timed out"
    echo "the --device cuda commands exited with status $rc"
    status=1
  fi
fi

section "PyTorch"
timeout --kill-after=5 "${TORCH_TIMEOUT:-100}" "$py" cuda/bench_torch.py --srmlab-json "$out/srmlab.json" \
  --json "$out/torch.json" --compile-budget "${COMPILE_BUDGET:-25}" 2>&1 | tee "$out/bench-torch.txt"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && echo "bench_torch.py timed out"
  echo "bench_torch.py exited with status $rc"
  status=1
fi

section "done"
echo "outputs in $out: $(ls "$out" | tr '\n' ' ')"
exit $status
