#!/usr/bin/env python
"""What each architecture costs per update, against the rate network (issue 43).

    python bench/bench_arch.py                  # BPTT and GA, every architecture
    python bench/bench_arch.py --rules bptt --repeat 3

Prints, per rule and architecture, the median time of one update at the real
size (CDI, -v 0.5, 50 units; BPTT: 500 trials of 750 steps; GA: a population
of 20 on 500 shared trials), one validation (2000 trials) and the peak memory
above the set-up's (RSS, each in a fresh process), and each update's time as a ratio to the rate
network's, measured in the same run.  The rate network's BPTT is the
hand-written backward pass (rnn/rules/bptt.py); the other architectures'
is autograd.
"""
from __future__ import annotations

import resource

import torch

from bench.common import machine, median_time
from rnn.arch import ARCHS
from rnn.cli import Parser, add_device_arg, resolve_device
from rnn.rules import get
from rnn.training import ValidationSet
from tasks import ncdi


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def per_update(rule: str, arch: str, device: str, repeat: int, threads: int
               ) -> tuple[float, float, float]:
    """(update s, validation s, peak memory above the set-up's, MB), measured in a
    fresh process (the peak of one architecture must not hide another's)."""
    torch.set_num_threads(threads)
    task = ncdi(2, 0.5)
    cfg = get(rule).make_config(task, None)
    trainer = get(rule).make(cfg, task, [0], device, None, None, arch)
    val = ValidationSet.make(task, [0], trainer.model.hidden, device)
    idx = torch.tensor([0], device=device)
    before = _rss_mb()
    t_step = median_time(lambda: trainer.step(idx), repeat=repeat)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    t_val = median_time(lambda: val.accuracy(trainer.model, idx), repeat=repeat)
    return t_step, t_val, grew


def measured(*args) -> tuple[float, float, float]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(per_update, *args).result()


def main():
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=["bptt", "ga"], choices=("bptt", "ga"),
                    help="rules to time (default bptt ga)")
    ap.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS,
                    help="architectures (default all; the rate network is the baseline)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed updates per figure, the median reported (default 5)")
    add_device_arg(ap, "where to measure")
    args = ap.parse_args()
    args.device = resolve_device(args.device)
    print(f"machine: {machine()}")
    archs = ["rate"] + [a for a in args.archs if a != "rate"]
    print("| rule | architecture | update (s) | vs rate | validation (s) | peak RSS growth "
          "(MB) |")
    print("|---|---|---|---|---|---|")
    for rule in args.rules:
        base = None
        for arch in archs:
            t, v, mb = measured(rule, arch, args.device, args.repeat, torch.get_num_threads())
            base = base or t
            print(f"| {rule} | {arch} | {t:.3f} | {t / base:.2f}× | {v:.3f} | {mb:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
