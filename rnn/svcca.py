"""SVCCA (Raghu et al. 2017) distances between networks' population activity.

Each network is driven by noise-free static inputs (10 evenly spaced values
in [−mean, mean] per context, cue on) for 750 steps from x = 0; its activity
matrix A is units × (inputs·steps) of hidden states x (clamped bias units
left out).  Each unit is centred over the samples; the SVD A = U S Vᵀ keeps
the top k directions explaining ≥ 95% of the variance (s²).  The reduced
activity S_k V_kᵀ spans the same sample-space subspace as V_k, so the
canonical correlations between two networks are the singular values of
V_aᵀ V_b (min(k_a, k_b) of them).  Each network's reduction is computed once.

    distance  = 1 − mean canonical correlation           (the original's)
    angular   = arccos(mean canonical correlation)       (Williams et al. 2021;
                a metric when both networks keep the same k)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnn.model import RateRNN
from rnn.rng import PROBE, Streams
from tasks import DecisionTask


@dataclass(frozen=True)
class Reduced:
    """One network's SVCCA reduction: ``basis`` [samples, k] orthonormal
    (right singular vectors), ``k``, and the variance fraction they explain."""
    basis: np.ndarray
    k: int
    explained: float


def network_activity(model: RateRNN, task: DecisionTask, steps: int | None = None,
                     x0_scale: float = 0.0, seed: int = 0, rates: bool = False) -> np.ndarray:
    """Hidden states of the free units under the SVCCA inputs: [units, inputs·steps].

    By default every input starts from x = 0.  ``x0_scale`` > 0 starts each
    from ``x0_scale``·N(0, 1) instead (the original code's random initial
    state, 0.3), drawn from the project's PROBE stream of ``seed``; ``rates``
    records φ(x) instead of x."""
    st = task.svcca_inputs()
    u = task.static_trials(st, steps).to(torch.float64)                # [T, K, I]
    red = model.reduced().to(dtype=torch.float64)
    x0 = torch.zeros(1, u.shape[1], red.hidden, dtype=torch.float64)
    if x0_scale > 0:
        x0 = x0_scale * Streams([seed], PROBE).normal(*x0.shape[1:], dtype=torch.float64)
    sim = red.simulate(u, x0, keep="all")
    X = sim.states[:, 0]                                               # [T, K, H]
    if rates:
        X = red.phi(X)
    return X.permute(2, 1, 0).reshape(red.hidden, -1).numpy()


def reduce(activity: np.ndarray, keep: float = 0.95, dims: int | None = None) -> Reduced:
    """Centre each unit, SVD, keep the fewest top directions whose s² add up to
    at least ``keep`` of the total (or exactly ``dims`` directions, as the
    original code's fixed NUM_DIMENSIONS = 2).  activity: [units, samples]."""
    A = np.asarray(activity, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"activity must be [units, samples], got shape {A.shape}")
    A = A - A.mean(axis=1, keepdims=True)
    _, s, vt = np.linalg.svd(A, full_matrices=False)
    var = s ** 2
    total = var.sum()
    if total <= 0:
        raise ValueError("activity has no variance (every unit is constant)")
    frac = np.cumsum(var) / total
    k = int(np.searchsorted(frac, keep - 1e-12) + 1) if dims is None else int(dims)
    k = min(k, int(np.sum(s > s[0] * 1e-12)))      # never keep numerically-zero directions
    return Reduced(vt[:k].T.copy(), k, float(frac[k - 1]))


def canonical_correlations(a: Reduced, b: Reduced) -> np.ndarray:
    """The min(k_a, k_b) canonical correlations, largest first."""
    if a.basis.shape[0] != b.basis.shape[0]:
        raise ValueError("the two activities have different numbers of samples")
    rho = np.linalg.svd(a.basis.T @ b.basis, compute_uv=False)
    return np.clip(rho, 0.0, 1.0)


def svcca_distance(a: Reduced, b: Reduced) -> tuple[float, float]:
    """(1 − mean ρ, arccos(mean ρ))."""
    m = float(canonical_correlations(a, b).mean())
    return 1.0 - m, float(np.arccos(np.clip(m, -1.0, 1.0)))


def distance_matrices(reduced: list[Reduced]) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise distances [n, n] (1 − mean ρ) and angular distances [n, n]."""
    n = len(reduced)
    # one Gram matrix of all bases; each pair's correlations are the singular
    # values of its (k_i x k_j) block
    G = np.concatenate([r.basis for r in reduced], axis=1)
    G = G.T @ G
    edges = np.concatenate([[0], np.cumsum([r.k for r in reduced])])
    D = np.zeros((n, n))
    A = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            block = G[edges[i]:edges[i + 1], edges[j]:edges[j + 1]]
            m = float(np.clip(np.linalg.svd(block, compute_uv=False), 0, 1).mean())
            D[i, j], A[i, j] = 1.0 - m, float(np.arccos(m))
    return D + D.T, A + A.T


def reference_cca(X: np.ndarray, Y: np.ndarray, reg: float = 0.0) -> np.ndarray:
    """Canonical correlations by covariance whitening (for tests):
    singular values of Σxx^-1/2 Σxy Σyy^-1/2.  X [p, n], Y [q, n]."""
    X = X - X.mean(1, keepdims=True)
    Y = Y - Y.mean(1, keepdims=True)
    n = X.shape[1]
    Sxx = X @ X.T / n + reg * np.eye(len(X))
    Syy = Y @ Y.T / n + reg * np.eye(len(Y))
    Sxy = X @ Y.T / n

    def inv_sqrt(S):
        w, V = np.linalg.eigh(S)
        return V @ np.diag(w ** -0.5) @ V.T
    return np.clip(np.linalg.svd(inv_sqrt(Sxx) @ Sxy @ inv_sqrt(Syy), compute_uv=False), 0, 1)
