#!/usr/bin/env python
"""Does the answer depend on the metric?  Compare networks by several similarity metrics.

    python similarity_analysis.py sample.txt                          # all five metrics
    python similarity_analysis.py sample.txt --metrics svcca cka procrustes
    python similarity_analysis.py sample.txt --analysis original      # the original's activity

On the activity svcca_analysis.py uses (the same probe inputs and analysis
flags), computes for each metric the pairwise distance matrix, the silhouette
of the groups with its 95% bootstrap interval and permutation p-value, the mean
distances within and between groups and an MDS embedding; then one summary
figure with the metrics side by side.  Metrics:

  svcca       1 - mean canonical correlation of the top SVD directions (as svcca_analysis.py)
  pwcca       projection-weighted CCA (Morcos et al. 2018), 1 - weighted mean correlation
  cka         1 - linear CKA (Kornblith et al. 2019)
  procrustes  angular Procrustes shape distance (Williams et al. 2021); --alpha < 1 partially
              whitens first (alpha 0: arccos of the mean canonical correlation)
  dsa         Dynamical Similarity Analysis (Ostrow et al. 2023, the dsa-metric library):
              delay-embedded DMD operators compared up to a similarity transform

Distances are cached per metric and analysis in the models folder
(similarity_METRIC_cache_*.json; SVCCA shares svcca_analysis.py's cache), keyed
by the networks' weights.
"""
from __future__ import annotations

import sys

import numpy as np

from rnn.analysis_args import add_analysis_args, add_bootstrap_arg, options_from_args
from rnn.errors import UserError
from rnn.cli import Parser, add_output_args, finish, finite_float, run_cli
from rnn.io.groups import add_groups_argument
from rnn.io import atomic_write, atomic_write_text, dumps_strict, ensure_writable, models_dir
from rnn.analysis.metrics import METRICS



def build_parser() -> Parser:
    from rnn.analysis.similarity import DSAOptions
    d = DSAOptions()
    p = Parser(prog="similarity_analysis.py",
               description="Distances between the networks of a groups file under several "
                           "similarity metrics, with the silhouette of the groups (bootstrap "
                           "interval, permutation p) under each.",
               epilog="Example: python similarity_analysis.py sample.txt --metrics svcca cka "
                      "procrustes dsa")
    add_groups_argument(p)
    p.add_argument("--metrics", nargs="+", default=list(METRICS), metavar="METRIC",
                   help=f"metrics to compute, any of {', '.join(METRICS)} (default: all; "
                        f"dsa fits a DMD operator per network, about a second each)")
    p.add_argument("--alpha", type=finite_float, default=1.0,
                   help="partial whitening of the procrustes metric, in [0, 1] (default 1: "
                        "Procrustes; 0: fully whitened, CCA-like)")
    g = p.add_argument_group("DSA (dsa-metric) settings")
    g.add_argument("--dsa-delays", type=int, default=d.n_delays, metavar="K",
                   help=f"delays in the Hankel embedding (default {d.n_delays})")
    g.add_argument("--dsa-interval", type=int, default=d.delay_interval, metavar="S",
                   help=f"steps between delays (default {d.delay_interval})")
    g.add_argument("--dsa-rank", type=int, default=d.rank, metavar="R",
                   help=f"rank of the fitted DMD operator (default {d.rank})")
    g.add_argument("--dsa-score", choices=("wasserstein", "angular"), default=d.score,
                   help="wasserstein (default): optimal-transport distance between the "
                        "operators' eigenvalues; angular: angle after the best rotation, "
                        f"optimised per pair ({d.iters} steps; seconds per pair on a CPU)")
    p.add_argument("-reload", "--reload", action="store_true", dest="reload",
                   help="recompute every distance even if a matching cache exists")
    add_analysis_args(p)
    add_bootstrap_arg(p)
    add_output_args(p, quiet="no progress bars")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    opts = options_from_args(args)
    from rnn.analysis.similarity import DSAOptions
    metrics = list(dict.fromkeys(args.metrics))
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise UserError(f"unknown metric {bad[0]!r}; choose from {', '.join(METRICS)}")
    if not 0 <= args.alpha <= 1:
        raise UserError(f"--alpha must be in [0, 1], got {args.alpha}")
    try:
        dsa = DSAOptions(args.dsa_delays, args.dsa_interval, args.dsa_rank, args.dsa_score)
    except ValueError as e:
        raise UserError(str(e)) from None
    from rnn import plotting as plots
    plots.use_backend(args.show)
    from tqdm import tqdm

    from rnn.analysis.compare import cluster_distances, compare_groups, fmt_score, load_group_models
    from rnn.analysis.fixed_points import weights_hash
    from rnn.io.groups import read_groups

    directory = models_dir(args.models_dir)
    groups = read_groups(args.groups, directory)
    models = load_group_models(groups, directory)
    stem = "+".join(a.rsplit("/", 1)[-1].removesuffix(".txt") for a in args.groups)
    ensure_writable(directory, len(stem) + len("_procrustes_distances.json"))
    names, labels = groups.names, groups.label_of_each
    if "dsa" in metrics and models[0].task.steps < (dsa.n_delays - 1) * dsa.delay_interval + 2:
        raise UserError(f"the DSA delay embedding ({dsa.n_delays} delays x "
                        f"{dsa.delay_interval} steps) is longer than a trial "
                        f"({models[0].task.steps} steps)")
    hashes = [weights_hash(lm.model) for lm in models]
    results = compare_groups(
        models, labels, metrics, opts, directory, order=groups.labels, n_boot=args.bootstrap,
        balanced=True, alpha=args.alpha, dsa=dsa, keys=hashes, reload=args.reload,
        progress=lambda it, desc: tqdm(it, desc=desc, disable=args.quiet, leave=False))

    written, rows = [], []
    print(f"networks: {len(names)} in {len(groups.labels)} group(s) "
          f"({', '.join(f'{g}: {len(m)}' for g, m in zip(groups.labels, groups.members))}); "
          f"activity: {opts.label()} analysis")
    for m in metrics:
        cmp = results[m]
        res, D = cmp.result, cmp.distances
        if res.computed:
            written.append(str(res.cache.path))
        d_path = directory / f"{stem}_{m}_distances.npy"
        atomic_write(d_path, lambda f, D=D: np.save(f, D))
        written.append(str(d_path))
        rows.append({**cmp.row(), "computed_networks": res.computed, "new_pairs": res.new_pairs,
                     "noise_floor_mean": float(np.mean(res.noise_floor)),
                     "mds_embedding": cluster_distances(D, labels).embedding.tolist()})

    panels = len(metrics) + 1                    # an MDS per metric, then the silhouettes
    cols = min(3, panels)
    fig, axes = plots.new_figure(cols, -(-panels // cols), width=4.0, height=3.7)
    flat = axes.ravel()
    for ax, row in zip(flat, rows):
        plots.plot_groups_embedding(ax, np.array(row["mds_embedding"]), labels, names,
                                f"{row['label']}: silhouette {fmt_score(row['silhouette'])}",
                                annotate=False)
    plots.plot_metric_silhouettes(flat[len(rows)], rows)
    for ax in flat[panels:]:
        ax.set_visible(False)
    fig.tight_layout()
    written.append(plots.save(fig, directory / f"{stem}_similarity.png", keep_open=args.show))
    summary = {"groups_files": args.groups, "names": names, "labels": labels,
               "analysis": opts.to_dict(), "alpha": args.alpha,
               "dsa": None if "dsa" not in metrics else {**dsa.__dict__,
                                                         "library": _dsa_version()},
               "resamples": args.bootstrap, "metrics": rows}
    s_path = directory / f"{stem}_similarity_summary.json"
    atomic_write_text(s_path, dumps_strict(summary))
    written.append(str(s_path))

    w = max(len(r["label"]) for r in rows)
    unequal = len({len(m) for m in groups.members}) > 1

    def fmt_sil(r, key, ci, p):
        if r[key] is None:
            return "n/a (one group)"
        return f"{r[key]:6.3f}" + (f" [{r[ci][0]:6.3f}, {r[ci][1]:6.3f}]  p {r[p]:<7.3g}"
                                   if args.bootstrap else "")
    print(f"{'metric':<{w}}  within     between    silhouette [95% interval], permutation p"
          + ("   balanced silhouette (groups weighted equally)" if unequal else ""))
    for r in rows:
        btw = "n/a" if r["mean_between_group_distance"] is None else \
            f"{r['mean_between_group_distance']:.4g}"
        line = (f"{r['label']:<{w}}  {r['mean_within_group_distance']:<9.4g}  {btw:<9}  "
                + fmt_sil(r, "silhouette", "silhouette_interval_95", "silhouette_permutation_p"))
        if unequal:
            line += "   " + fmt_sil(r, "balanced_silhouette", "balanced_interval_95",
                                    "balanced_permutation_p")
        print(line)
    if opts.x0 == "random":
        print("noise floor (each network against itself, two draws of the starts): " +
              ", ".join(f"{r['label']} {r['noise_floor_mean']:.4f}" for r in rows))
    fresh = [f"{r['label']} {r['new_pairs']}" for r in rows if r["computed_networks"]]
    print("pairs computed now: " + (", ".join(fresh) if fresh else
                                    "none (all cached; -reload recomputes)"))
    return finish(written, args.show)


def _dsa_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"dsa-metric {version('dsa-metric')}"
    except PackageNotFoundError:
        return "dsa-metric (version unknown)"


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
