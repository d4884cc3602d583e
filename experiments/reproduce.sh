#!/usr/bin/env bash
# Reproduce the paper's comparison: see experiments/reproduce.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
# the repository importable also where it is not installed (pip install -e .), e.g. on a
# lent GPU machine
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
exec "$PY" experiments/reproduce.py "$@"
