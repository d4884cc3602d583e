#!/usr/bin/env python
"""Training speed of the learning rules at the real size (issues 2 and 3).

    python bench/bench_training.py                 # all rules, timings + trained networks
    python bench/bench_training.py --rules bptt --seeds 3
    python bench/bench_training.py --quick         # per-update timings only

Prints, per rule: the median time of one update at the real size (BPTT: batch
500 x 750 steps, 50 units; GA: population 20, batch 500; full-FORCE: one
750-step trial), the median time of one validation (2000 trials), and, unless
--quick, the wall time for CDI networks at -v 0.5 to reach the stop rule.
"""
from __future__ import annotations


import torch

from bench.common import machine, median_time, train_to_stop
from rnn.cli import Parser, add_device_arg, resolve_device
from rnn.rules import RULES, get
from rnn.training import ValidationSet
from tasks import ncdi

REFERENCE = {  # the original research code on this kind of 2-core machine (from the issues)
    "bptt": "original: ~1.1 s per step (incl. validation every step), ~220 s per CDI network",
    "ga": "original: ~4.7 s per generation; had not reached 0.72 accuracy after 58 generations",
    "ff": "original: not measured",
    "heb": "original: trained in a separate C++ program",
    "eprop": "original: none (not in the original study)",
    "rflo": "original: none (not in the original study)",
}


def per_update(rule: str, device: str, repeat: int) -> tuple[float, float]:
    task = ncdi(2, 0.5)
    cfg = get(rule).make_config(task, None)
    trainer = get(rule).make(cfg, task, [0], device)
    val = ValidationSet.make(task, [0], trainer.model.hidden, device)
    idx = torch.tensor([0], device=device)
    t_step = median_time(lambda: trainer.step(idx), repeat=repeat)
    t_val = median_time(lambda: val.accuracy(trainer.model, idx), repeat=repeat)
    return t_step, t_val


def main():
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=["bptt", "ga", "ff"], choices=RULES,
                    help="rules to time (default bptt ga ff)")
    ap.add_argument("--seeds", type=int, default=None,
                    help="networks to train per rule (default: 3 BPTT, 2 GA/FF)")
    ap.add_argument("--quick", action="store_true", help="per-update timings only")
    add_device_arg(ap, "where to measure")
    ap.add_argument("--repeat", type=int, default=7,
                    help="timed updates per figure, the median reported (default 7)")
    args = ap.parse_args()
    args.device = resolve_device(args.device)
    print(f"machine: {machine()}")
    unit = {name: get(name).unit for name in args.rules}
    for rule in args.rules:
        t_step, t_val = per_update(rule, args.device, args.repeat)
        print(f"\n[{rule}] CDI task, -v 0.5")
        print(f"  one {unit[rule]} (median of {args.repeat}):      {t_step:.3f} s")
        print(f"  one validation, 2000 trials:        {t_val:.3f} s")
        print(f"  {unit[rule]} + its validation:             {t_step + t_val:.3f} s")
        print(f"  ({REFERENCE[rule]})")
        if args.quick:
            continue
        n = args.seeds or (3 if rule == "bptt" else 2)
        for seed in range(n):
            res, _ = train_to_stop(rule, ncdi(2, 0.5), seed, args.device)
            h = res.history
            steps = res.steps_run[0]
            print(f"  seed {seed}: {res.status[0]} at {unit[rule]} {steps}, accuracy "
                  f"{res.final_acc[0]:.3f}, {res.wall_time:.1f} s wall "
                  f"({res.wall_time / steps:.3f} s per {unit[rule]} incl. validation; "
                  f"{len(h.val_steps[0])} validations for {steps} {unit[rule]}s)")


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(lambda argv: main())
