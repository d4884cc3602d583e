#!/usr/bin/env bash
# The claims grids' expensive cells on one lent GPU, as one prepared run (the
# issue on the other half of the paper): GA at N = 3, 4 (claims.toml), then
# N = 5, 6 (claims_high.toml: BPTT at three noise levels, GA at -v 0.5), then
# whatever BPTT cells of claims.toml the CPU has not finished.  The run itself
# is experiments/grid_gpu.sh (jobs of up to CHUNK = 24 seeds, WORKERS = 5 at a
# time on the card, stopped at DEADLINE = 420 s with their networks and
# checkpoints saved; the new networks packed into $OUT/claims_networks.tar).
#
#   bash experiments/claims_gpu.sh            # on the GPU machine
#   bash experiments/claims_gpu.sh --smoke    # tiny copies of the grids, a temporary
#                                             # folder, any device (the tests)
#
# New networks land in experiments/networks/paper/ as on a CPU; unpack the tar
# in the repository root here: tar -xf .../claims_networks.tar (only the
# finished ones belong in git).
set -euo pipefail
cd "$(dirname "$0")/.."
CLAIMS=experiments/grids/claims.toml
HIGH=experiments/grids/claims_high.toml
SMOKE=()
case "${1:-}" in
  --smoke)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # fewer cells of the same kinds: one N per file, one noise level (grid_gpu.sh --smoke
    # makes them 1 network each, 12 units, 3 updates)
    for g in "$CLAIMS" "$HIGH"; do
      sed -e 's/^N = \[[0-4, ]*\]/N = [3]/' -e 's/^N = \[5, 6\]/N = [5]/' \
          -e 's/^noise = \[.*\]/noise = [0.1]/' "$g" > "$tmp/$(basename "$g")"
    done
    CLAIMS=$tmp/claims.toml HIGH=$tmp/claims_high.toml
    SMOKE=(--smoke) ;;
  "") ;;
  *) echo "claims_gpu.sh: unknown argument $1 (use --smoke, or none)" >&2; exit 2 ;;
esac
NAME=claims bash experiments/grid_gpu.sh ${SMOKE[@]+"${SMOKE[@]}"} \
  "$CLAIMS:*-ga-*" "$HIGH" "$CLAIMS:*-bptt-*"
