#!/usr/bin/env bash
# The claims grids' expensive cells on one lent GPU, as one prepared run (the
# issue on the other half of the paper): GA at N = 3, 4 (claims.toml), then
# N = 5, 6 (claims_high.toml: BPTT at three noise levels, GA at -v 0.5), then
# whatever BPTT cells of claims.toml the CPU has not finished.  Each cell's
# missing seeds are one batch (--chunk 24); WORKERS jobs share the card, each a
# train_models.py process started from `run_grid.py --commands` (no Dask
# needed: a lent machine's image may not have it).  At DEADLINE seconds
# (default 420) every job still training is stopped with SIGTERM, which saves
# its networks (the finished ones as finished, the others 'interrupted') and
# its checkpoint; what is left is trained by a rerun, here or on the CPU (a
# checkpoint of another device is set aside there, and its networks train
# afresh).
#
#   bash experiments/claims_gpu.sh            # on the GPU machine
#   bash experiments/claims_gpu.sh --smoke    # tiny copies of the grids, a temporary
#                                             # folder, any device (the tests)
#
# New networks land in experiments/networks/paper/ as on a CPU; when $OUT is set
# (the device tool) they are also packed into $OUT/claims_networks.tar, to be
# unpacked in the repository root here: tar -xf .../claims_networks.tar (only
# the finished ones belong in git).  Where the whole checkout is too large to
# send, the skipping needs only each finished network's NAME.json beside an
# empty NAME.pt.
set -euo pipefail
cd "$(dirname "$0")/.."
# the repository importable also where it is not installed (pip install -e .), e.g. on a
# lent GPU machine
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEADLINE=${DEADLINE:-420}
WORKERS=${WORKERS:-5}
CLAIMS=experiments/grids/claims.toml
HIGH=experiments/grids/claims_high.toml
NETS=experiments/networks/paper
EXTRA=()
case "${1:-}" in
  --smoke)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    NETS=$tmp/nets
    # fewer cells of the same kinds (one N per file, one noise level), 1 network
    # each, 3 updates, 8 units
    for g in "$CLAIMS" "$HIGH"; do
      sed -e 's/^networks = .*/networks = 1/' -e '/^models_dir/d' \
          -e 's/^N = \[[0-4, ]*\]/N = [3]/' -e 's/^N = \[5, 6\]/N = [5]/' \
          -e 's/^noise = \[.*\]/noise = [0.1]/' \
          -e 's/^\[grid\]/[grid]\nhidden = 8\nmax_steps = 3/' "$g" > "$tmp/$(basename "$g")"
    done
    CLAIMS=$tmp/claims.toml HIGH=$tmp/claims_high.toml
    EXTRA=(--models-dir "$NETS")
    WORKERS=1
    DEVICE=${DEVICE:-cpu} ;;
  "") DEVICE=${DEVICE:-cuda} ;;
  *) echo "claims_gpu.sh: unknown argument $1 (use --smoke, or none)" >&2; exit 2 ;;
esac
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (no GPU visible)')"
start=$(date +%s)
sleep 1
plan() {
  "$PY" run_grid.py "$@" --device "$DEVICE" --chunk 24 --commands "${EXTRA[@]}"
}
mapfile -t COMMANDS < <(plan "$CLAIMS" --cells '*-ga-*'; plan "$HIGH"; plan "$CLAIMS" --cells '*-bptt-*')
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
"$PY" run_grid.py "$CLAIMS" --list "${EXTRA[@]}" | sed -n 1p
"$PY" run_grid.py "$HIGH" --list "${EXTRA[@]}" | sed -n 1p
if [ -n "${OUT:-}" ]; then
  base=. rel=$NETS
  [ "$NETS" = experiments/networks/paper ] || { base=$NETS; rel=.; }
  (cd "$base" && find "$rel" -type f \( -name '*.json' -o -name '*.pt' -o -name '*.txt' \) \
     ! -name '*_grid.json' -newermt "@$start" -print0 | tar -cf "$OUT/claims_networks.tar" --null -T -)
  echo "wrote $OUT/claims_networks.tar ($(tar -tf "$OUT/claims_networks.tar" | wc -l) files)"
fi
