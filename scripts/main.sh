#!/usr/bin/env bash
# The main job on bundled data: builds srmlab, shows its environment and the
# parameter/GMAC table of the paper's models, then runs the paper's analyses
# at the quick size (none/SE/GE/SRM comparison, pooling ablation, pruning
# curves, per-domain and leave-one-domain-out accuracy, gate statistics) on
# the bundled data and writes the reproducibility report to runs/report.
# About 5-7 minutes on 2 cores; a second run resumes finished trainings (about 70 s).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/srmlab ./cmd/srmlab
bin/srmlab env
bin/srmlab params --models resnet50,se-resnet50,ge-resnet50,srm-resnet50,resnet20,srm-resnet20
bin/srmlab reproduce --quick --out runs
