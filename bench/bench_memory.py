#!/usr/bin/env python
"""Memory of one update per network, per rule (what rnn/sizing.py's estimates are checked against).

    python bench/bench_memory.py                  # CPU: peak RSS of P = 1 and P = 4
    python bench/bench_memory.py --device cuda    # GPU: torch.cuda.max_memory_allocated

Each measurement runs in a fresh subprocess: build the trainer for P networks
on CDI at -v 0.5, run two updates, report the peak memory.  The slope between
P = 1 and P = 4 is the memory one more network costs; it is printed beside the
estimate rnn.sizing.bytes_per_network gives.
"""
from __future__ import annotations

import json
import subprocess
import sys

from bench.common import ROOT, machine
from rnn.cli import Parser, add_device_arg, resolve_device
from rnn.rules import RULES, get

CHILD = r"""
import json, resource, sys, torch
from rnn.rules import get
from tasks import ncdi
rule, P, device = {rule!r}, {P}, {device!r}
task = ncdi(2, 0.5)
cfg = get(rule).make_config(task, None)
tr = get(rule).make(cfg, task, list(range(P)), device)
idx = torch.arange(P, device=device)
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
for _ in range(2):
    tr.step(idx)
peak = torch.cuda.max_memory_allocated() if device == "cuda" else \
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(peak))
"""


def peak(rule, P, device):
    r = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), rule=rule, P=P,
                                                           device=device)],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    add_device_arg(ap, "where to measure")
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES,
                    help="rules to measure (default: all)")
    args = ap.parse_args()
    args.device = resolve_device(args.device)
    from rnn.sizing import bytes_per_network
    from tasks import ncdi
    print(f"machine: {machine()}")
    task = ncdi(2, 0.5)
    print("| rule | peak P=1 (MB) | peak P=4 (MB) | per network, measured (MB) | "
          "estimate (MB) |\n|---|---|---|---|---|")
    for rule in args.rules:
        a, b = peak(rule, 1, args.device), peak(rule, 4, args.device)
        est = bytes_per_network(rule, task, 50, get(rule).make_config(task, None))
        print(f"| {rule} | {a / 2**20:.0f} | {b / 2**20:.0f} | {(b - a) / 3 / 2**20:.1f} | "
              f"{est / 2**20:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(lambda argv: main())
