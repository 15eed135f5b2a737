#!/usr/bin/env bash
# Set up alignlab in ./.venv on a fresh machine: PyTorch first (a CPU build where there is no CUDA),
# then the package. Usage: bash scripts/setup.sh [extras], e.g. `bash scripts/setup.sh dev,app`.
# Each step says what it does and how long it took; pip lists what it fetches, with progress bars.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
started=$SECONDS
step() { echo "[setup] $*"; step_started=$SECONDS; }
done_step() { echo "[setup]   done in $((SECONDS - step_started)) s"; }

step "creating .venv"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
done_step
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # An unpinned torch would pull the multi-GB CUDA build; 2.13.0 is the build this project is tested on.
  step "installing PyTorch 2.13.0 (the largest download: a minute or more)"
  .venv/bin/python -m pip install --progress-bar on "torch==2.13.0"
  done_step
fi
step "installing alignlab and its dependencies (extras: ${extras:-none}; a minute or two)"
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --progress-bar on -e ".[${extras}]"
else
  .venv/bin/python -m pip install --progress-bar on -e .
fi
done_step
echo "alignlab installed in .venv (extras: ${extras:-none}) in $((SECONDS - started)) s"
