#!/usr/bin/env bash
# Reproduce the paper's comparison: see experiments/reproduce.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
exec "$PY" experiments/reproduce.py "$@"
