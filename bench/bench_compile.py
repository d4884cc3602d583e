#!/usr/bin/env python
"""Does torch.compile (the CPU inductor backend) cut BPTT's per-step overhead?

    python bench/bench_compile.py                # one thread, K = 1 and 25 steps per call
    python bench/bench_compile.py --chunks 1 10 50

Times the forward sweep of one BPTT update at the real size (500 trials x 750
steps, 50 units: per step the rates r = σ(2x) are stored for the backward
sweep and x ← (1 − dt)·x + dt·(drive_t + r·W_recᵀ)) three ways in one
process: eager PyTorch as rnn/model.py runs it, the same step compiled
(``torch.compile``, called once per step or once per K unrolled steps), and
the floor — the 750 products alone.  The compile time (first call) is
printed apart.  On this project's 2-core CPU (2026-12-02, one thread, beside
two one-thread trainings) compiling made the sweep slower, not faster:
eager 0.248 s, compiled per step 0.286 s (1.15x), compiled per 25 steps
0.302 s (1.22x; eager in 25-step calls 0.225 s), floor 0.048 s; the
compiled step also rounds differently (x differs from eager by 1e-7).
"""
from __future__ import annotations

import time

import torch

from bench.common import machine, median_time
from rnn.cli import Parser


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, nargs="+", default=[1, 25], metavar="K",
                    help="steps per compiled call to try (default 1 25; each must divide 750)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats, median (default 3)")
    args = ap.parse_args(argv)
    T, n, H, dt = 750, 500, 50, 0.1
    if any(k < 1 or T % k for k in args.chunks):
        ap.error(f"--chunks: each K must divide {T}")
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; {args.threads} thread(s)")
    gen = torch.Generator().manual_seed(0)
    Wt = (0.1 * torch.randn(1, H, H, generator=gen)).transpose(1, 2)
    drive = 0.1 * torch.randn(T, 1, n, H, generator=gen)

    def steps(k):
        def f(x, d, G):
            for i in range(k):
                r = torch.sigmoid(2 * x)
                G[i].copy_(r)
                x = x * (1 - dt) + dt * torch.baddbmm(d[i], r, Wt)
            return x
        return f

    def sweep(f, k):
        x, G = torch.zeros(1, n, H), torch.empty(T, 1, n, H)
        for t in range(0, T, k):
            x = f(x, drive[t:t + k], G[t:t + k])
        return x

    def floor():
        x, out = torch.zeros(1, n, H), torch.empty(1, n, H)
        for t in range(T):
            torch.baddbmm(drive[t], x, Wt, out=out)

    rows = [("floor: the 750 products alone", median_time(floor, args.repeat), None)]
    ref = sweep(steps(1), 1)
    for k in args.chunks:
        rows.append((f"eager, {k} step(s) per call", median_time(lambda: sweep(steps(k), k),
                                                               args.repeat), None))
        t0 = time.perf_counter()
        try:
            cf = torch.compile(steps(k), dynamic=False)
            out = sweep(cf, k)
        except Exception as e:                  # noqa: BLE001 (no compiler: say so, go on)
            print(f"compiled, {k} step(s) per call: failed ({type(e).__name__}: "
                  f"{str(e).splitlines()[0][:120]})")
            continue
        first = time.perf_counter() - t0
        dev = float((out - ref).abs().max())
        rows.append((f"compiled, {k} step(s) per call (largest difference in x from eager {dev:.1e})",
                     median_time(lambda: sweep(cf, k), args.repeat), first))
    base = rows[1][1]
    print("\n| forward sweep, 500 trials x 750 steps | seconds | vs eager per step | "
          "compile (first call), s |\n|---|---|---|---|")
    for what, sec, first in rows:
        print(f"| {what} | {sec:.3f} | {sec / base:.2f}x | "
              f"{'' if first is None else f'{first:.1f}'} |")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(main)
