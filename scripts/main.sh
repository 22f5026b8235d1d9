#!/usr/bin/env bash
# The main job on bundled data: builds srmlab, shows its environment, prints
# the parameter/GMAC table of the paper's models and runs a demo forward.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/srmlab ./cmd/srmlab
bin/srmlab env
bin/srmlab params
bin/srmlab demo
