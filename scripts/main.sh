#!/usr/bin/env bash
# The main job on bundled data: builds srmlab, shows its environment and the
# parameter/GMAC table of the paper's models, then trains an SRM-ResNet-20 on
# the bundled texture set (1,000 training images, 3 epochs) and evaluates it.
# Results land in runs/main (replaced on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/srmlab ./cmd/srmlab
bin/srmlab env
bin/srmlab params --models resnet50,se-resnet50,ge-resnet50,srm-resnet50,resnet20,srm-resnet20
data=textures:train=100:test=40
rm -rf runs/main
bin/srmlab train --model srm-resnet20 --data "$data" --epochs 3 --batch 64 --out runs/main
bin/srmlab eval --model srm-resnet20 --weights runs/main/weights.safetensors --data "$data"
