#!/usr/bin/env python
"""The step-map solver's Jacobian: closed form against automatic differentiation.

    python -m bench.bench_step_jacobian                 # vanilla, GRU, LSTM on CDI
    python -m bench.bench_step_jacobian --archs lstm --repeat 5

For one committed BPTT network of each architecture (the universality grid's
CDI cells, seed 40000), in one process: the time for ∂f/∂h at B states (the
task's 'small' static inputs × 200 starts, the solver's batch) in closed form
(rnn.arch.StepMap.jacobian) and by ``vmap(jacrev)`` (what the solver used
before), their largest difference, and the wall time of the network's whole
fixed-point analysis (rnn.analysis.fixed_points.task_fixed_points, 'small')
both ways, with the count of roots and of stable roots each way, which must
agree.  Ratios are measured in one run, so they hold on a loaded machine
better than the times do.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import torch

from bench.common import ROOT, machine, median_time
from rnn.cli import Parser

NETWORKS = ROOT / "experiments" / "networks" / "universality"
NAME = "cdi-bptt-{}-v050-clean_s40000_000"


@contextmanager
def autograd_jacobian():
    """The solver without the closed form: StepMap.jacobian hidden for the block."""
    from rnn.arch import StepMap
    saved = StepMap.jacobian
    StepMap.jacobian = None
    try:
        yield
    finally:
        StepMap.jacobian = saved


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=["vanilla", "gru", "lstm"],
                    choices=["vanilla", "gru", "lstm"], help="architectures to time")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed calls of the Jacobian alone (median; default 3)")
    args = ap.parse_args(argv)
    import numpy as np

    from rnn.analysis.fixed_points import SolverConfig, task_fixed_points
    from rnn.analysis.step_fixed_points import step_jacobian
    from rnn.io import load_model
    print(machine())
    cfg = SolverConfig()
    rows = []
    for arch in args.archs:
        lm = load_model(NAME.format(arch), NETWORKS)
        model, task = lm.model, lm.task
        step = model.step_map(0)
        st = task.static_inputs("small")
        K, S = len(st.values), cfg.n_box + cfg.n_traj
        gen = torch.Generator().manual_seed(0)
        h = 0.5 * torch.randn(K * S, model.hidden, dtype=torch.float64, generator=gen)
        u = torch.as_tensor(np.asarray(st.values, dtype=np.float64)).repeat_interleave(S, 0)
        closed = step_jacobian(step, h, u)
        with autograd_jacobian():
            auto = step_jacobian(step, h, u)
            t_auto = median_time(lambda: step_jacobian(step, h, u), args.repeat)
        t_closed = median_time(lambda: step_jacobian(step, h, u), args.repeat)
        diff = float((closed - auto).abs().max())
        t = time.perf_counter()
        fp_c = task_fixed_points(model, task, "small", cfg)
        f_closed = time.perf_counter() - t
        with autograd_jacobian():
            t = time.perf_counter()
            fp_a = task_fixed_points(model, task, "small", cfg)
            f_auto = time.perf_counter() - t
        counts = [(len(f.residual), int(f.is_stable.sum())) for f in (fp_c, fp_a)]
        rows.append((arch, K * S, t_auto, t_closed, diff, f_auto, f_closed, counts))
        print(f"{arch}: done", flush=True)
    print(f"\nCDI 'small' static inputs, {cfg.n_box + cfg.n_traj} starts each; "
          f"Jacobian alone: median of {args.repeat}\n")
    print("| network | B states | Jacobian autograd (s) | closed form (s) | ratio | max diff "
          "| fixed points autograd (s) | closed form (s) | ratio | roots (stable) autograd / "
          "closed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for arch, B, ta, tc, d, fa, fc, counts in rows:
        (nc, sc), (na, sa) = counts
        print(f"| {arch} | {B} | {ta:.3f} | {tc:.3f} | {ta / tc:.1f}× | {d:.1e} | {fa:.1f} | "
              f"{fc:.1f} | {fa / fc:.1f}× | {na} ({sa}) / {nc} ({sc}) |")
    bad = [r[0] for r in rows if r[7][0] != r[7][1]]
    if bad:
        print(f"\nthe root counts differ for {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
