#!/usr/bin/env bash
# Builds the viewer's Python wheel with maturin, installs it into a fresh
# virtualenv, lets that venv's Python write a tracemalloc pickle, and runs
# `tracemalloc-viewer stats` (and `python -m tracemalloc_viewer`) on it.
#
#     scripts/python_wheel.sh [WORK_DIR]
#
# The wheel is a release build of the viewer (several minutes on two
# cores), so this is a script to run before a release, not a CI step.
# Needs python3 with venv and access to PyPI (for maturin only). Set
# CARGO_TARGET_DIR to reuse an existing release build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${1:-$(mktemp -d)}
mkdir -p "$work"
echo "==> working in $work"

echo "==> maturin, in its own venv"
python3 -m venv "$work/build-venv"
"$work/build-venv/bin/pip" install --quiet --upgrade pip
"$work/build-venv/bin/pip" install --quiet 'maturin>=1.9,<2'
"$work/build-venv/bin/maturin" --version

echo "==> the wheel"
rm -rf "$work/wheels"
# pyproject.toml (at the root) names the crate: app/Cargo.toml.
"$work/build-venv/bin/maturin" build --release --out "$work/wheels"
wheel=$(ls "$work"/wheels/tracemalloc_viewer-*.whl)
echo "built $wheel ($(du -h "$wheel" | cut -f1))"

echo "==> a fresh venv, the wheel installed (no other package, no network)"
rm -rf "$work/venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --no-index "$wheel"
"$work/venv/bin/pip" show tracemalloc-viewer | sed -n '1,2p'

echo "==> the venv's Python writes a tracemalloc pickle"
cat > "$work/workload.py" <<'PY'
import tracemalloc

tracemalloc.start(10)
kept = [f"item number {i}" * 4 for i in range(20_000)]
more = {i: bytearray(100) for i in range(2_000)}
tracemalloc.take_snapshot().dump("snapshot.pickle")
PY
(cd "$work" && "$work/venv/bin/python" workload.py)

echo "==> tracemalloc-viewer stats (the venv's command)"
(cd "$work" && "$work/venv/bin/tracemalloc-viewer" stats snapshot.pickle --limit 5) | tee "$work/stats.txt"
# The two allocating lines of the workload lead the top list.
grep -q '^#1: .*/workload.py:4: ' "$work/stats.txt"
grep -q '^#2: .*/workload.py:5: ' "$work/stats.txt"

echo "==> python -m tracemalloc_viewer info"
(cd "$work" && "$work/venv/bin/python" -m tracemalloc_viewer info snapshot.pickle) | tee "$work/info.txt"
grep -q '^Format: *CPython pickle' "$work/info.txt"

echo "==> OK: the wheel installs and runs in a fresh venv"
