#!/usr/bin/env bash
# Any grid's missing networks trained on one lent GPU, as one prepared run.
#
#   bash experiments/grid_gpu.sh GRID[:CELLS] ...          # on the GPU machine
#   bash experiments/grid_gpu.sh --smoke GRID[:CELLS] ...  # tiny copies of the grids (1
#                                                          # network per cell, 12 units, 3
#                                                          # updates), a temporary folder,
#                                                          # any device (the tests)
#
# Each argument is a grid file, optionally with a comma-separated list of cell
# patterns (run_grid.py --cells), e.g.
#
#   bash experiments/grid_gpu.sh 'experiments/grids/universality.toml:*-ga-gru-*,*-ga-lstm-*' \
#                                experiments/grids/universality.toml
#
# trains the universality grid's gated GA cells first, then the rest of it.
# The jobs are planned up front in the order given (a job listed twice runs
# once): each is a train_models.py process from `run_grid.py --commands`, with
# each cell's missing seeds in batches of CHUNK (default 24; no Dask needed: a
# lent machine's image may not have it).  WORKERS jobs (default 5) share the
# card.  No job starts after DEADLINE seconds (default 420), and at DEADLINE
# every job still training is stopped with SIGTERM, which saves its networks
# (the finished ones as finished, the others 'interrupted') and its
# checkpoint; what is left is trained by a rerun, here or on the CPU (a
# checkpoint of another device is set aside there, and its networks train
# afresh).
#
# New networks land in each grid's models folder as on a CPU.  When $OUT is set
# (the device tool) they are also packed into $OUT/${NAME}_networks.tar (NAME:
# the first grid's name unless set), with paths from the repository root, to be
# unpacked there: tar -xf .../NAME_networks.tar (only the finished ones belong
# in git).  Where the whole checkout is too large to send, the skipping needs
# only each finished network's NAME.json beside an empty NAME.pt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
# the repository importable also where it is not installed (pip install -e .), e.g. on a
# lent GPU machine
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEADLINE=${DEADLINE:-420}
WORKERS=${WORKERS:-5}
CHUNK=${CHUNK:-24}
EXTRA=()
SMOKE=
if [ "${1:-}" = --smoke ]; then
  SMOKE=1
  shift
fi
[ $# -gt 0 ] || { echo "grid_gpu.sh: give one or more grid files (GRID or GRID:CELLS)" >&2; exit 2; }
for a in "$@"; do
  case "$a" in
    -*) echo "grid_gpu.sh: unknown argument $a (use --smoke, then grid files)" >&2; exit 2 ;;
  esac
  [ -f "${a%%:*}" ] || { echo "grid_gpu.sh: no grid file ${a%%:*}" >&2; exit 2; }
done
if [ -n "$SMOKE" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # every grid shrunk the same way: 1 network per cell, 12 units, 3 updates, into $tmp/nets
  args=()
  for a in "$@"; do
    g=${a%%:*} small=$tmp/$(basename "${a%%:*}")
    sed -e '/^hidden *=/d' -e '/^max_steps *=/d' -e '/^models_dir *=/d' \
        -e 's/^networks *= .*/networks = 1/' \
        -e 's/^\[grid\]/[grid]\nhidden = 12\nmax_steps = 3/' "$g" > "$small"
    args+=("$small${a#"$g"}")
  done
  set -- "${args[@]}"
  EXTRA=(--models-dir "$tmp/nets")
  WORKERS=1
  DEVICE=${DEVICE:-cpu}
else
  DEVICE=${DEVICE:-cuda}
fi
first=${1%%:*}
NAME=${NAME:-$("$PY" -c 'import sys; from rnn.grid.format import read_grid; print(read_grid(sys.argv[1]).name)' "$first")}
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (no GPU visible)')"
start=$(date +%s)
sleep 1
plan() {   # GRID[:CELLS] -> the train_models.py command of each of its jobs still to run
  local g=${1%%:*} cells=()
  [ "$g" = "$1" ] || IFS=, read -ra cells <<< "${1#*:}"
  "$PY" run_grid.py "$g" ${cells[@]+--cells "${cells[@]}"} --device "$DEVICE" \
    --chunk "$CHUNK" --commands "${EXTRA[@]}"
}
mapfile -t COMMANDS < <(for a in "$@"; do plan "$a"; done | awk '!seen[$0]++')
echo "${#COMMANDS[@]} job(s) to run, ${WORKERS} at a time, stopped at ${DEADLINE} s"
pids=()
running() { local n=0 p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo $n; }
elapsed() { echo $(( $(date +%s) - start )); }
for cmd in "${COMMANDS[@]}"; do
  while [ "$(running)" -ge "$WORKERS" ] && [ "$(elapsed)" -lt "$DEADLINE" ]; do sleep 2; done
  [ "$(elapsed)" -lt "$DEADLINE" ] || break
  bash -c "exec $cmd" &
  pids+=($!)
done
while [ "$(running)" -gt 0 ] && [ "$(elapsed)" -lt "$DEADLINE" ]; do sleep 2; done
if [ "$(running)" -gt 0 ]; then
  echo "deadline: stopping $(running) job(s); each saves its networks and checkpoint"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
fi
for p in "${pids[@]}"; do wait "$p" || true; done
echo "trained in $(elapsed) s"
mapfile -t GRIDS < <(printf '%s\n' "$@" | sed 's/:.*//' | awk '!seen[$0]++')
folders=()
for g in "${GRIDS[@]}"; do
  "$PY" run_grid.py "$g" --list "${EXTRA[@]}" | sed -n 1p
  folders+=("$("$PY" -c 'import sys; from rnn.grid.format import read_grid
print(read_grid(sys.argv[1]).folder(sys.argv[2] if len(sys.argv) > 2 else None))' \
    "$g" ${EXTRA[@]+"${EXTRA[1]}"})")
done
if [ -n "${OUT:-}" ]; then
  tarball=$OUT/${NAME}_networks.tar
  tar -cf "$tarball" --files-from /dev/null
  mapfile -t FOLDERS < <(printf '%s\n' "${folders[@]}" | awk '!seen[$0]++')
  for f in "${FOLDERS[@]}"; do
    # paths from the repository root where the folder is inside it, else from the folder
    case "$f/" in "$ROOT"/*) base=. rel=${f#"$ROOT"/} ;; *) base=$f rel=. ;; esac
    (cd "$base" && find "$rel" -type f \( -name '*.json' -o -name '*.pt' -o -name '*.txt' \) \
       ! -name '*_grid.json' -newermt "@$start" -print0 | tar -rf "$tarball" --null -T -)
  done
  echo "wrote $tarball ($(tar -tf "$tarball" | wc -l) files)"
fi
