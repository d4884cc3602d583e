#!/usr/bin/env python
"""How often does a rule stall near chance, and what does the stall rule change?

    python bench/bench_stall.py --rule heb --tasks rdm cdi --seeds 20

Cost: every network that never converges runs the whole budget (Hebbian:
3000 batches).  On this project's 2-core CPU one Hebbian update of one network
took about 0.3 s of a core (2026-11-28, profiled: half of it drawing the
perturbations), so RDM is about an hour and CDI several; the networks are
kept (--models-dir) and a rerun resumes where the last one stopped.

Trains ``--seeds`` networks per task (``--chunk`` at a time) to the rule's
budget with the stall rule OFF, so every network's whole course is known.
Then it replays the stall rule (rnn.training's: every validation of the last
--window updates below 0.6) on each network's validation record and prints,
per task: how many networks reached the stop rule without the stall rule
(before), how many the stall rule would stop and at which update, how many of
those would have converged later (the rule's false stops), so how many
converge with it (after), and the updates it saves; then the same for other
candidate rules (longer windows, a lower threshold, a no-progress condition),
and every network's course (status, updates, best accuracy, first update at
>= 0.6).  Training with the rule off is what ``--on-stall continue`` (the
Hebbian default) does: the rule only notes the stall.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from bench.common import ROOT, machine
from rnn.cli import Parser, add_device_arg, resolve_device
from rnn.grid.format import Cell
from rnn.grid.jobs import finished, jobs_for
from rnn.grid.runner import run_jobs
from rnn.rules import RULES

TASKS = ("rdm", "cdi")


def replay(val_steps: list[int], val_acc: list[float], window: int, below: float,
           budget: int, rise: float | None = None) -> int | None:
    """The update at which a stall rule would stop this record, or None.

    The rule: every validation of the last ``window`` updates (at least 10 of
    them) is below ``below``; with ``rise``, also the best accuracy of the
    window's second half exceeds that of its first half by less than ``rise``
    (no progress)."""
    pairs = list(zip(val_steps, val_acc))
    for step in range(window, budget + 1, 10):
        recent = [(s, a) for s, a in pairs if step - window < s <= step]
        if len(recent) < 10 or max(a for _, a in recent) >= below:
            continue
        if rise is not None:
            half = step - window // 2
            first = [a for s, a in recent if s <= half]
            second = [a for s, a in recent if s > half]
            if not first or not second or max(second) - max(first) >= rise:
                continue
        return step
    return None


# the rules compared on the same records: (window, below, rise)
CANDIDATES = ((500, 0.6, None), (1000, 0.6, None), (1500, 0.6, None),
              (500, 0.55, None), (500, 0.6, 0.02), (1000, 0.6, 0.02), (1000, 0.6, 0.01))


def describe(window: int, below: float, rise: float | None) -> str:
    s = f"all < {below} for {window}"
    return s + (f", best rises < {rise}" if rise is not None else "")


def tally(records, window: int, below: float, rise: float | None):
    """(stopped, of those would have converged, converged with the rule,
    updates saved) over ``records`` = [(meta, history)]."""
    flagged = false_stop = after = saved = 0
    for meta, hist in records:
        conv = meta["status"] == "converged"
        stop = replay(hist["val_step"].tolist(), hist["val_acc"].tolist(), window, below,
                      meta["steps"], rise)
        if stop is not None:
            flagged += 1
            false_stop += conv
            saved += meta["steps"] - stop
        after += conv and stop is None
    return flagged, false_stop, after, saved


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--rule", default="heb", choices=RULES,
                    help="learning rule whose networks are trained and replayed (default heb)")
    ap.add_argument("--tasks", nargs="+", default=["rdm", "cdi"], choices=TASKS,
                    help="tasks, each trained at -v 0.5 (default: rdm cdi)")
    ap.add_argument("--seeds", type=int, default=20,
                    help="networks per task (default 20)")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seed of the first network; the others follow (default 0)")
    ap.add_argument("--window", type=int, default=500,
                    help="the stall rule replayed in the first table: updates every "
                         "validation must stay below --below (default 500, the training default)")
    ap.add_argument("--below", type=float, default=0.6,
                    help="accuracy a stalled network never reaches in the window (default 0.6)")
    ap.add_argument("--chunk", type=int, default=None,
                    help="networks per train_models.py --count run (default 4 on a CPU: a "
                         "Hebbian batch of 20 networks is memory-bound and ~3x slower per "
                         "network there; all --seeds on a GPU; a network is the same in any "
                         "chunk)")
    ap.add_argument("--workers", type=int, default=2, help="jobs at once (default 2)")
    ap.add_argument("--max-steps", type=int, default=None, help="cap (a quick check only)")
    add_device_arg(ap, "where to train (with cuda: one job of --seeds networks per task "
                       "unless --chunk is given, one worker)")
    ap.add_argument("--models-dir", default=None,
                    help="where the networks are kept and reused, so an interrupted run "
                         "resumes (default: experiments/networks/stall-RULE)")
    ap.add_argument("--only-analyse", action="store_true",
                    help="train nothing: replay the rules on the networks of these seeds "
                         "already finished (a partial table while a run is under way)")
    args = ap.parse_args()
    args.device = resolve_device(args.device)
    print(f"machine: {machine()}")
    d = Path(args.models_dir or ROOT / "experiments" / "networks" / f"stall-{args.rule}")
    d.mkdir(parents=True, exist_ok=True)
    rows, alt = [], []
    for task in args.tasks:
        t0 = time.time()
        # through the grid runner: chunks of --chunk networks, --workers at once
        # (one thread each: a Hebbian step is many small ops that 2 threads barely share)
        cell = Cell(task=task, rule=args.rule, networks=args.seeds, first_seed=args.first_seed,
                    stall_window=0, max_steps=args.max_steps,
                    chunk=args.chunk or (args.seeds if args.device == "cuda" else 4),
                    name=f"{args.rule}-stall-{task}")
        jobs = jobs_for(cell, d)
        n_new = sum(j.count for j in jobs)
        if n_new < args.seeds:
            print(f"[{task}] reusing {args.seeds - n_new} trained networks", flush=True)
        if jobs and args.only_analyse:
            print(f"[{task}] {n_new} of the {args.seeds} networks not trained yet: left out",
                  flush=True)
        elif jobs:
            print(f"[{task}] training {n_new} networks in {len(jobs)} job(s)", flush=True)
            _, failed = run_jobs(jobs, d, workers=1 if args.device == "cuda" else args.workers,
                                 threads=1, device=args.device)
            if failed:
                raise SystemExit(failed[0]["error"])
        found = finished(d, cell)
        seeds = [s for s in cell.seeds() if s in found]
        names = [found[s]["name"] for s in seeds]
        wall = time.time() - t0 if jobs and not args.only_analyse else "-"
        import torch
        records = [(json.loads((d / f"{nm}.json").read_text()),
                    torch.load(d / f"{nm}.pt", weights_only=True)["history"]) for nm in names]
        before = sum(m["status"] == "converged" for m, _ in records)
        flagged, false_stop, after, saved = tally(records, args.window, args.below, None)
        rows.append((task, len(names), before, flagged, false_stop, after, saved, wall))
        alt.append((task, before, len(names), [tally(records, *c) for c in CANDIDATES]))
        print(f"\n[{task}] every network: seed, status, updates, best validation accuracy, "
              f"first update at >= 0.6, update at which the stall rule would stop it "
              f"(best accuracy until then)")
        for seed, (m, h) in zip(seeds, records):
            acc, st = h["val_acc"].tolist(), h["val_step"].tolist()
            first = next((s for s, a in zip(st, acc) if a >= 0.6), None)
            best = f"{max(acc):.3f}" if acc else "-"
            stop = replay(st, acc, args.window, args.below, m["steps"])
            until = "-" if stop is None else \
                f"{stop} ({max(a for s, a in zip(st, acc) if s <= stop):.3f})"
            print(f"  {seed}  {m['status']:<9} {m['steps']:>5}  {best}  {first}  {until}")
    print(f"\nrule {args.rule}, -v 0.5, seeds {args.first_seed}-{args.first_seed + args.seeds - 1}, "
          f"stall rule: every validation of the last {args.window} updates below {args.below}")
    print("| task | networks | converged without the stall rule | stopped as stalled | "
          "of those, would have converged | converged with it | updates saved | "
          "wall time of this run's training (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(round(v)) if isinstance(v, float) else str(v) for v in r)
              + " |")
    print("\nthe same records under other stall rules (stopped / of those would have "
          "converged / converged with the rule / updates saved):")
    print("| rule | " + " | ".join(f"{t} (without: {b}/{n})" for t, b, n, _ in alt) + " |")
    print("|---|" + "---|" * len(alt))
    for i, c in enumerate(CANDIDATES):
        print(f"| {describe(*c)} | "
              + " | ".join(" / ".join(map(str, res[i])) for _, _, _, res in alt) + " |")
    print(f"networks kept in {d}")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(lambda argv: main())
