"""Similarity metrics beyond SVCCA: known answers, direct formulas, metric axioms,
DSA on linear systems, and similarity_analysis.py end to end."""
import json

import numpy as np
import pytest

from helpers import run_script
from rnn.analysis.similarity import (DSAOptions, dsa_distance, dsa_operator, pair_distances, represent,
                            trials_of)
from rnn.analysis.svcca import SVCCAOptions, reference_cca

GEO = ["svcca", "pwcca", "cka", "procrustes"]
OPTS = SVCCAOptions()


def low_rank(rng, H=12, M=400, k=4, noise=0.05):
    return rng.standard_normal((H, k)) @ rng.standard_normal((k, M)) + \
        noise * rng.standard_normal((H, M))


def centred(a):
    return a - a.mean(1, keepdims=True)


def test_rotated_permuted_scaled_copies_are_at_distance_zero():
    rng = np.random.default_rng(0)
    base = low_rank(rng)
    Q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    perm = rng.permutation(12)
    acts = [base, Q @ base, 3.0 * base[perm] + 1.0, rng.standard_normal((12, 400))]
    D = pair_distances([represent(a, OPTS) for a in acts], GEO)
    for m in GEO:
        assert np.allclose(D[m][:3, :3], 0, atol=1e-6), m
        assert D[m][0, 3] > 0.3, m                       # unrelated activity: clearly farther
        assert np.allclose(D[m], D[m].T) and np.all(np.diag(D[m]) == 0)


def test_metrics_equal_their_direct_formulas():
    rng = np.random.default_rng(1)
    acts = [low_rank(rng, noise=s) for s in (0.05, 0.3, 1.0)] + [rng.standard_normal((9, 400))]
    reps = [represent(a, OPTS) for a in acts]
    D = pair_distances(reps, GEO)
    D0 = pair_distances(reps, ["procrustes"], alpha=0.0)["procrustes"]
    # SVCCA from its k directions alone (the Gram route) equals SVCCA beside the others
    Dsv = pair_distances([represent(a, OPTS, "kept") for a in acts], ["svcca"])["svcca"]
    assert np.allclose(D["svcca"], Dsv, atol=1e-10)
    for i in range(4):
        for j in range(4):
            if i == j:
                continue
            a, b = centred(acts[i]), centred(acts[j])
            cka = np.linalg.norm(a @ b.T) ** 2 / (np.linalg.norm(a @ a.T) * np.linalg.norm(b @ b.T))
            assert D["cka"][i, j] == pytest.approx(1 - cka, abs=1e-10)
            nuc = np.linalg.svd(a @ b.T, compute_uv=False).sum()
            cos = nuc / (np.linalg.norm(a) * np.linalg.norm(b))
            assert D["procrustes"][i, j] == pytest.approx(np.arccos(min(cos, 1)), abs=1e-7)
            # alpha = 0: fully whitened, arccos of the mean canonical correlation
            rho = reference_cca(a, b)
            assert D0[i, j] == pytest.approx(np.arccos(rho.sum() / np.sqrt(len(a) * len(b))),
                                             abs=1e-6)
            m = min(reps[i].r, reps[j].r)             # 9 beside the 9-unit network
            assert m == min(len(a), len(b))
            assert D["pwcca"][i, j] == pytest.approx(
                0.5 * (direct_pwcca(a, b, m) + direct_pwcca(b, a, m)), abs=1e-8)


def direct_pwcca(a, b, m):
    """Morcos et al.'s weighting, written in sample space, over the top m SVD
    directions of each: canonical variates h of a (unit norm), weights = summed
    |projection| of a's units on each."""
    def top(x):
        u = np.linalg.svd(x, full_matrices=False)[0]
        return u[:, :m].T @ x                            # [m, samples]
    xa, xb = top(a), top(b)
    n = a.shape[1]
    Saa, Sbb, Sab = xa @ xa.T / n, xb @ xb.T / n, xa @ xb.T / n

    def inv_sqrt(S):
        w, V = np.linalg.eigh(S)
        return V @ np.diag(w ** -0.5) @ V.T
    P, rho, _ = np.linalg.svd(inv_sqrt(Saa) @ Sab @ inv_sqrt(Sbb))
    H = (inv_sqrt(Saa) @ P).T @ xa                      # [m, samples]
    H /= np.linalg.norm(H, axis=1, keepdims=True)
    w = np.abs(a @ H.T).sum(0)                          # a's units, every direction
    return 1 - float((w * np.clip(rho, 0, 1)).sum() / w.sum())


def test_pwcca_does_not_reward_near_null_directions():
    """Directions carrying ~1e-8 of a network's variance (above the rank
    tolerance) leave its PWCCA distances as they were: each pair is compared over
    the same number of directions from both networks.  Over each network's own
    rank they would not: the larger subspace can only raise the canonical
    correlations, so the network with the longer spectrum sits nearer everything."""
    rng = np.random.default_rng(7)
    a, b = low_rank(rng, noise=0.0), low_rank(rng, noise=0.0)        # rank 4 each
    b_long = b + 1e-4 * rng.standard_normal(b.shape)                  # rank 12
    reps = [represent(x, OPTS) for x in (a, b, b_long)]
    assert [r.r for r in reps] == [4, 4, 12]
    D = pair_distances(reps, ["pwcca"])["pwcca"]
    assert D[0, 1] > 0.05
    assert D[0, 2] == pytest.approx(D[0, 1], abs=1e-5)
    assert D[1, 2] == pytest.approx(0, abs=1e-5)
    # the biased form (each network over its own rank) is measurably nearer
    ua, ub = (np.linalg.svd(centred(x), full_matrices=False)[0] for x in (a, b_long))
    xa, xb = ua[:, :4].T @ centred(a), ub.T @ centred(b_long)
    qa, qb = np.linalg.qr(xa.T)[0], np.linalg.qr(xb.T)[0]
    rho = np.linalg.svd(qa.T @ qb, compute_uv=False)
    rho4 = np.linalg.svd(qa.T @ np.linalg.qr((ub[:, :4].T @ centred(b_long)).T)[0],
                         compute_uv=False)
    assert rho.mean() > rho4.mean() + 0.005


def test_procrustes_is_a_metric_on_random_samples():
    rng = np.random.default_rng(2)
    acts = [low_rank(rng, k=int(rng.integers(2, 7)), noise=float(rng.uniform(0.01, 1)))
            for _ in range(9)]
    for alpha in (1.0, 0.5):
        D = pair_distances([represent(a, OPTS) for a in acts], ["procrustes"], alpha)["procrustes"]
        assert np.allclose(D, D.T) and np.all(D >= 0) and np.all(np.diag(D) == 0)
        viol = D[:, :, None] + D[None, :, :] - D[:, None, :]      # d(i,j)+d(j,k)-d(i,k)
        assert viol.min() > -1e-9, alpha


def linear_system(A, rng, trials=6, steps=120):
    """Trajectories x_{t+1} = A x_t from random starts, as [units, trials·steps]."""
    X = np.zeros((trials, steps, len(A)))
    X[:, 0] = rng.standard_normal((trials, len(A)))
    for t in range(1, steps):
        X[:, t] = X[:, t - 1] @ A.T
    return X.transpose(2, 0, 1).reshape(len(A), -1), steps


def test_dsa_conjugate_systems_are_close_and_other_eigenvalues_far():
    pytest.importorskip("DSA")
    rng = np.random.default_rng(3)
    theta = 0.2
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    A = np.zeros((4, 4))
    A[:2, :2] = 0.97 * rot
    A[2, 2], A[3, 3] = 0.9, 0.8
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    B = Q @ A @ Q.T                                      # the same system in rotated coordinates
    C = np.diag([0.5, 0.4, 0.99, 0.3])                   # other eigenvalues
    opts = DSAOptions(n_delays=2, delay_interval=1, rank=4)
    ops = []
    for M in (A, B, C):
        act, steps = linear_system(M, rng)
        assert trials_of(act, steps).shape == (6, steps, 4)
        ops.append(dsa_operator(act, steps, opts))
    same, other = dsa_distance(ops[0], ops[1], opts), dsa_distance(ops[0], ops[2], opts)
    assert same < 1e-3 and other > 0.05, (same, other)


def test_similarity_analysis_end_to_end(models_tmp):
    from test_compare import make_models
    make_models(models_tmp, ["bptt_a", "bptt_b", "ga_a", "ga_b"])
    (models_tmp / "g.txt").write_text("BPTT bptt_a bptt_b\nGA ga_a ga_b\n")
    r = run_script("similarity_analysis.py", "g.txt", "--quiet", "--bootstrap", "50",
                   "--metrics", "svcca", "pwcca", "cka", "procrustes", "dsa",
                   "--dsa-delays", "3", "--dsa-interval", "5", "--dsa-rank", "4")
    assert r.returncode == 0, r.stderr
    s = json.loads((models_tmp / "g_similarity_summary.json").read_text())
    assert [row["metric"] for row in s["metrics"]] == ["svcca", "pwcca", "cka", "procrustes",
                                                       "dsa"]
    assert s["dsa"]["library"].startswith("dsa-metric")
    for m in ("svcca", "pwcca", "cka", "procrustes", "dsa"):
        D = np.load(models_tmp / f"g_{m}_distances.npy")
        assert D.shape == (4, 4) and np.allclose(D, D.T) and f"g_{m}_distances.npy" in r.stdout
    assert (models_tmp / "g_similarity.png").exists()
    assert "pairs computed now: SVCCA 6" in r.stdout
    # the SVCCA numbers are svcca_analysis.py's, and its cache is shared
    r2 = run_script("svcca_analysis.py", "g.txt", "--quiet", "--bootstrap", "0")
    assert "reusing the cached distances" in r2.stdout, r2.stdout
    assert np.allclose(np.load(models_tmp / "g_distances.npy"),
                       np.load(models_tmp / "g_svcca_distances.npy"))
    r3 = run_script("similarity_analysis.py", "g.txt", "--quiet", "--bootstrap", "0",
                    "--metrics", "cka", "procrustes")
    assert r3.returncode == 0 and "none (all cached" in r3.stdout, r3.stdout
    for bad, msg in ((["--metrics", "rsa"], "unknown metric 'rsa'"),
                     (["--alpha", "2"], "--alpha"), (["--alpha", "nan"], "not a finite"),
                     (["--metrics", "dsa", "--dsa-rank", "0"], "rank"),
                     (["--metrics", "dsa", "--dsa-delays", "400"], "longer than a trial")):
        b = run_script("similarity_analysis.py", "g.txt", "--quiet", *bad)
        assert b.returncode == 2 and msg in b.stderr, (bad, b.stderr)
        assert len(b.stderr.strip().splitlines()) == 1


def test_pwcca_directions_script_on_the_shipped_networks(tmp_path):
    """experiments/pwcca_directions.py end to end: its 'pair' row is the tool's
    PWCCA, its 'own rank' row the biased form, its top-K rows every network cut
    to K directions; the ranks it prints are the networks' own."""
    from rnn.analysis.compare import load_group_models
    from rnn.analysis.metrics import pwcca_pairs
    from rnn.io import DEFAULT_MODELS_DIR
    from rnn.io.groups import read_groups
    r = run_script("experiments/pwcca_directions.py", "sample.txt", "--dims", "3",
                   "--out", tmp_path / "t.md", fresh=True)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "t.json").read_text())
    groups = read_groups(["sample.txt"], DEFAULT_MODELS_DIR, min_groups=2)
    reps = [represent(OPTS.activity(lm.model, lm.task, lm.name), OPTS, "rank")
            for lm in load_group_models(groups, DEFAULT_MODELS_DIR)]
    assert res["ranks"] == {"BPTT": sorted(x.r for x in reps[:3]),
                            "GA": sorted(x.r for x in reps[3:])}
    D = pair_distances(reps, ["pwcca"])["pwcca"]
    labels = groups.label_of_each
    from sklearn.metrics import silhouette_score
    v = res["variants"]
    assert list(v) == ["pair: min(r_a, r_b) of each (this tool)",
                       "own rank (before 2026-12-06)", "top 3"]
    assert v["pair: min(r_a, r_b) of each (this tool)"]["all"] == pytest.approx(
        silhouette_score(D, labels, metric="precomputed"), abs=1e-9)
    assert v["top 3"]["directions"] == [3] * 6
    assert "| top 3 |" in (tmp_path / "t.md").read_text() and "wrote" in r.stdout
    r = run_script("experiments/pwcca_directions.py", "sample.txt", "--dims", "0", fresh=True)
    assert r.returncode == 2 and "--dims" in r.stderr
