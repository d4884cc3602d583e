#!/usr/bin/env python
"""How much does PWCCA depend on how many directions each network brings?

    python experiments/pwcca_directions.py cdi_rate_bptt-ga.txt \\
        --models-dir experiments/networks/universality

Recomputes the PWCCA distances of a groups file's networks (this tool's
activity: x from 0, 10 levels per context) three ways and prints, for each,
the silhouette of all groups and of every pair (precomputed distances) and
the mean within- and between-group distance, as a markdown table:

* **pair** (this tool): each pair over the same number of directions from
  both networks, the top min(r_a, r_b) SVD directions of each;
* **own rank** (this tool before 2026-12-06): each network over its own
  numerical rank (every direction above rnn.analysis.metrics.RANK_TOL);
* **top K**: every network over its top K directions (``--dims``).

Canonical correlations between subspaces of unequal dimension can only rise
as one subspace grows; where one group's spectra decay more slowly than
another's, "own rank" places every network nearer the other group.  The
ranks of each group are printed above the table.  ``--out FILE`` also
writes the table and a JSON of it.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from experiments.svcca_variants import scores
from rnn.analysis.compare import load_group_models
from rnn.analysis.metrics import UNIT, Metric, pwcca_pairs, register
from rnn.analysis.similarity import pair_distances, represent
from rnn.analysis.svcca import SVCCAOptions
from rnn.cli import MODELS_DIR_HELP, Parser
from rnn.io import models_dir
from rnn.io.groups import read_groups

# each network over its own rank: the biased form, registered for this script only
OWN = register(Metric("pwcca_own_rank", "PWCCA (own rank)", "svd", UNIT,
                      pair=lambda p: pwcca_pairs(p, equal_dims=False)))


def top(rep, k: int):
    """The representation cut to its top ``k`` directions (all, where it has fewer)."""
    k = min(k, rep.r)
    return replace(rep, V=rep.V[:, :k], s=rep.s[:k], U=rep.U[:, :k], k=min(rep.k, k))


def variants(reps: list, dims: list[int]) -> dict[str, tuple[np.ndarray, list[int]]]:
    """name -> (distances, directions each network brings)."""
    out = {"pair: min(r_a, r_b) of each (this tool)":
           (pair_distances(reps, ["pwcca"])["pwcca"], [r.r for r in reps]),
           "own rank (before 2026-12-06)":
           (pair_distances(reps, [OWN.name])[OWN.name], [r.r for r in reps])}
    for k in dims:
        cut = [top(r, k) for r in reps]
        out[f"top {k}"] = (pair_distances(cut, ["pwcca"])["pwcca"], [r.r for r in cut])
    return out


def table(results: dict, order: list[str]) -> str:
    pairs = [f"{a} vs {c}" for i, a in enumerate(order) for c in order[i + 1:]]
    head = ["directions", "silhouette, all", *pairs, "within", "between"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v, r in results.items():
        lines.append("| " + " | ".join([v, f"{r['all']:.3f}", *[f"{r[p]:.3f}" for p in pairs],
                                        f"{r['within']:.4f}", f"{r['between']:.4f}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("groups", help="groups file in the models folder (two groups or more)")
    ap.add_argument("--dims", nargs="*", type=int, default=[5, 10, 20, 30],
                    metavar="K", help="also compare every network over its top K SVD "
                                      "directions, for each K (default: 5 10 20 30)")
    ap.add_argument("--models-dir", default=None, metavar="DIR", help=MODELS_DIR_HELP)
    ap.add_argument("--out", default=None, help="write the table here (and FILE.json)")
    args = ap.parse_args(argv)
    if any(k < 1 for k in args.dims):
        ap.error(f"--dims must be positive numbers of directions, got {args.dims}")
    directory = models_dir(args.models_dir)
    groups = read_groups([args.groups], directory, min_groups=2)
    models = load_group_models(groups, directory)
    labels = groups.label_of_each
    order = list(dict.fromkeys(labels))
    opts = SVCCAOptions()
    reps = [represent(opts.activity(lm.model, lm.task, lm.name), opts, "rank")
            for lm in models]
    ranks = {g: sorted(r.r for r, lab in zip(reps, labels) if lab == g) for g in order}
    results = {v: {**scores(D, labels), "directions": d}
               for v, (D, d) in variants(reps, args.dims).items()}
    text = ("Numerical ranks (directions above RANK_TOL): " +
            "; ".join(f"{g}: {', '.join(map(str, r))}" for g, r in ranks.items()) + "\n\n" +
            table(results, order))
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(
            {"ranks": ranks, "variants": results}, indent=1, default=float) + "\n")
        print(f"wrote {out}\nwrote {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(main)
