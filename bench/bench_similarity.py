#!/usr/bin/env python
"""Speed of the similarity metrics (similarity_analysis.py) on 100 networks, 4950 pairs.

    python bench/bench_similarity.py                 # 100 CDI networks of experiments/networks
    python bench/bench_similarity.py --networks 20   # a quick look

Networks: the trained CDI networks kept by the protocol experiment (topped up
with weight-perturbed copies when there are fewer than --networks).  Prints
the time to simulate each network's activity (the tool's analysis: 20 inputs x
750 steps) and take its SVD (once per network, shared by every metric), then
the time of all pairwise distances for each metric alone and for the four
geometric metrics together, with SVCCA alone (its k directions only) as the
baseline beside them; for DSA, the DMD fit per network and the distance per pair
(timed on --dsa-pairs pairs and scaled to all pairs).
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from bench.common import ROOT, machine
from rnn.cli import Parser
from rnn.io import load_model
from rnn.analysis.similarity import DSAOptions, dsa_distance, dsa_operator, pair_distances, represent
from rnn.analysis.svcca import SVCCAOptions, directions_kept


def reduce_routes(models, task, k: int = 10) -> list[tuple[str, float, float]]:
    """SVCCA's reduction of ``k`` networks' activity through the Gram matrix
    (rnn.analysis.similarity.represent, SVCCA's k directions) and through LAPACK's SVD of the wide matrix (the
    route it replaced), under the tool's and the original's analysis:
    (what, seconds Gram route, seconds SVD route) per analysis."""
    out = []
    for name, opts in (("tool", SVCCAOptions()), ("original", SVCCAOptions.original())):
        acts = [opts.activity(m, task, str(i)) for i, m in enumerate(models[:k])]
        t = time.perf_counter()
        for a in acts:
            represent(a, opts, "kept")
        t_gram = time.perf_counter() - t
        t = time.perf_counter()
        for a in acts:
            A = a - a.mean(axis=1, keepdims=True)
            _, sv, vt = np.linalg.svd(A, full_matrices=False)
            directions_kept(sv, opts.keep, opts.dims)
        t_svd = time.perf_counter() - t
        out.append((f"SVCCA reduction, {name} analysis ({acts[0].shape[0]} x "
                    f"{acts[0].shape[1]}), {len(acts)} networks", t_gram, t_svd))
    return out


def networks(n: int):
    # the CDI (N = 2) cells of distinct networks (original-budgets repeats original's)
    dirs = [ROOT / "experiments" / "networks" / c
            for c in ("original", "clean", "original-shared_x0", "original-lenient_stop")]
    found = []
    for d in dirs:
        for js in sorted(d.glob("*_[0-9][0-9][0-9].json")):
            found.append(load_model(js.stem, d))
    if not found:
        raise SystemExit("no networks in experiments/networks/")
    models = [lm.model for lm in found[:n]]
    gen = torch.Generator().manual_seed(0)
    while len(models) < n:
        m = found[len(models) % len(found)].model
        models.append(replace(m, W_rec=m.W_rec + 1e-3 * torch.randn(
            m.W_rec.shape, generator=gen, dtype=m.W_rec.dtype)))
    return models, found[0].task


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", type=int, default=100,
                    help="networks whose pairwise distances are timed (default 100)")
    ap.add_argument("--dsa-pairs", type=int, default=200,
                    help="DSA pairs timed (DSA is per pair; default 200)")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    models, task = networks(args.networks)
    n = len(models)
    pairs = n * (n - 1) // 2
    opts = SVCCAOptions()
    t = time.perf_counter()
    acts = [opts.activity(m, task, str(i)) for i, m in enumerate(models)]
    t_act = time.perf_counter() - t
    t = time.perf_counter()
    reps = [represent(a, opts) for a in acts]
    t_svd = time.perf_counter() - t
    ranks = [r.r for r in reps]
    print(f"{n} networks ({task.describe()}), activity {acts[0].shape[0]} units x "
          f"{acts[0].shape[1]} samples; SVD rank kept {min(ranks)}-{max(ranks)}")
    print(f"simulate activity: {t_act:.1f} s ({t_act / n * 1e3:.0f} ms per network); "
          f"SVD: {t_svd:.1f} s")
    t = time.perf_counter()
    pair_distances([represent(a, opts, "kept") for a in acts], ["svcca"])
    t_base = time.perf_counter() - t
    rows = [("SVCCA alone (baseline: its k directions' SVD + pairs)", t_base)]
    for ms in (["svcca"], ["pwcca"], ["cka"], ["procrustes"],
               ["svcca", "pwcca", "cka", "procrustes"]):
        t = time.perf_counter()
        pair_distances(reps, ms)
        rows.append((" + ".join(ms) + " (pairs only)", time.perf_counter() - t))
    dsa = DSAOptions()
    t = time.perf_counter()
    ops = [dsa_operator(a, task.steps, dsa) for a in acts]
    t_fit = time.perf_counter() - t
    rng = np.random.default_rng(0)
    I = rng.integers(0, n, size=(args.dsa_pairs, 2))
    t = time.perf_counter()
    for i, j in I:
        dsa_distance(ops[i], ops[j], dsa)
    t_pair = (time.perf_counter() - t) / args.dsa_pairs
    rows += [(f"DSA: DMD fit per network ({dsa.n_delays} delays x {dsa.delay_interval} steps, "
              f"rank {dsa.rank}), all {n}", t_fit),
             (f"DSA ({dsa.score}): all {pairs} pairs at {t_pair * 1e3:.2f} ms per pair "
              f"(timed on {args.dsa_pairs})", t_pair * pairs)]
    print(f"\n| {n} networks, {pairs} pairs | seconds | vs baseline |\n|---|---|---|")
    for what, sec in rows:
        print(f"| {what} | {sec:.2f} | {sec / t_base:.2f}x |")
    print("\n| reduction | Gram route (rnn.analysis.similarity.represent), s | full SVD, s | SVD / Gram |"
          "\n|---|---|---|---|")
    for what, t_gram, t_svd in reduce_routes(models, task):
        print(f"| {what} | {t_gram:.2f} | {t_svd:.2f} | {t_svd / t_gram:.1f}x |")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(lambda argv: main())
