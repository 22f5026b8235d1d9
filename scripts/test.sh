#!/usr/bin/env bash
# The test command: installs the Debian packages the tests use (when run as
# root), then runs every Go test. PyTorch parity tests skip, saying so, where
# Debian's python3-torch is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
go vet ./...
go test -timeout 40m ./...
