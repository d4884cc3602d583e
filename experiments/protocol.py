#!/usr/bin/env python
"""Which behaviour of the original study's protocol carries the paper's SVCCA
separation of BPTT and GA networks?

    bash experiments/reproduce.sh --protocol original        # train what is missing, analyse
    python experiments/protocol.py --only-analyse            # analyse the networks there are
    python experiments/protocol.py --list                    # the cells and what is trained

Cells, from the grid file experiments/grids/protocol.toml (CDI unless named
N = 1; -v 0.5; BPTT seeds 13000+, GA seeds 14000+ in every cell, so cells
differ only in the protocol — a paired design):

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
import os
import time
from pathlib import Path

from experiments.protocol_cells import ORDER, ProtocolCell, configured, grid_cell, networks
from rnn.io import ensure_writable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
GPU_CHUNK = 25           # on a GPU a whole cell is one batch (per network ~86 MB BPTT, 21 MB GA)

def train(cell: ProtocolCell, rule: str, device: str, log, chunk: int | None = None,
          quiet: bool = False, pool=None) -> float:
    """Train the missing networks of a cell through the grid runner (an
    embedded Dask cluster, one job at a time: ``pool``, a rnn.grid.runner.Pool of
    one worker, shared by the cells of a run); returns the seconds spent."""
    from rnn.grid.jobs import jobs_for
    from rnn.grid.runner import run_jobs
    say = (lambda *a, **k: None) if quiet else print
    folder = cell.folder()
    folder.mkdir(parents=True, exist_ok=True)
    got = networks(cell, rule)
    have = {m["seed"] for _, m in got}
    shared = sum(f != folder for f, _ in got)
    if have:
        say(f"[{cell.name}] {rule}: reusing {len(have)} trained networks"
              + (f" ({shared} of them those of {cell.reuse_from}: the same networks)"
                 if shared else ""), flush=True)
    dev = device if device != "auto" else ("cuda" if _cuda() else "cpu")
    # the grid's jobs of the cell (its reuse_from networks count as trained)
    jobs = jobs_for(grid_cell(cell, rule, chunk or (GPU_CHUNK if dev == "cuda" else None)),
                    cell.root)
    if not jobs:
        return 0.0
    say(f"[{cell.name}] {rule}: training {sum(j.count for j in jobs)} networks in "
          f"{len(jobs)} job(s)", flush=True)
    t0 = time.time()
    # one job at a time with every core (or $OMP_NUM_THREADS threads when set)
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    records, failed = run_jobs(jobs, cell.root, workers=1, threads=threads,
                               device=dev, quiet=quiet, pool=pool)
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
    from rnn.cli import Parser, add_device_arg
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
    add_device_arg(ap, "where to train")
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
    ap.add_argument("--models-dir", "--networks", dest="networks", default=None, metavar="DIR",
                    help="folder of the cells' networks, one folder per cell (default "
                         "experiments/networks; --networks is the older name)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="folder of the tables (default experiments/results)")
    args = ap.parse_args(argv)
    for flag, v in (("--chunk", args.chunk), ("--per-rule", args.per_rule),
                    ("--max-steps", args.max_steps)):
        if v is not None and v < 1:
            ap.error(f"{flag} must be at least 1, got {v}")
    if args.deadline is not None and not args.deadline >= 0:
        ap.error(f"--deadline must be a number of seconds >= 0, got {args.deadline}")
    cells = configured(Path(args.networks).resolve() if args.networks else None,
                       args.per_rule, args.max_steps)
    out = Path(args.out).resolve() if args.out else RESULTS
    if args.list:
        for name in ORDER:
            c = cells[name]
            got = {r: len(networks(c, r)) for r in c.count}
            print(f"{name:24s} {c.description}: " + ", ".join(
                f"{r} {got[r]}/{c.counts()[r]}" for r in c.count))
        return 0
    ensure_writable(out, what="the --out folder", hint="(choose another with --out)")
    t0 = time.time()
    say = (lambda *a, **k: None) if args.quiet else print
    if not args.only_analyse:
        from rnn.grid.runner import Pool
        dev = args.device if args.device != "auto" else ("cuda" if _cuda() else "cpu")
        with open(out / "protocol_log.txt", "a") as log, Pool(workers=1, device=dev) as pool:
            for name in args.cells:
                for rule in cells[name].count:
                    if rule not in args.rules:
                        continue
                    if args.deadline is not None and time.time() - t0 > args.deadline:
                        say(f"[{name}] {rule}: not started (--deadline {args.deadline:g} s "
                              "passed)", flush=True)
                        continue
                    train(cells[name], rule, dev, log, args.chunk, args.quiet, pool)
        say(f"training finished in {time.time() - t0:.0f} s", flush=True)
    if not args.only_train:
        from experiments.protocol_analysis import analyse_all
        analyse_all([cells[n] for n in args.cells], args.bootstrap, time.time() - t0, out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    from rnn.cli import run_cli
    run_cli(main)
