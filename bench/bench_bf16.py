#!/usr/bin/env python
"""Could bfloat16 products speed up the recurrent step on this CPU?

    python bench/bench_bf16.py [--repeat 5] [--members 20]

Times, in one process, the recurrent product of one step of a GA generation
(``members`` networks × 500 trials, [M, 500, 50] × [M, 50, 50]) repeated for
``--steps`` steps: in float32; in bfloat16 with a bfloat16 result; and in
bfloat16 as a float32 step would need it (the rates cast to bfloat16 before,
the product cast back to float32 after).  It also says whether this torch can
return a float32 product of bfloat16 operands on the CPU (``out_dtype``),
which a float32 state with float32 accumulation would need, and how far a
bfloat16 result is from the float32 one.
"""
from __future__ import annotations

import torch

from bench.common import machine, median_time
from rnn.cli import Parser


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per figure (default 5)")
    ap.add_argument("--members", type=int, default=20, help="networks at once (default 20)")
    ap.add_argument("--steps", type=int, default=200, help="products per call (default 200)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    gen = torch.Generator().manual_seed(0)
    M, n, H = args.members, 500, 50
    g = torch.rand(M, n, H, generator=gen)
    W = torch.randn(M, H, H, generator=gen) / H ** 0.5
    gb, Wb = g.bfloat16(), W.bfloat16()
    out = torch.empty(M, n, H)

    def f32():
        for _ in range(args.steps):
            torch.bmm(g, W, out=out)

    def bf16():
        for _ in range(args.steps):
            torch.bmm(gb, Wb)

    def bf16_cast():
        for _ in range(args.steps):
            out.copy_(torch.bmm(g.bfloat16(), Wb))

    t = {name: median_time(fn, args.repeat) for name, fn in
         (("float32", f32), ("bfloat16", bf16), ("bfloat16, cast in and out", bf16_cast))}
    try:
        torch.bmm(gb, Wb, out_dtype=torch.float32)
        supported = "yes"
    except (RuntimeError, TypeError, NotImplementedError):
        supported = "no"
    ref = torch.bmm(g.double(), W.double())
    err32 = float((torch.bmm(g, W).double() - ref).abs().max() / ref.abs().max())
    err16 = float((torch.bmm(gb, Wb).double() - ref).abs().max() / ref.abs().max())
    print(f"{args.steps} products [{M}, {n}, {H}] x [{M}, {H}, {H}], median of {args.repeat}:")
    print("| product | seconds | float32 / this |\n|---|---|---|")
    for name, s in t.items():
        print(f"| {name} | {s:.3f} | {t['float32'] / s:.2f} |")
    print(f"float32 result of bfloat16 operands on this CPU (bmm out_dtype): {supported}")
    print(f"largest error relative to the largest entry: float32 {err32:.1e}, "
          f"bfloat16 {err16:.1e}")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(main)
