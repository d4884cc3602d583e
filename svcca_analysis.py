#!/usr/bin/env python
"""Cluster networks by representational geometry (SVCCA distance).

    python svcca_analysis.py sample.txt -reload    # compute the distances
    python svcca_analysis.py sample.txt            # reuse the cached distances

The groups file lives in the models folder: one group per line, a label then
model names.  Each network is driven by 10 noise-free static inputs per
context for 750 steps; SVCCA keeps the directions explaining >= 95% of the
variance; distance = 1 - mean canonical correlation.  Writes the distance
matrix (models/GROUPS_distances.npy, reused until -reload or until the
networks change), a heat map, an MDS embedding coloured by group and a
summary with the silhouette scores.
"""
from __future__ import annotations

import json
import sys

import numpy as np

from rnn.errors import Parser, UserError, add_output_args, finish, run_cli
from rnn.groups import add_groups_argument
from rnn.io import atomic_write, atomic_write_text, models_dir


def build_parser() -> Parser:
    p = Parser(prog="svcca_analysis.py",
               description="SVCCA distances between the networks of a groups file, their MDS "
                           "embedding and the silhouette score of the groups.",
               epilog="Example: python svcca_analysis.py sample.txt -reload")
    add_groups_argument(p)
    p.add_argument("-reload", "--reload", action="store_true", dest="reload",
                   help="recompute the distances even if a matching cache exists")
    p.add_argument("--keep", type=float, default=0.95,
                   help="fraction of variance the SVD directions must explain (default 0.95)")
    add_output_args(p, quiet="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 < args.keep <= 1:
        raise UserError(f"--keep must be in (0, 1], got {args.keep}")
    from rnn import plotting as P
    P.use_backend(args.show)
    from tqdm import tqdm

    from rnn.compare import (cluster_distances, fmt_score, load_group_models, silhouette,
                             within_between)
    from rnn.fixed_points import weights_hash
    from rnn.groups import read_groups
    from rnn.svcca import distance_matrices, network_activity, reduce

    directory = models_dir(args.models_dir)
    groups = read_groups(args.groups, directory)
    models = load_group_models(groups, directory)
    stem = "+".join(a.rsplit("/", 1)[-1].removesuffix(".txt") for a in args.groups)
    names, labels = groups.names, groups.label_of_each
    hashes = [weights_hash(lm.model) for lm in models]
    d_path = directory / f"{stem}_distances.npy"
    m_path = directory / f"{stem}_distances.json"
    want = {"names": names, "weights": hashes, "keep": args.keep}

    cached = None
    if args.reload:
        reason = "-reload given"
    elif not d_path.exists() or not m_path.exists():
        reason = "no cached distances yet"
    else:
        try:
            meta = json.loads(m_path.read_text())
            ok = all(meta.get(k) == v for k, v in want.items())
            reason = "the cached distances cover other networks or weights"
            if ok:
                cached = (np.load(d_path), np.array(meta["angular"]), meta["dims"])
        except (OSError, ValueError, KeyError):
            reason = "the cache is unreadable"
    written = []
    if cached is not None:
        D, Dang, dims = cached
        print(f"reusing the cached distances {d_path} (-reload recomputes)")
    else:
        print(f"computing SVCCA distances for {len(names)} networks ({reason})")
        reduced = []
        for lm in tqdm(models, desc="svcca", unit="network", disable=args.quiet):
            reduced.append(reduce(network_activity(lm.model, lm.task), args.keep))
        D, Dang = distance_matrices(reduced)
        dims = [r.k for r in reduced]
        atomic_write(d_path, lambda f: np.save(f, D))
        atomic_write_text(m_path, json.dumps({**want, "labels": labels, "dims": dims,
                                              "angular": Dang.tolist()}, indent=1) + "\n")
        written += [str(d_path), str(m_path)]

    clus = cluster_distances(D, labels)
    # the original's convention: rows of the distance matrix used as feature vectors
    sil_rows = silhouette(D, labels, "euclidean")
    within, between = within_between(D, groups.group_index)

    fig, axes = P.new_figure(1, 1, width=6.2, height=5.4)
    P.plot_distance_heatmap(axes[0, 0], D, labels, names, f"SVCCA distance ({stem})",
                            "1 − mean canonical correlation")
    written.append(P.save(fig, directory / f"{stem}_svcca_heatmap.png", keep_open=args.show))
    fig, axes = P.new_figure(1, 1, width=5.4, height=4.6)
    P.plot_groups_embedding(axes[0, 0], clus.embedding, labels, names,
                            f"SVCCA geometry: MDS of distances (silhouette "
                            f"{fmt_score(clus.silhouette)})")
    written.append(P.save(fig, directory / f"{stem}_svcca_mds.png", keep_open=args.show))
    summary = {"groups_files": args.groups, "names": names, "labels": labels,
               "svd_dims": dims, "keep": args.keep,
               "silhouette_precomputed": clus.silhouette,
               "silhouette_rows_as_features_original_convention": sil_rows,
               "mean_within_group_distance": within,
               "mean_between_group_distance": None if between != between else between,
               "mds_embedding": clus.embedding.tolist()}
    s_path = directory / f"{stem}_svcca_summary.json"
    atomic_write_text(s_path, json.dumps(summary, indent=1) + "\n")
    written.append(str(s_path))

    print(f"networks: {len(names)} in {len(groups.labels)} group(s) "
          f"({', '.join(f'{g}: {len(m)}' for g, m in zip(groups.labels, groups.members))}); "
          f"SVD directions kept: {min(dims)}-{max(dims)}")
    between_s = "n/a (one group)" if between != between else f"{between:.4f}"
    print(f"mean SVCCA distance within groups {within:.4f}, between groups {between_s}")
    if clus.silhouette is None:
        print("silhouette score: not defined for a single group (add a second group, or "
              "give several groups files)")
    else:
        print(f"silhouette score (precomputed SVCCA distances): {clus.silhouette:.3f}")
        print(f"silhouette score (original convention, distance rows as features): "
              f"{fmt_score(sil_rows)}")
    return finish(written, args.show)


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
