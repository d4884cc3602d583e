#!/usr/bin/env python
"""Cluster networks by representational geometry (SVCCA distance).

    python svcca_analysis.py sample.txt -reload    # compute the distances
    python svcca_analysis.py sample.txt            # reuse the cached distances

    python svcca_analysis.py sample.txt --analysis original   # the original study's analysis

The groups file lives in the models folder: one group per line, a label then
model names.  Each network is driven by 10 noise-free static inputs per
context for 750 steps from x = 0; SVCCA keeps the directions explaining >= 95%
of the variance; distance = 1 - mean canonical correlation.  Writes the
distance matrix (models/GROUPS_distances.npy), a heat map, an MDS embedding
coloured by group and a summary with the silhouette score, its bootstrap
interval and permutation p-value.  The distance of every pair of networks is
cached per analysis in models/svcca_cache_*.json, keyed by the networks'
weights, so any groups file listing them reuses it (until -reload).
"""
from __future__ import annotations

import sys

import numpy as np

from rnn.analysis_args import add_analysis_args, add_bootstrap_arg, options_from_args
from rnn.cli import Parser, add_output_args, finish, run_cli
from rnn.io.groups import add_groups_argument
from rnn.io import atomic_write, atomic_write_text, dumps_strict, ensure_writable, models_dir


def build_parser() -> Parser:
    p = Parser(prog="svcca_analysis.py",
               description="SVCCA distances between the networks of a groups file, their MDS "
                           "embedding and the silhouette score of the groups.",
               epilog="Example: python svcca_analysis.py sample.txt -reload")
    add_groups_argument(p)
    p.add_argument("-reload", "--reload", action="store_true", dest="reload",
                   help="recompute the distances even if a matching cache exists")
    add_analysis_args(p)
    add_bootstrap_arg(p)
    add_output_args(p, quiet="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    opts = options_from_args(args)
    from rnn import plotting as plots
    plots.use_backend(args.show)
    from tqdm import tqdm

    from rnn.analysis.compare import (cluster_distances, compare_groups, fmt_score, load_group_models,
                             silhouette)
    from rnn.analysis.fixed_points import weights_hash
    from rnn.io.groups import read_groups

    directory = models_dir(args.models_dir)
    groups = read_groups(args.groups, directory)
    models = load_group_models(groups, directory)
    stem = "+".join(a.rsplit("/", 1)[-1].removesuffix(".txt") for a in args.groups)
    ensure_writable(directory, len(stem))
    names, labels = groups.names, groups.label_of_each
    hashes = [weights_hash(lm.model) for lm in models]
    d_path = directory / f"{stem}_distances.npy"
    m_path = directory / f"{stem}_distances.json"
    want = {"names": names, "weights": hashes, "analysis": opts.to_dict()}

    cmp = compare_groups(
        models, labels, ["svcca"], opts, directory, order=groups.labels, n_boot=args.bootstrap,
        keys=hashes, reload=args.reload,
        progress=lambda it, desc: tqdm(it, desc=f"svcca {desc}", disable=args.quiet,
                                       leave=False))["svcca"]
    res, stats, within, between = cmp.result, cmp.stats, cmp.within, cmp.between
    between = float("nan") if between is None else between
    D, Dang, dims, floor = res.distances, res.angular, res.directions, res.noise_floor
    cache_path = res.cache.path
    written = []
    if res.computed == 0:
        print(f"reusing the cached distances of these {len(names)} networks under the "
              f"{opts.label()} analysis ({cache_path}; -reload recomputes)")
    else:
        why = "-reload given" if args.reload else "not in the cache of this analysis"
        total = len(names) * (len(names) - 1) // 2
        print(f"computed {res.new_pairs} of {total} pairwise SVCCA distances ({res.computed} "
              f"networks simulated and reduced), analysis {opts.label()} ({why}); cache "
              f"{cache_path}")
        written.append(str(cache_path))
    atomic_write(d_path, lambda f: np.save(f, D))
    atomic_write_text(m_path, dumps_strict({**want, "labels": labels, "dims": dims,
                                            "noise_floor": floor.tolist(),
                                            "angular": Dang.tolist()}))
    written += [str(d_path), str(m_path)]

    clus = cluster_distances(D, labels)
    # the original's convention: rows of the distance matrix used as feature vectors
    sil_rows = silhouette(D, labels, "euclidean")

    fig, axes = plots.new_figure(1, 1, width=6.2, height=5.4)
    plots.plot_distance_heatmap(axes[0, 0], D, labels, names, f"SVCCA distance ({stem})",
                            "1 − mean canonical correlation")
    written.append(plots.save(fig, directory / f"{stem}_svcca_heatmap.png", keep_open=args.show))
    fig, axes = plots.new_figure(1, 1, width=5.4, height=4.6)
    plots.plot_groups_embedding(axes[0, 0], clus.embedding, labels, names,
                            f"SVCCA geometry: MDS of distances (silhouette "
                            f"{fmt_score(clus.silhouette)})")
    written.append(plots.save(fig, directory / f"{stem}_svcca_mds.png", keep_open=args.show))
    summary = {"groups_files": args.groups, "names": names, "labels": labels,
               "analysis": opts.to_dict(), "svd_dims": dims, "keep": opts.keep,
               "silhouette_precomputed": clus.silhouette,
               "silhouette_interval_95": stats.interval(),
               "silhouette_permutation_p": stats.p_value,
               "silhouette_resamples": args.bootstrap,
               "noise_floor_mean": float(np.mean(floor)), "noise_floor_max": float(np.max(floor)),
               "noise_floor_per_network": [float(v) for v in floor],
               "silhouette_rows_as_features_original_convention": sil_rows,
               "mean_within_group_distance": within,
               "mean_between_group_distance": None if between != between else between,
               "mds_embedding": clus.embedding.tolist()}
    s_path = directory / f"{stem}_svcca_summary.json"
    atomic_write_text(s_path, dumps_strict(summary))
    written.append(str(s_path))

    print(f"networks: {len(names)} in {len(groups.labels)} group(s) "
          f"({', '.join(f'{g}: {len(m)}' for g, m in zip(groups.labels, groups.members))}); "
          f"SVD directions kept: {min(dims)}-{max(dims)}")
    between_s = "n/a (one group)" if between != between else f"{between:.4f}"
    print(f"analysis: {opts.label()}")
    print(f"mean SVCCA distance within groups {within:.4f}, between groups {between_s}")
    if opts.x0 == "random":
        print(f"noise floor (each network against itself, two draws of the random starts): "
              f"mean {np.mean(floor):.4f}, max {np.max(floor):.4f}")
    if clus.silhouette is None:
        print("silhouette score: not defined for a single group (add a second group, or "
              "give several groups files)")
    else:
        print(f"silhouette score (precomputed SVCCA distances): {clus.silhouette:.3f}" + (
            f" (95% bootstrap interval [{stats.ci_low:.3f}, {stats.ci_high:.3f}], permutation "
            f"p = {stats.p_value:.3g}; {args.bootstrap} resamples)" if args.bootstrap else ""))
        print(f"silhouette score (original convention, distance rows as features): "
              f"{fmt_score(sil_rows)}")
    return finish(written, args.show)


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
