#!/usr/bin/env bash
# The GPU checks of issue 14 in one prepared run (167 s on one H200, 2026-11-28):
#   bash bench/gpu.sh            # CUDA tests, then bench/bench_gpu.py at full sizes
#   bash bench/gpu.sh --smoke    # tiny sizes on any device (the test suite runs this)
# Writes bench/results/gpu.md, gpu.json and cuda_graph.md/.json (*_smoke.* with --smoke),
# or into --out DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
# the repository importable also where it is not installed (pip install -e .), e.g. on a
# lent GPU machine
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
SMOKE=()
OUT=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=(--smoke); shift ;;
    --out) OUT=(--out "$2"); shift 2 ;;
    *) echo "gpu.sh: unknown argument $1 (use --smoke, --out DIR)" >&2; exit 2 ;;
  esac
done
echo "== CUDA tests (skipped where no GPU is visible)"
"$PY" -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider
echo "== measurements"
"$PY" bench/bench_gpu.py "${SMOKE[@]}" "${OUT[@]}"
echo "== CUDA graphs for a lone network's gradient sweep"
"$PY" bench/bench_cuda_graph.py "${SMOKE[@]}" "${OUT[@]}"
