#!/usr/bin/env python
"""Each rule's update at its real size beside its floor, in one process.

    python bench/bench_floor.py                      # CDI task, -v 0.5, one thread
    python bench/bench_floor.py --threads 2 --repeat 9 --rules bptt ga

The floor of an update is the matrix products it cannot avoid, timed alone on
tensors of the same shapes (preallocated outputs, nothing else):

    bptt   3 x T products [n, H] @ [H, H]: the forward step, the backward
           step, and the gradient's share (the gradient is accumulated in
           blocks, the same arithmetic as one product per step)
    ga     T batched products [G, n, H] @ [G, H, H] (G members, one batch)
    heb    T products [n, H] @ [H, H] and the eligibility contraction
           [H, T*n] @ [T*n, H]
    eprop, rflo   T products [n, H] @ [H, H] and the trace sum [T] @ [T, n*H]

(T = 750 steps, H = 50 units, n the rule's trials per update: 500 BPTT, GA,
e-prop and RFLO; 100 Hebbian; G = 20 on CDI.)  full-FORCE is left out: its
update is one trial of vector operations, whose floor is the dispatch of its
steps rather than arithmetic.  The ratio update / floor says how much of an
update is spent outside the arithmetic it needs.  Each figure is the median of
--repeat calls after one warm-up; the ratio is measured in one run, so it
holds on a loaded machine better than either time does.
"""
from __future__ import annotations

import os

import torch

from bench.common import machine, median_time
from rnn.cli import Parser
from rnn.rules import get
from tasks import ncdi

FLOORED = ("bptt", "ga", "heb", "eprop", "rflo")


def products(shape_x, shape_m, count: int):
    """A function running ``count`` products x @ M into a preallocated output."""
    x, M = torch.randn(*shape_x), torch.randn(*shape_m) * 0.1
    out = torch.empty(*shape_x[:-1], shape_m[-1])
    op = torch.bmm if x.dim() == 3 else torch.matmul

    def run():
        for _ in range(count):
            op(x, M, out=out)
    return run


def floor_of(rule: str, T: int, H: int, cfg) -> callable:
    if rule == "bptt":
        return products((1, cfg.batch, H), (1, H, H), 3 * T)
    if rule == "ga":
        return products((cfg.population, cfg.batch, H), (cfg.population, H, H), T)
    if rule == "heb":
        steps = products((1, cfg.batch, H), (1, H, H), T)
        elig = products((1, H, T * cfg.batch), (1, T * cfg.batch, H), 1)
        return lambda: (steps(), elig())
    if rule in ("eprop", "rflo"):
        steps = products((1, cfg.batch, H), (1, H, H), T)
        trace = products((1, 1, T), (1, T, cfg.batch * H), 1)
        return lambda: (steps(), trace())
    raise ValueError(f"no floor for {rule!r}")


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=list(FLOORED), choices=FLOORED,
                    help="rules to measure (default: all with a floor)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per figure (default 5)")
    ap.add_argument("--plain-rng-too", action="store_true",
                    help="also time each update with the plain torch random-number path "
                         "(RNN_PLAIN_RNG=1; the same numbers), in the same process")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = ncdi(2, 0.5)
    print(f"machine: {machine()}")
    print(f"CDI task (T = {task.steps}), 50 units, float32, {args.threads} thread(s); "
          f"median of {args.repeat}\n")
    extra = " plain-RNG update (s) | fused / plain |" if args.plain_rng_too else ""
    print("| rule | one update (s) | its floor (s) | update / floor | update / BPTT's |" + extra)
    print("|---|---|---|---|---|" + ("---|---|" if args.plain_rng_too else ""))
    base = None
    for rule in args.rules:
        rec = get(rule)
        cfg = rec.make_config(task)
        tr = rec.make(cfg, task, [0], "cpu")
        idx = torch.arange(1)
        t_up = median_time(lambda: tr.step(idx), args.repeat)
        t_fl = median_time(floor_of(rule, task.steps, tr.model.hidden, cfg), args.repeat)
        base = t_up if rule == "bptt" else base
        rel = "" if base is None else f"{t_up / base:.2f}"
        row = f"| {rule} ({rec.unit}) | {t_up:.3f} | {t_fl:.3f} | {t_up / t_fl:.1f}x | {rel} |"
        if args.plain_rng_too:
            from rnn.rng import PLAIN_ENV
            os.environ[PLAIN_ENV] = "1"
            t_plain = median_time(lambda: tr.step(idx), args.repeat)
            del os.environ[PLAIN_ENV]
            row += f" {t_plain:.3f} | {t_up / t_plain:.2f} |"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(lambda argv: main())
