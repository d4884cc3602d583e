import numpy as np
import pytest
import torch

from rnn.analysis.compare import cluster_distances
from rnn.model import RateRNN
from rnn.rng import Streams
from rnn.analysis.similarity import canonical_correlations, pair_distances, represent
from rnn.analysis.svcca import SVCCAOptions, network_activity, reference_cca
from tasks import ncdi, rdm


def reduce(activity, keep=0.95, dims=None):
    """SVCCA's k directions of one activity (the pipeline's one SVD)."""
    return represent(activity, SVCCAOptions(dims=dims, keep=keep), "kept")


def distance_matrices(reps):
    """SVCCA distances [n, n] and angular distances arccos(mean ρ) [n, n]."""
    D = pair_distances(reps, ["svcca"])["svcca"]
    return D, np.arccos(np.clip(1 - D, -1, 1))


def svcca_distance(a, b):
    D, A = distance_matrices([a, b])
    return D[0, 1], A[0, 1]


def random_activity(units=30, samples=3000, rank=6, seed=0):
    rng = np.random.default_rng(seed)
    latent = np.cumsum(rng.standard_normal((rank, samples)), axis=1)
    return rng.standard_normal((units, rank)) @ latent + 0.01 * rng.standard_normal((units, samples))


def test_rotated_copy_has_zero_distance():
    A = random_activity()
    Q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((30, 30)))
    B = 3.0 * Q @ A + 5.0                    # rotation, scaling and offset
    d, ang = svcca_distance(reduce(A), reduce(B))
    assert abs(d) < 1e-8 and abs(ang) < 1e-4


def test_invertible_transform_has_zero_distance_without_truncation():
    A = random_activity(units=8, rank=8, samples=2000)
    M = np.random.default_rng(2).standard_normal((8, 8)) + 3 * np.eye(8)
    d, _ = svcca_distance(reduce(A, keep=1.0), reduce(M @ A, keep=1.0))
    assert abs(d) < 1e-8


def test_symmetric_bounded_and_positive_for_different_activity():
    a, b = reduce(random_activity(seed=3)), reduce(random_activity(seed=4))
    d_ab, _ = svcca_distance(a, b)
    d_ba, _ = svcca_distance(b, a)
    assert d_ab == pytest.approx(d_ba, abs=1e-12)
    assert 0.0 < d_ab <= 1.0
    D, Dang = distance_matrices([a, b, reduce(random_activity(seed=5))])
    assert np.allclose(D, D.T) and np.all(np.diag(D) == 0) and np.all((D >= 0) & (D <= 1))
    assert np.allclose(np.cos(Dang), 1 - D)


def test_agrees_with_whitening_reference_cca():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((5, 4000))
    Y = rng.standard_normal((4, 5)) @ X[:, :] * 0.5 + rng.standard_normal((4, 4000))
    ours = canonical_correlations(reduce(X, keep=1.0), reduce(Y, keep=1.0))
    ref = reference_cca(X, Y)
    np.testing.assert_allclose(ours, ref[:len(ours)], atol=1e-10)


def test_variance_threshold_chooses_fewest_directions():
    s = np.array([10.0, 3.0, 1.0, 0.1])
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    V, _ = np.linalg.qr(rng.standard_normal((500, 4)))
    A = U @ np.diag(s) @ V.T
    A -= A.mean(1, keepdims=True)
    r = reduce(A, keep=0.95)
    var = np.linalg.svd(A, compute_uv=False) ** 2
    frac = np.cumsum(var) / var.sum()
    assert r.k == int(np.argmax(frac >= 0.95)) + 1
    assert r.explained >= 0.95


def test_network_with_permuted_units_has_zero_distance():
    task = ncdi(2, 0.5)
    m = RateRNN.init(Streams([0], 1), task.n_inputs)
    m = m.replace(W_rec=m.W_rec * 40)
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(0))
    mp = m.replace(W_in=m.W_in[:, perm], W_rec=m.W_rec[:, perm][:, :, perm],
                   W_out=m.W_out[:, :, perm], b=m.b[:, perm])
    A, B = network_activity(m, task), network_activity(mp, task)
    assert A.shape == (50, 20 * 750)
    d, _ = svcca_distance(reduce(A), reduce(B))
    assert abs(d) < 1e-8


def test_clamped_units_are_left_out_of_activity():
    task = rdm(0.5)
    m = RateRNN.init(Streams([0], 1), 1, activation="tanh", readout="unit0")
    m = m.replace(clamp_idx=(1, 10, 11), clamp_val=(1.0, 1.0, -1.0))
    assert network_activity(m, task).shape[0] == 47


def test_separated_groups_score_high_and_shuffled_labels_low():
    rng = np.random.default_rng(0)
    base = {"A": random_activity(seed=10), "B": random_activity(seed=11)}
    reds, labels = [], []
    for g in ("A", "B"):
        for i in range(6):
            Q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
            act = Q @ base[g] + 0.05 * rng.standard_normal(base[g].shape) * base[g].std()
            reds.append(reduce(act))
            labels.append(g)
    D, _ = distance_matrices(reds)
    assert cluster_distances(D, labels).silhouette > 0.5
    shuffled = ["A", "B"] * 6
    assert cluster_distances(D, shuffled).silhouette < 0.1


def test_analysis_variants_fixed_dims_rates_and_random_start():
    task = rdm(0.5)
    m = RateRNN.init(Streams([0], 1), 1)
    m = m.replace(W_rec=m.W_rec * 40)
    A = network_activity(m, task, steps=60)
    assert reduce(A, dims=2).k == 2 and reduce(A, dims=1).k == 1
    R = network_activity(m, task, steps=60, rates=True)
    np.testing.assert_allclose(R, 1.0 + np.tanh(A), atol=1e-12)
    X0 = network_activity(m, task, steps=60, x0_scale=0.3, seed=1)
    assert not np.allclose(X0[:, 0], A[:, 0])           # a different start, reproducible
    np.testing.assert_array_equal(X0, network_activity(m, task, steps=60, x0_scale=0.3, seed=1))


def test_represent_through_the_gram_matrix_equals_the_full_svd():
    """represent() takes the SVD through A Aᵀ when the directions taken are
    well conditioned, and the full SVD otherwise: the same basis either way
    (up to sign), the same k and explained variance."""
    import rnn.analysis.similarity as sim
    import rnn.analysis.svcca as sv
    rng = np.random.default_rng(3)
    smooth = np.tanh(np.cumsum(rng.standard_normal((12, 3000)), 1) / 30)
    one_d = np.outer(rng.standard_normal(12), rng.standard_normal(3000)) \
        + 1e-7 * rng.standard_normal((12, 3000))     # dims=2: the second direction is noise
    for A, dims, gram in ((smooth, None, True), (smooth, 2, True), (one_d, 2, False)):
        r = reduce(A, dims=dims)
        _, s, vt = np.linalg.svd(A - A.mean(1, keepdims=True), full_matrices=False)
        assert (s[r.k - 1] >= sim.GRAM_MIN * s[0]) == gram
        k, explained = sv.directions_kept(s, 0.95, dims)
        assert r.k == k and r.explained == pytest.approx(explained, abs=1e-12)
        np.testing.assert_allclose(np.abs(np.sum(vt[:k].T * r.V, 0)), 1, atol=1e-10)
        np.testing.assert_allclose(r.V.T @ r.V, np.eye(k), atol=1e-10)
