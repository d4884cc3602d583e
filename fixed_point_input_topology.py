#!/usr/bin/env python
"""Cluster networks by the input topology of their attractors.

    python fixed_point_input_topology.py sample.txt

For every network of the groups file (in the models folder): its fixed points
under the 'small' static inputs (cached per network), then a description of
how those points are arranged by input: for the first 10 fixed points, the
input values of each point's 3 nearest fixed points (itself included, as in
the original), a 30-number vector.  Prints the silhouette score of these
vectors against the group labels (with a bootstrap interval over networks and
a permutation p-value) and draws their MDS embedding.
"""
from __future__ import annotations

import sys

import numpy as np

from rnn.analysis_args import add_bootstrap_arg
from rnn.cli import Parser, add_output_args, finish, run_cli
from rnn.io.groups import add_groups_argument
from rnn.io import atomic_write, atomic_write_text, dumps_strict, ensure_writable, models_dir


def build_parser() -> Parser:
    p = Parser(prog="fixed_point_input_topology.py",
               description="Attractor input topology of the networks of a groups file: "
                           "silhouette score of the groups and an MDS embedding.",
               epilog="Example: python fixed_point_input_topology.py sample.txt")
    add_groups_argument(p)
    p.add_argument("--recompute", action="store_true",
                   help="recompute fixed points even where a cache for the weights exists")
    add_bootstrap_arg(p)
    add_output_args(p, quiet="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from rnn import plotting as plots
    plots.use_backend(args.show)
    from tqdm import tqdm

    from rnn.analysis.compare import (TOPOLOGY_NEIGHBOURS, TOPOLOGY_POINTS, cluster_features,
                             compare_groups, fmt_score, load_group_models)
    from rnn.io.groups import read_groups

    directory = models_dir(args.models_dir)
    groups = read_groups(args.groups, directory)
    if not args.quiet:
        print(f"loading {len(groups.names)} networks; their fixed points under the small "
              f"inputs are read from the caches or solved (the bar below)", flush=True)
    models = load_group_models(groups, directory)
    stem = "+".join(a.rsplit("/", 1)[-1].removesuffix(".txt") for a in args.groups)
    ensure_writable(directory, len(stem))
    names, labels = groups.names, groups.label_of_each

    bar = lambda it, desc: tqdm(it, desc="fixed points (small inputs)",  # noqa: E731
                                unit="network", disable=args.quiet)
    cmp = compare_groups(models, labels, ["topology"], order=sorted(set(labels)),
                         n_boot=args.bootstrap, reload=args.recompute, progress=bar)["topology"]
    topo = cmp.result.topology
    counts, kept, computed = topo.points, topo.kept, topo.solved
    for i in range(len(models)):
        if i not in kept:
            print(f"warning: {names[i]} has no fixed point under the small inputs; it is left "
                  f"out of the topology comparison", file=sys.stderr)
    vecs = [topo.vectors[i] for i in kept]
    print(f"fixed points: {computed} network(s) solved, {len(models) - computed} from cache; "
          f"points per network: {', '.join(f'{n} {c}' for n, c in zip(names, counts))}")
    few = [names[i] for i in range(len(names)) if 0 < counts[i] < TOPOLOGY_POINTS]
    if few:
        print(f"note: {', '.join(few)} have fewer than {TOPOLOGY_POINTS} fixed points; their "
              f"points are reused cyclically in the descriptor")
    X = np.array(vecs)
    k_names = [names[i] for i in kept]
    k_labels = [labels[i] for i in kept]
    clus = cluster_features(X, k_labels)
    stats = cmp.stats
    interval = stats.interval() if args.bootstrap else None

    fig, axes = plots.new_figure(1, 1, width=5.4, height=4.6)
    plots.plot_groups_embedding(axes[0, 0], clus.embedding, k_labels, k_names,
                            f"attractor input topology: MDS (silhouette "
                            f"{fmt_score(clus.silhouette)})")
    written = [plots.save(fig, directory / f"{stem}_topology_mds.png", keep_open=args.show)]
    npz = directory / f"{stem}_topology.npz"
    atomic_write(npz, lambda f: np.savez(f, descriptors=X, embedding=clus.embedding,
                                         names=np.array(k_names), labels=np.array(k_labels)))
    js = directory / f"{stem}_topology.json"
    atomic_write_text(js, dumps_strict({
        "groups_files": args.groups, "names": k_names, "labels": k_labels,
        "left_out_no_fixed_points": [n for n, c in zip(names, counts) if c == 0],
        "fixed_points_per_network": dict(zip(names, counts)),
        "neighbours": TOPOLOGY_NEIGHBOURS, "points": TOPOLOGY_POINTS,
        "silhouette_euclidean": clus.silhouette,
        "silhouette_interval_95": interval,
        "silhouette_permutation_p": stats.p_value if args.bootstrap else None,
        "resamples": args.bootstrap,
        "mds_embedding": clus.embedding.tolist()}))
    written += [str(npz), str(js)]
    if clus.silhouette is None:
        print("silhouette score: not defined for a single group (add a second group, or give "
              "several groups files)")
    else:
        extra = (f" [95% interval {interval[0]:.3f}, {interval[1]:.3f}; permutation p = "
                 f"{stats.p_value:.3g}]") if interval else ""
        print(f"silhouette score (attractor input topology): {clus.silhouette:.3f}{extra}")
    return finish(written, args.show)


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
