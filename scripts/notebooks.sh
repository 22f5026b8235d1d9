#!/usr/bin/env bash
# Runs every notebook in notebooks/ top to bottom, headless, with the srmlab
# kernel, and fails on the first cell error: builds srmlab, installs its
# kernelspec into a temporary prefix and executes each notebook with
# Debian's jupyter nbconvert (installed here when missing and run as root).
# Set NOTEBOOKS_OUT=DIR to keep the executed copies.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c 'import nbconvert, jupyter_client' 2>/dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "scripts/notebooks.sh: needs Debian's jupyter-nbconvert and python3-jupyter-client" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends jupyter-nbconvert python3-jupyter-client >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=${NOTEBOOKS_OUT:-$tmp/out}
mkdir -p "$out"
go build -o "$tmp/srmlab" ./cmd/srmlab
"$tmp/srmlab" kernel install --prefix "$tmp/prefix"
# Only the temporary kernelspec, runtime and config: nothing of the user's
# Jupyter set-up changes what runs.
export JUPYTER_PATH="$tmp/prefix/share/jupyter" JUPYTER_RUNTIME_DIR="$tmp/runtime" \
  JUPYTER_CONFIG_DIR="$tmp/config" JUPYTER_DATA_DIR="$tmp/data"
n=0
for nb in notebooks/*.ipynb; do
  echo "== $nb"
  start=$SECONDS
  if ! /usr/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=600 \
    --ExecutePreprocessor.kernel_name=srmlab --output-dir "$out" "$nb" >"$tmp/log" 2>&1; then
    cat "$tmp/log" >&2
    echo "scripts/notebooks.sh: $nb failed" >&2
    exit 1
  fi
  echo "   ok in $((SECONDS - start)) s"
  n=$((n + 1))
done
echo "notebooks: $n passed, 0 failed"
