#!/usr/bin/env bash
# The command a GPU call runs (device tool, carry [".whl"]), from the repository root:
#
#   bash bench/gpu/run.sh STAGE [STAGE...] [--only RUN,RUN] [--extra "ARGS"]   # stages: tests anchor sweep ceiling
#   bash bench/gpu/run.sh --dry-run STAGE...      # print each run's command (also ALIGNLAB_GPU_KIT_DRY=1)
#   bash bench/gpu/run.sh --check-args STAGE...   # validate every bench command's arguments (CPU, seconds)
#   bash bench/gpu/run.sh --cpu-smoke STAGE...    # run the bench commands on CPU with the micro model
#
# A real run: installs .whl/*.whl into /tmp/site (no network there), puts /tmp/site and src/ on PYTHONPATH
# (no `pip install -e .`: that needs setuptools from an index), places the HH sample where bench/dpo_sides.py
# looks for it (../shared does not travel), runs bench/gpu/preflight.py (versions, CUDA, imports; stops on a
# failure), then bench/gpu/stages.py. Results: $OUT/<stage>.json for each stage and $OUT/log.
# The modes that run nothing on a GPU use the current python environment (PYTHON, default python3).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO" || exit 1
PY="${PYTHON:-python3}"
DATA_NAME="hh-rlhf-harmless-base-sample.jsonl.gz"

mode=run
case "${1:-}" in
  --dry-run) mode=dry-run; shift ;;
  --check-args) mode=check-args; shift ;;
  --cpu-smoke) mode=cpu-smoke; shift ;;
esac
[ "${ALIGNLAB_GPU_KIT_DRY:-0}" = 1 ] && mode=dry-run
if [ $# -eq 0 ]; then
  sed -n '2,7p' "$0"
  exit 2
fi

if [ "$mode" != run ]; then
  export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
  exec "$PY" bench/gpu/stages.py "--$mode" "$@"
fi

export ALIGNLAB_GPU_KIT_T0="${ALIGNLAB_GPU_KIT_T0:-$(date +%s)}"
OUT="${OUT:-/tmp/alignlab-gpu-out}"
WORK="${ALIGNLAB_GPU_KIT_WORK:-/tmp/alignlab-gpu-work}"
mkdir -p "$OUT" "$WORK"

main() {
  echo "run.sh $* ($(date -u +%FT%TZ), repo $REPO)"
  if [ "${ALIGNLAB_GPU_KIT_NO_WHEELS:-0}" = 1 ]; then
    export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
  else
    if ! ls .whl/*.whl >/dev/null 2>&1; then
      echo "run.sh: no .whl/*.whl here: run bench/gpu/fetch_wheels.sh first and pass carry [\".whl\"]"
      return 1
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl || { echo "run.sh: installing .whl/*.whl into /tmp/site failed"; return 1; }
    export PYTHONPATH="/tmp/site:$REPO/src"
  fi
  # bench/dpo_sides.py reads <repo>/../shared/data; only the repo travels, so the sample rides in .whl/data.
  local data="$REPO/../shared/data/$DATA_NAME"
  if [ ! -f "$data" ]; then
    if [ -f ".whl/data/$DATA_NAME" ]; then
      mkdir -p "$(dirname "$data")" && cp ".whl/data/$DATA_NAME" "$data" ||
        { echo "run.sh: cannot place the HH sample at $data"; return 1; }
    else
      echo "run.sh: $data is missing and .whl/data/$DATA_NAME too (fetch_wheels.sh copies it)"
      return 1
    fi
  fi
  # Nothing outside the machine can be reached: never let a library wait on the network.
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
  export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
  nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>/dev/null || true
  "$PY" bench/gpu/preflight.py --wheels bench/gpu/wheels.txt --json "$WORK/environment.json" --require-cuda ||
    return 1
  "$PY" bench/gpu/stages.py --out "$OUT" --work "$WORK" --environment "$WORK/environment.json" "$@"
}

main "$@" 2>&1 | tee -a "$OUT/log"
exit "${PIPESTATUS[0]}"
