#!/usr/bin/env bash
# The protocol experiment's missing networks trained on one GPU, as one prepared
# run (issue 13; a lent GPU has minutes, so the expensive rule goes first):
#
#   bash experiments/protocol_gpu.sh               # GA of every cell, then BPTT; no new cell
#                                                  # after DEADLINE s (default 360)
#   bash experiments/protocol_gpu.sh --smoke       # 1 cell, 2 networks per rule, 3 updates,
#                                                  # a temporary folder, any device (the tests)
#
# Each cell is one batch on the GPU (experiments/protocol.py --chunk default there).
# New networks land in experiments/networks/CELL/ as on a CPU; when $OUT is set
# (the device tool), they are also packed into $OUT/protocol_networks.tar, to be
# unpacked in the repository root here: tar -xf .../protocol_networks.tar
set -euo pipefail
cd "$(dirname "$0")/.."
# the repository importable also where it is not installed (pip install -e .), e.g. on a
# lent GPU machine
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEADLINE=${DEADLINE:-360}
ARGS=()
NETS=experiments/networks
CELLS=(original clean original-shared_x0 original-lenient_stop original-budgets n1-original)
case "${1:-}" in
  --smoke)
    NETS=$(mktemp -d)
    trap 'rm -rf "$NETS"' EXIT
    ARGS=(--per-rule 2 --max-steps 3 --models-dir "$NETS" --out "$NETS/results")
    CELLS=(original)
    DEVICE=${DEVICE:-auto} ;;
  "") DEVICE=${DEVICE:-cuda} ;;
  *) echo "protocol_gpu.sh: unknown argument $1 (use --smoke, or none)" >&2; exit 2 ;;
esac
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (no GPU visible)')"
start=$(date +%s)
for rule in ga bptt; do
  left=$(( DEADLINE - ($(date +%s) - start) ))
  [ "$left" -lt 0 ] && left=0
  "$PY" experiments/protocol.py --only-train --device "$DEVICE" --rules "$rule" \
    --cells "${CELLS[@]}" --deadline "$left" "${ARGS[@]}"
done
echo "trained in $(( $(date +%s) - start )) s"
"$PY" experiments/protocol.py --list "${ARGS[@]}"
if [ -n "${OUT:-}" ]; then
  # the networks written by this run (a JSON and its .pt each, and the jobs' lists)
  # (paths from the repository root; from the temporary folder with --smoke)
  base=. rel=$NETS
  [ "$NETS" = experiments/networks ] || { base=$NETS; rel=.; }
  (cd "$base" && find "$rel" -type f \( -name '*.json' -o -name '*.pt' -o -name '*.txt' \) \
     -newermt "@$start" -print0 | tar -cf "$OUT/protocol_networks.tar" --null -T -)
  echo "wrote $OUT/protocol_networks.tar ($(tar -tf "$OUT/protocol_networks.tar" | wc -l) files)"
fi
