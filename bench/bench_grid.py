#!/usr/bin/env python
"""Overhead of the grid runner (run_grid.py on Dask) against running the same
jobs directly, and the wall time of a small grid with 1 and 2 workers.

    python bench/bench_grid.py                  # 4 jobs of 2 BPTT RDM networks, 60 updates
    python bench/bench_grid.py --rule ga --task cdi --steps 20   # is a GA faster as 2 x 1 thread?

The grid: BPTT on the RDM task (--rule, --task), 8 networks in jobs of 2, each capped at
--steps updates (so every job does the same work).  "direct" runs the four
`train_models.py --count 2` commands one after another with all cores;
"grid, 1 worker" is run_grid.py with one worker using all cores (the
difference is the runner's overhead: cluster start, scheduling, the scans for
finished seeds); "grid, 2 workers" runs two jobs at once with one core each.
Every run starts from an empty models folder.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, machine
from rnn.cli import Parser
from rnn.rules import RULES

GRID = """[grid]
name = "bench"
noise = 0.5
first_seed = 500
max_steps = {steps}
networks = 8
chunk = 2
[[cells]]
task = "{task}"
rule = "{rule}"
"""
TASK_FLAG = {"rdm": ["--rdm"], "cdi": ["--N", "2"]}


def timed(cmd, env=None) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(r.stderr)
    return time.perf_counter() - t


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="updates per network (default 60)")
    ap.add_argument("--rule", default="bptt", choices=RULES, help="rule of the grid (default bptt)")
    ap.add_argument("--task", default="rdm", choices=tuple(TASK_FLAG),
                    help="task of the grid (default rdm)")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    grid = tmp / "bench.toml"
    grid.write_text(GRID.format(steps=args.steps, task=args.task, rule=args.rule))
    env = {**os.environ, "OMP_NUM_THREADS": str(cores)}
    direct = tmp / "direct"
    t0 = time.perf_counter()
    for seed in (500, 502, 504, 506):
        timed([sys.executable, "train_models.py",
               f"{args.task}-{args.rule}-v050-clean_s{seed}", "-v", "0.5",
               *TASK_FLAG[args.task], "--rule", args.rule, "--protocol", "clean", "--max-steps",
               str(args.steps), "--count", "2", "--seed", str(seed), "--quiet",
               "--models-dir", str(direct)], env)
    t_direct = time.perf_counter() - t0
    t_one = timed([sys.executable, "run_grid.py", str(grid), "--workers", "1", "--threads",
                   str(cores), "--models-dir", str(tmp / "one"), "--quiet", "--no-compare"])
    t_two = timed([sys.executable, "run_grid.py", str(grid), "--workers", "2", "--threads",
                   "1", "--models-dir", str(tmp / "two"), "--quiet", "--no-compare"])
    t_again = timed([sys.executable, "run_grid.py", str(grid), "--models-dir",
                     str(tmp / "two"), "--quiet", "--no-compare"])
    print(f"\n| 8 {args.rule.upper()} {args.task.upper()} networks, 4 jobs x {args.steps} updates "
          "| wall s | vs direct |")
    print("|---|---|---|")
    for what, t in ((f"direct: 4 train_models.py runs in a row, {cores} threads", t_direct),
                    (f"run_grid.py, 1 worker x {cores} threads", t_one),
                    ("run_grid.py, 2 workers x 1 thread", t_two),
                    ("run_grid.py again on the finished grid (trains nothing)", t_again)):
        print(f"| {what} | {t:.1f} | {t / t_direct:.3f}x |")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(lambda argv: main())
