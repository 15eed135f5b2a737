#!/usr/bin/env bash
# Run HERE (not on the GPU machine, which has no network): download exactly the wheels pinned in
# bench/gpu/wheels.txt for the GPU image (CPython 3.12, manylinux x86_64, no dependencies) into <repo>/.whl,
# check them (bench/gpu/check_wheels.py: one wheel per package, stale ones removed, every requirement on the
# image or carried), copy the HH sample into .whl/data/ (../shared does not travel to the device), and print
# the total size. .whl/ is kept out of git through .git/info/exclude.
#
#   bash bench/gpu/fetch_wheels.sh            # PYTHON=python3 by default; any python with pip works
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LIST="$REPO/bench/gpu/wheels.txt"
DEST="${ALIGNLAB_WHEEL_DIR:-$REPO/.whl}" # another folder: tests only (the device reads .whl)
DATA="$REPO/../shared/data/hh-rlhf-harmless-base-sample.jsonl.gz"
PYTHON="${PYTHON:-python3}"
LIMIT_MIB=48 # the whole working tree that travels must stay under 64 MiB

if [ "$DEST" = "$REPO/.whl" ]; then
  # Read-only git query for where info/exclude lives; that file is not tracked.
  exclude="$(git -C "$REPO" rev-parse --git-path info/exclude)"
  case "$exclude" in /*) ;; *) exclude="$REPO/$exclude" ;; esac
  mkdir -p "$(dirname "$exclude")"
  grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
fi

# name==version per line; comments and blank lines skipped (check_wheels.py rejects anything unpinned).
mapfile -t REQS < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$')
mkdir -p "$DEST"
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$DEST" "${REQS[@]}"
"$PYTHON" "$REPO/bench/gpu/check_wheels.py" "$DEST" --list "$LIST"

if [ -f "$DATA" ]; then
  mkdir -p "$DEST/data"
  cp -f "$DATA" "$DEST/data/"
else
  echo "fetch_wheels: warning: $DATA is absent; the bench stages need it on the device" >&2
fi

for f in "$DEST"/*.whl; do printf '%10d  %s\n' "$(stat -c %s "$f")" "$(basename "$f")"; done
wheels=$(cat "$DEST"/*.whl | wc -c)
all=$(du -sb "$DEST" | cut -f1)
echo "fetch_wheels: ${#REQS[@]} wheels, $wheels bytes ($((wheels / 1048576)) MiB); $DEST with the data: $all bytes"
if [ "$all" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "fetch_wheels: $DEST is over $LIMIT_MIB MiB; the device takes 64 MiB for the whole working tree" >&2
  exit 1
fi
