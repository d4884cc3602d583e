#!/usr/bin/env python
"""Tensor component analysis of the activity recorded during training.

    python train_models.py bptt_t -v 0.5 --N 2 --record-activity
    python tca_analysis.py bptt_t --rank 3

Fits a rank-R CP decomposition (tensortools' cp_als) to the recorded rates,
arranged as neurons x time-in-trial x (training record x probe trial), and
plots the neuron, time and trial factors (tensortools' plot_factors).
"""
from __future__ import annotations

import sys

import numpy as np

from rnn import validate as V
from rnn.errors import UserError
from rnn.cli import Parser, add_output_args, finish, run_cli
from rnn.io import atomic_write, ensure_writable, load_model, models_dir


def build_parser() -> Parser:
    p = Parser(prog="tca_analysis.py",
               description="Tensor component analysis (CP decomposition) of the hidden "
                           "activity a model recorded during training (--record-activity).",
               epilog="Example: python tca_analysis.py bptt_t --rank 3")
    p.add_argument("name", help="model name in the models folder")
    p.add_argument("--rank", type=int, default=3, help="number of components (default 3)")
    p.add_argument("--seed", type=int, default=0, help="random initialisation of cp_als")
    add_output_args(p, quiet="print only the files written")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    V.integer(args.rank, "--rank", 1)
    V.integer(args.seed, "--seed", 0, 2 ** 32 - 1)
    from rnn import plotting as plots
    plots.use_backend(args.show)
    import tensortools as tt

    from rnn.analysis.tca import activity_tensor
    directory = models_dir(args.models_dir)
    ensure_writable(directory, len(args.name))
    lm = load_model(args.name, directory)
    if "activity" not in lm.history or lm.history["activity"].numel() == 0:
        raise UserError(f"{args.name} has no activity record; train it with "
                        f"'train_models.py ... --record-activity'")
    X, updates, evidence = activity_tensor(lm.history)
    if args.rank > min(X.shape):
        raise UserError(f"--rank {args.rank} is more than the activity record's smallest "
                        f"dimension allows ({' x '.join(map(str, X.shape))}: at most "
                        f"{min(X.shape)})")
    res = tt.cp_als(X, rank=args.rank, verbose=False, random_state=args.seed)
    U = res.factors
    U.rebalance()
    fig, axes, _ = tt.plot_factors(U, plots=["bar", "line", "scatter"],
                                   scatter_kw={"s": 6})
    fig.set_size_inches(9, 1.8 * args.rank + 0.8)
    for ax, title in zip(np.atleast_2d(axes)[0], ("neuron factors", "time factors (every 10th step)",
                                   "trial factors (records x probe trials)")):
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"{args.name}: TCA rank {args.rank} (normalised error {res.obj:.3f}; "
                 f"{X.shape[2] // len(np.unique(evidence))} records)", fontsize=10)
    png = plots.save(fig, directory / f"{args.name}_tca_rank{args.rank}.png", keep_open=args.show)
    npz = directory / f"{args.name}_tca_rank{args.rank}.npz"
    atomic_write(npz, lambda f: np.savez(f, neuron=U[0], time=U[1], trial=U[2],
                                         trial_update=updates, trial_evidence=evidence,
                                         error=np.array(res.obj)))
    if not args.quiet:
        print(f"{args.name}: tensor {X.shape[0]} neurons x {X.shape[1]} time points x "
              f"{X.shape[2]} trials; rank {args.rank}, normalised reconstruction error "
              f"{res.obj:.4f}")
    return finish([png, npz], args.show)


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
