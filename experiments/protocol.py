#!/usr/bin/env python
"""Which behaviour of the original study's protocol carries the paper's SVCCA
separation of BPTT and GA networks?

    bash experiments/reproduce.sh --protocol original        # train what is missing, analyse
    python experiments/protocol.py --only-analyse            # analyse the networks there are
    python experiments/protocol.py --list                    # the cells and what is trained

Cells (CDI unless named N = 1; -v 0.5; BPTT seeds 13000+, GA seeds 14000+ in
every cell, so cells differ only in the protocol — a paired design):

    original               every switch of --protocol original
    original-shared_x0     ... without the shared initial state
    original-lenient_stop  ... without the lenient stop rule
    original-budgets       ... without the original budgets (BPTT at most 20,000
                           updates, the stall rule on); a network of `original`
                           that reached the stop rule in fewer updates than the
                           stall window (500) is the same network here, and is
                           reused rather than trained again
    clean                  this tool's protocol
    n1-original            --N 1, original protocol (24 BPTT, 25 GA as in the
                           reference)

Trained networks live in experiments/networks/CELL/ (committed: they are
small) and are reused; a chunk of networks whose training did not finish is
trained again (same seeds give the same networks).  Training goes through
the grid runner (rnn.grid; one job at a time, BPTT 8 networks per job, GA 2).  Then every cell is analysed
with this tool's analysis and the original's (svcca_analysis.py --analysis
original), with and without the networks that did not reach the stop rule,
and the tables go to experiments/results/PROTOCOL.md and protocol.json.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ROOT / "experiments" / "networks"
RESULTS = ROOT / "experiments" / "results"
GPU_CHUNK = 25           # on a GPU a whole cell is one batch (per network ~86 MB BPTT, 21 MB GA)
PER_RULE = None          # --per-rule: networks per rule in every cell (quick looks, tests)
MAX_STEPS = None         # --max-steps: a cap on every training run (quick looks, tests)
FIRST_SEED = {"bptt": 13000, "ga": 14000}


@dataclass(frozen=True)
class Cell:
    name: str
    task: tuple[str, ...]             # train_models.py task flags
    flags: tuple[str, ...]            # protocol flags
    count: dict                       # networks per rule
    description: str
    # another cell whose networks are identical here when they reached the stop
    # rule early (see reusable)
    reuse_from: str | None = None

    def folder(self) -> Path:
        return NETWORKS / self.name

    def counts(self) -> dict:
        return {r: PER_RULE or n for r, n in self.count.items()}


CDI, N1 = ("--N", "2"), ("--N", "1")
CELLS = {c.name: c for c in [
    Cell("original", CDI, ("--protocol", "original"), {"bptt": 24, "ga": 24},
         "original protocol (all switches)"),
    Cell("clean", CDI, ("--protocol", "clean"), {"bptt": 24, "ga": 24},
         "this tool's protocol (no switch)"),
    Cell("original-shared_x0", CDI, ("--protocol", "original", "--no-shared-x0"),
         {"bptt": 24, "ga": 24}, "original without the shared initial state"),
    Cell("original-lenient_stop", CDI, ("--protocol", "original", "--no-lenient-stop"),
         {"bptt": 24, "ga": 24}, "original without the lenient stop rule"),
    Cell("original-budgets", CDI, ("--protocol", "original", "--no-original-budgets"),
         {"bptt": 24, "ga": 24}, "original without the original budgets",
         reuse_from="original"),
    Cell("n1-original", N1, ("--protocol", "original"), {"bptt": 24, "ga": 25},
         "N = 1, original protocol"),
]}
ORDER = ["original", "clean", "n1-original", "original-shared_x0", "original-lenient_stop",
         "original-budgets"]


def seeds_of(cell: Cell, rule: str) -> list[int]:
    return [FIRST_SEED[rule] + k for k in range(cell.counts()[rule])]


FINISHED = ("converged", "budget")


def reusable(meta: dict) -> bool:
    """Is this network of ``original`` the very network the budgets ablation
    would train from the same seed?  The two protocols differ only in when a
    run is stopped for lack of progress (BPTT budget 2000 vs 20,000 updates;
    the stall rule off vs on, window 500), never in what an update does, and
    every draw comes from the network's own seeded streams.  So a network that
    reached the stop rule before either of those could act — fewer updates
    than the stall window, hence than both budgets — is trained identically."""
    from rnn.training import StopConfig
    return (meta.get("status") == "converged"
            and int(meta.get("steps", 10**9)) < StopConfig().stall_window)


def metas(folder: Path, rule: str) -> dict[int, list[dict]]:
    """Every model JSON of ``rule`` in ``folder``, by seed."""
    out: dict[int, list[dict]] = {}
    for p in sorted(folder.glob(f"{rule}_s*.json")):
        try:
            m = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(m, dict) and m.get("rule") == rule and "seed" in m:
            out.setdefault(int(m["seed"]), []).append(m)
    return out


def networks(cell: Cell, rule: str) -> list[tuple[Path, dict]]:
    """The finished networks of a cell and rule, one per seed, in seed order:
    (folder, meta).  Found by seed, whatever chunk trained them; a seed this
    cell has not trained takes the ``reuse_from`` cell's network when that one
    is the same network (:func:`reusable`)."""
    found = metas(cell.folder(), rule)
    other = metas(CELLS[cell.reuse_from].folder(), rule) if cell.reuse_from else {}
    out = []
    for seed in seeds_of(cell, rule):
        done = [m for m in found.get(seed, []) if m.get("status") in FINISHED]
        same = [m for m in other.get(seed, []) if reusable(m)]
        if done:
            out.append((cell.folder(), done[0]))
        elif same:
            out.append((CELLS[cell.reuse_from].folder(), same[0]))
    return out


def grid_cell(cell: Cell, rule: str, chunk: int | None = None):
    """The cell and rule as a grid-runner cell (rnn.grid): its jobs are named
    RULE_sSEED in the cell's folder, as the networks kept here are."""
    from rnn.grid import Cell as GridCell
    flags = list(cell.flags)
    switches = {}
    for s in ("shared_x0", "lenient_stop", "original_budgets"):
        if f"--no-{s.replace('_', '-')}" in flags:
            switches[s] = False
    task = {("--N", "2"): ("cdi", None), ("--N", "1"): ("ncdi", 1)}[tuple(cell.task)]
    return GridCell(task=task[0], N=task[1], rule=rule, noise=0.5,
                    networks=cell.counts()[rule], first_seed=FIRST_SEED[rule],
                    protocol=flags[flags.index("--protocol") + 1], max_steps=MAX_STEPS,
                    chunk=chunk, name=rule, **switches)


def train(cell: Cell, rule: str, device: str, log, chunk: int | None = None) -> float:
    """Train the missing networks of a cell through the grid runner (an
    embedded Dask cluster, one job at a time); returns the seconds spent."""
    from rnn.grid import jobs_for, run_jobs
    folder = cell.folder()
    folder.mkdir(parents=True, exist_ok=True)
    got = networks(cell, rule)
    have = {m["seed"] for _, m in got}
    shared = sum(f != folder for f, _ in got)
    if have:
        print(f"[{cell.name}] {rule}: reusing {len(have)} trained networks"
              + (f" ({shared} of them those of {cell.reuse_from}: the same networks)"
                 if shared else ""), flush=True)
    dev = device if device != "auto" else ("cuda" if _cuda() else "cpu")
    jobs = jobs_for(grid_cell(cell, rule, chunk or (GPU_CHUNK if dev == "cuda" else None)),
                    folder, done=have)
    if not jobs:
        return 0.0
    print(f"[{cell.name}] {rule}: training {sum(j.count for j in jobs)} networks in "
          f"{len(jobs)} job(s)", flush=True)
    t0 = time.time()
    records, failed = run_jobs(jobs, folder, workers=1, threads=os.cpu_count() or 1,
                               device=dev)
    for r in records:
        log.write(f"{r}\n")
    log.flush()
    if failed:
        raise SystemExit(f"training failed: {failed[0]['error']}")
    return time.time() - t0      # (each job removed the files of its interrupted seeds)


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def main(argv=None) -> int:
    from rnn.errors import Parser
    from rnn.rules import get
    ap = Parser(
        description="Train and analyse the protocol cells (see the module docstring).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--cells", nargs="+", default=ORDER, choices=ORDER,
                    help="cells to train and analyse (default: all, in this order)")
    ap.add_argument("--only-analyse", action="store_true",
                    help="train nothing; analyse the networks already trained")
    ap.add_argument("--only-train", action="store_true", help="train, do not analyse")
    ap.add_argument("--list", action="store_true", help="list the cells and what is trained")
    ap.add_argument("--device", default="auto", help="train_models.py --device (default auto)")
    ap.add_argument("--rules", nargs="+", default=["bptt", "ga"], choices=("bptt", "ga"),
                    help="train only these rules (default both; analysis takes both)")
    ap.add_argument("--chunk", type=int, default=None, metavar="K",
                    help=f"networks per training job (default: BPTT {get('bptt').chunk}, GA "
                         f"{get('ga').chunk} on a CPU; {GPU_CHUNK} on a GPU); a network is the "
                         "same in any chunk")
    ap.add_argument("--deadline", type=float, default=None, metavar="S",
                    help="start no new cell's training after S seconds (a run on a lent GPU "
                         "with a time limit); what is running finishes")
    ap.add_argument("--bootstrap", type=int, default=2000,
                    help="bootstrap resamples and label permutations (default 2000)")
    ap.add_argument("--per-rule", type=int, default=None, metavar="K",
                    help="networks per rule in every cell instead of 24/25 (a quick look)")
    ap.add_argument("--max-steps", type=int, default=None, metavar="S",
                    help="cap every training run at S updates (a quick look)")
    ap.add_argument("--networks", default=None, metavar="DIR",
                    help="folder of the cells' networks (default experiments/networks)")
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="folder of the tables (default experiments/results)")
    args = ap.parse_args(argv)
    for flag, v in (("--chunk", args.chunk), ("--per-rule", args.per_rule),
                    ("--max-steps", args.max_steps)):
        if v is not None and v < 1:
            ap.error(f"{flag} must be at least 1, got {v}")
    if args.deadline is not None and not args.deadline >= 0:
        ap.error(f"--deadline must be a number of seconds >= 0, got {args.deadline}")
    global NETWORKS, RESULTS, PER_RULE, MAX_STEPS
    if args.networks:
        NETWORKS = Path(args.networks).resolve()
    if args.out:
        RESULTS = Path(args.out).resolve()
    PER_RULE, MAX_STEPS = args.per_rule, args.max_steps
    if args.list:
        for name in ORDER:
            c = CELLS[name]
            got = {r: len(networks(c, r)) for r in c.count}
            print(f"{name:24s} {c.description}: " + ", ".join(
                f"{r} {got[r]}/{c.counts()[r]}" for r in c.count))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not args.only_analyse:
        with open(RESULTS / "protocol_log.txt", "a") as log:
            for name in args.cells:
                for rule in CELLS[name].count:
                    if rule not in args.rules:
                        continue
                    if args.deadline is not None and time.time() - t0 > args.deadline:
                        print(f"[{name}] {rule}: not started (--deadline {args.deadline:g} s "
                              "passed)", flush=True)
                        continue
                    train(CELLS[name], rule, args.device, log, args.chunk)
        print(f"training finished in {time.time() - t0:.0f} s", flush=True)
    if not args.only_train:
        from experiments.protocol_analysis import analyse_all
        analyse_all([CELLS[n] for n in args.cells], args.bootstrap, time.time() - t0, RESULTS)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    from experiments import protocol as _module   # one copy of the module's settings
    from rnn.errors import run_cli
    run_cli(_module.main)
