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
e-prop and RFLO; 100 Hebbian; G = 20 on CDI.)  With ``--arch`` a discrete-time
architecture (BPTT and the GA only, the rules that train one) has each
product's output widened to its gates' rows, [H, g·H] (g = 1 vanilla, 3 GRU,
4 LSTM; rnn.arch.GATES), and its φ pass covers every gate's nonlinearity
(H, 3H, 5H values per state: the LSTM's tanh of its cell too).  full-FORCE is left out: its
update is one trial of vector operations, whose floor is the dispatch of its
steps rather than arithmetic.  The ratio update / floor says how much of an
update is spent outside the arithmetic it needs.  Each figure is the median of
--repeat calls after one warm-up; the ratio is measured in one run, so it
holds on a loaded machine better than either time does.

With ``--bound`` two more costs that no eager implementation of the same
update avoids are measured, to say how far the floor is reachable at all:

    φ pass    the nonlinearity of every state once per step: T calls of σ
              (or relu) on [G, n, H] -- σ(2x) is the cheapest exact form of
              both tanh activations; the equations need each rate, and the
              backward pass's derivative is not counted
    dispatch  the tensor operations one update issues (counted by a
              TorchDispatchMode, views included), each at the cost of the
              cheapest operation there is (an in-place add of 1-element
              tensors): a lower bound of the per-operation overhead

update / bound is then the update over floor + φ pass + dispatch: what a
faster update could still gain without issuing fewer operations.
"""
from __future__ import annotations

import os

import torch

from bench.common import machine, median_time
from rnn.arch import GATES
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


# values per state that pass through a nonlinearity, in units of H
PHI_WIDTH = {"rate": 1, "vanilla": 1, "gru": 3, "lstm": 5}


def floor_of(rule: str, T: int, H: int, cfg, arch: str = "rate") -> callable:
    g = GATES.get(arch, 1)
    if rule == "bptt":
        return products((1, cfg.batch, H), (1, H, g * H), 3 * T)
    if rule == "ga":
        return products((cfg.population, cfg.batch, H), (cfg.population, H, g * H), T)
    if arch != "rate":
        raise ValueError(f"no floor for {rule!r} on a {arch} network")
    if rule == "heb":
        steps = products((1, cfg.batch, H), (1, H, H), T)
        elig = products((1, H, T * cfg.batch), (1, T * cfg.batch, H), 1)
        return lambda: (steps(), elig())
    if rule in ("eprop", "rflo"):
        steps = products((1, cfg.batch, H), (1, H, H), T)
        trace = products((1, 1, T), (1, T, cfg.batch * H), 1)
        return lambda: (steps(), trace())
    raise ValueError(f"no floor for {rule!r}")


def activation_pass(rule: str, T: int, H: int, cfg, activation: str,
                    arch: str = "rate") -> callable:
    """T calls of the rule's nonlinearity on one step's states (every gate's,
    ``PHI_WIDTH``), into a preallocated output."""
    G = cfg.population if rule == "ga" else 1
    x = torch.randn(G, cfg.batch, PHI_WIDTH[arch] * H)
    out = torch.empty_like(x)
    # both tanh forms are σ(2x) up to an affine map (rnn.model.RateRNN.recurrence):
    # σ is the cheapest exact form of the nonlinearity
    op = torch.relu if activation == "relu" else torch.sigmoid

    def run():
        for _ in range(T):
            op(x, out=out)
    return run


def count_ops(fn) -> int:
    """Tensor operations that ``fn()`` dispatches (views and copies included)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))
    with Count():
        fn()
    return Count.n


def cheapest_op_seconds(repeat: int) -> float:
    """Wall time of one in-place add of two 1-element tensors (median over
    ``repeat`` loops of 20 000)."""
    a, b = torch.zeros(1), torch.ones(1)
    k = 20_000

    def run():
        for _ in range(k):
            a.add_(b)
    return median_time(run, repeat) / k


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=list(FLOORED), choices=FLOORED,
                    help="rules to measure (default: all with a floor)")
    ap.add_argument("--arch", default="rate", choices=("rate", *GATES),
                    help="the network (default rate); another than rate measures BPTT and "
                         "the GA only, the rules that train it")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per figure (default 5)")
    ap.add_argument("--bound", action="store_true",
                    help="also measure the φ pass and the dispatch of the update's "
                         "operations, and the update over floor + both (see above)")
    ap.add_argument("--plain-rng-too", action="store_true",
                    help="also time each update with the plain torch random-number path "
                         "(RNN_PLAIN_RNG=1; the same numbers), in the same process")
    args = ap.parse_args()
    if args.arch != "rate":
        args.rules = [r for r in args.rules if r in ("bptt", "ga")]
    torch.set_num_threads(args.threads)
    task = ncdi(2, 0.5)
    print(f"machine: {machine()}")
    print(f"CDI task (T = {task.steps}), {args.arch} network of 50 units, float32, "
          f"{args.threads} thread(s); median of {args.repeat}\n")
    extra = " plain-RNG update (s) | fused / plain |" if args.plain_rng_too else ""
    per_op = None
    if args.bound:
        per_op = cheapest_op_seconds(args.repeat)
        print(f"cheapest operation (in-place add, 1 element): {per_op * 1e6:.2f} µs\n")
        extra = (" φ pass (s) | operations | their dispatch ≥ (s) | update / (floor + φ + "
                 "dispatch) |") + extra
    ncol = extra.count("|")
    print("| rule | one update (s) | its floor (s) | update / floor | update / BPTT's |" + extra)
    print("|---|---|---|---|---|" + "---|" * ncol)
    base = None
    for rule in args.rules:
        rec = get(rule)
        cfg = rec.make_config(task)
        tr = rec.make(cfg, task, [0], "cpu", arch=args.arch)
        H = getattr(tr.model, "units", tr.model.hidden)      # an LSTM's state is 2H
        idx = torch.arange(1)
        t_up = median_time(lambda: tr.step(idx), args.repeat)
        t_fl = median_time(floor_of(rule, task.steps, H, cfg, args.arch), args.repeat)
        base = t_up if rule == "bptt" else base
        rel = "" if base is None else f"{t_up / base:.2f}"
        row = f"| {rule} ({rec.unit}) | {t_up:.3f} | {t_fl:.3f} | {t_up / t_fl:.1f}x | {rel} |"
        if args.bound:
            t_phi = median_time(activation_pass(rule, task.steps, H, cfg,
                                                tr.model.activation, args.arch), args.repeat)
            ops = count_ops(lambda: tr.step(idx))
            t_disp = ops * per_op
            row += (f" {t_phi:.3f} | {ops} | {t_disp:.3f} | "
                    f"{t_up / (t_fl + t_phi + t_disp):.1f}x |")
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
