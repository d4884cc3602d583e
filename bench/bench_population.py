#!/usr/bin/env python
"""Population training speed (issue 8).

    python bench/bench_population.py                   # CPU: populations of 1 and 4
    python bench/bench_population.py --device cuda --sizes 1 16 64 256
    python bench/bench_population.py --device cuda --train 64   # + wall time for 64 CDI nets

Prints the median time of one update for a population of P networks (each
with its own batch of 500 trials for BPTT; for GA, P runs of 20 members), per
update and per network, and optionally the wall time for P BPTT networks on
the CDI task at -v 0.5 to all reach the stop rule.
"""
from __future__ import annotations

import time

import torch

from bench.common import machine, median_time
from rnn.cli import Parser, add_device_arg, resolve_device
from rnn.rules import RULES, get
from rnn.training import ValidationSet, fit
from tasks import ncdi


def main():
    ap = Parser(description=__doc__.splitlines()[0])
    add_device_arg(ap, "where to measure")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4],
                    help="population sizes P to time (default 1 4)")
    ap.add_argument("--rules", nargs="+", default=["bptt"], choices=RULES,
                    help="rules to time (default bptt)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed updates per figure, the median reported (default 5)")
    ap.add_argument("--train", type=int, default=0, metavar="P",
                    help="also train P BPTT CDI networks to the stop rule and report wall time")
    args = ap.parse_args()
    args.device = resolve_device(args.device)
    print(f"machine: {machine()}")
    task = ncdi(2, 0.5)
    for rule in args.rules:
        for P in args.sizes:
            cfg = get(rule).make_config(task, None)
            tr = get(rule).make(cfg, task, list(range(P)), args.device)
            idx = torch.arange(P, device=args.device)

            def one():
                tr.step(idx)
                if args.device == "cuda":
                    torch.cuda.synchronize()
            t = median_time(one, repeat=args.repeat)
            print(f"[{rule}] population {P:4d}: {t:.3f} s per update, {t / P:.4f} s per network")
    if args.train:
        P = args.train
        cfg = get("bptt").make_config(task, None)
        seeds = list(range(1000, 1000 + P))
        tr = get("bptt").make(cfg, task, seeds, args.device)
        val = ValidationSet.make(task, seeds, tr.model.hidden, args.device)
        t = time.perf_counter()
        res = fit(tr, val, cfg.max_steps, quiet=False)
        wall = time.perf_counter() - t
        done = sum(s == "converged" for s in res.status)
        print(f"[bptt] {P} CDI networks at -v 0.5: {done}/{P} reached the stop rule; wall "
              f"{wall:.1f} s; steps per network min {min(res.steps_run)} / median "
              f"{sorted(res.steps_run)[P // 2]} / max {max(res.steps_run)}")


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(lambda argv: main())
