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

:class:`SVCCAOptions` holds the analysis's choices; ``SVCCAOptions.original()``
is the original study's analysis at its commit 4b4fb8a (the one that produced
the paper's distance matrix): exactly 2 SVD directions, 120/N evidence levels
per context, every probe trial from its own random state 0.3·N(0, 1).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from rnn.model import RateRNN
from rnn.protocol import X0_SCALE
from rnn.rng import PROBE, Streams
from tasks import DecisionTask


@dataclass(frozen=True)
class Reduced:
    """One network's SVCCA reduction: ``basis`` [samples, k] orthonormal
    (right singular vectors), ``k``, and the variance fraction they explain."""
    basis: np.ndarray
    k: int
    explained: float


@dataclass(frozen=True)
class SVCCAOptions:
    """The choices of one SVCCA analysis (recorded with every cache)."""
    dims: int | None = None       # SVD directions kept; None: the fewest explaining >= keep
    keep: float = 0.95            # variance fraction for dims=None
    levels: int | None = 10       # evidence levels per context; None: 120/N (the original)
    x0: str = "zero"              # probe trials start at x = 0, or "random": 0.3·N(0, 1)
    probe_seed: int = 0           # with x0="random": seeds each network's draws

    def __post_init__(self):
        if self.x0 not in ("zero", "random"):
            raise ValueError(f"x0 must be 'zero' or 'random', got {self.x0!r}")
        if self.dims is not None and self.dims < 1:
            raise ValueError(f"dims must be at least 1, got {self.dims}")
        if not 0 < self.keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {self.keep}")
        if self.levels is not None and self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")

    @staticmethod
    def original(probe_seed: int = 0) -> "SVCCAOptions":
        return SVCCAOptions(dims=2, levels=None, x0="random", probe_seed=probe_seed)

    def levels_for(self, task: DecisionTask) -> int:
        return self.levels if self.levels is not None else max(2, 120 // task.n_contexts)

    def label(self) -> str:
        if dataclasses.replace(self, probe_seed=0) == SVCCAOptions.original():
            return "original"
        if self == SVCCAOptions():
            return "tool"
        return (f"dims {self.dims or f'{self.keep:g} var'}, levels "
                f"{self.levels or '120/N'}, x0 {self.x0}")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "label": self.label()}

    def network_seed(self, key: str, draw: int = 0) -> int:
        """The probe seed of one network (``key``: e.g. its weights hash); ``draw``
        numbers independent repeats (the noise floor uses draws 0 and 1)."""
        h = hashlib.sha256(f"{self.probe_seed}:{draw}:{key}".encode()).hexdigest()
        return int(h[:15], 16)

    def activity(self, model: RateRNN, task: DecisionTask, key: str, draw: int = 0
                 ) -> np.ndarray:
        """The network's activity [units, inputs·steps] under these options."""
        if self.x0 == "zero":
            return network_activity(model, task, levels=self.levels_for(task))
        return network_activity(model, task, levels=self.levels_for(task), x0_scale=X0_SCALE,
                                seed=self.network_seed(key, draw))

    def reduce(self, activity: np.ndarray) -> "Reduced":
        return reduce(activity, self.keep, self.dims)


def network_activity(model: RateRNN, task: DecisionTask, steps: int | None = None,
                     x0_scale: float = 0.0, seed: int = 0, rates: bool = False,
                     levels: int = 10) -> np.ndarray:
    """Hidden states of the free units under the SVCCA inputs: [units, inputs·steps].

    ``levels`` static evidence values per context.  By default every input
    starts from x = 0.  ``x0_scale`` > 0 starts each from
    ``x0_scale``·N(0, 1) instead (the original code's random initial state,
    0.3; independent for every input), drawn from the project's PROBE stream
    of ``seed``; ``rates`` records φ(x) instead of x."""
    st = task.svcca_inputs(levels)
    u = task.static_trials(st, steps).to(torch.float64)                # [T, K, I]
    red = model.reduced().to(device="cpu", dtype=torch.float64)   # analyses: CPU float64
    x0 = torch.zeros(1, u.shape[1], red.hidden, dtype=torch.float64)
    if x0_scale > 0:
        x0 = x0_scale * Streams([seed], PROBE).normal(*x0.shape[1:], dtype=torch.float64)
    sim = red.simulate(u, x0, keep="all")
    X = sim.states[:, 0]                                               # [T, K, H]
    if rates:
        X = red.phi(X)
    return X.permute(2, 1, 0).reshape(red.hidden, -1).numpy()


GRAM_MIN = 1e-3     # the Gram route when every kept direction has s >= GRAM_MIN * s_max


def reduce(activity: np.ndarray, keep: float = 0.95, dims: int | None = None) -> Reduced:
    """Centre each unit, SVD, keep the fewest top directions whose s² add up to
    at least ``keep`` of the total (or exactly ``dims`` directions, as the
    original code's fixed NUM_DIMENSIONS = 2).  activity: [units, samples].

    The SVD is taken through the units' Gram matrix A Aᵀ (units ≪ samples:
    about 19× faster than LAPACK's SVD of the wide matrix, bench/bench_similarity.py): its
    eigenvectors are U, and V_k = Aᵀ U_k / s_k.  That is accurate to about
    1e-16 · (s_max / s_k)² — within 1e-10 when every kept direction has
    s_k ≥ 1e-3 · s_max (true whenever directions are kept for 95% of the
    variance); otherwise (e.g. 2 fixed directions of nearly one-dimensional
    activity) the full SVD is taken."""
    A = np.asarray(activity, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"activity must be [units, samples], got shape {A.shape}")
    A = A - A.mean(axis=1, keepdims=True)
    lam, U = np.linalg.eigh(A @ A.T)
    s = np.sqrt(np.clip(lam[::-1], 0.0, None))
    if s[0] > 0:
        k, explained = directions_kept(s, keep, dims)
        if s[k - 1] >= GRAM_MIN * s[0]:
            basis = (A.T @ U[:, ::-1][:, :k]) / s[:k]
            return Reduced(np.ascontiguousarray(basis), k, explained)
    _, s, vt = np.linalg.svd(A, full_matrices=False)
    k, explained = directions_kept(s, keep, dims)
    return Reduced(vt[:k].T.copy(), k, explained)


def directions_kept(s: np.ndarray, keep: float = 0.95, dims: int | None = None
                    ) -> tuple[int, float]:
    """How many of the singular values ``s`` (descending) SVCCA keeps, and the
    variance fraction they explain: the fewest reaching ``keep``, or ``dims``,
    never a numerically-zero direction."""
    var = s ** 2
    total = var.sum()
    if total <= 0:
        raise ValueError("activity has no variance (every unit is constant)")
    frac = np.cumsum(var) / total
    k = int(np.searchsorted(frac, keep - 1e-12) + 1) if dims is None else int(dims)
    k = min(k, int(np.sum(s > s[0] * 1e-12)))      # never keep numerically-zero directions
    return k, float(frac[k - 1])


def correlations(B: torch.Tensor, ka: torch.Tensor, kb: torch.Tensor) -> torch.Tensor:
    """SVCCA's canonical correlations of a batch of pairs, the one place they
    are computed: B [pairs, R, R] holds each pair's V_aᵀ V_b (bases zero-padded
    to R columns, possibly with more than k columns: only the first k_a rows
    and k_b columns count).  [pairs, R], largest first, zero beyond min(k_a, k_b)."""
    ar = torch.arange(B.shape[-1])
    mask = (ar[None, :, None] < ka[:, None, None]) & (ar[None, None, :] < kb[:, None, None])
    rho = torch.linalg.svdvals(B * mask).clamp(0, 1)
    return rho * (ar[None] < torch.minimum(ka, kb)[:, None])


def mean_correlations(B: torch.Tensor, ka: torch.Tensor, kb: torch.Tensor) -> torch.Tensor:
    """The mean of each pair's min(k_a, k_b) canonical correlations (see
    :func:`correlations`): SVCCA's similarity."""
    return correlations(B, ka, kb).sum(1) / torch.minimum(ka, kb)


def canonical_correlations(a: Reduced, b: Reduced) -> np.ndarray:
    """The min(k_a, k_b) canonical correlations of one pair, largest first."""
    if a.basis.shape[0] != b.basis.shape[0]:
        raise ValueError("the two activities have different numbers of samples")
    B = torch.from_numpy(a.basis.T @ b.basis)
    R = max(a.k, b.k)
    B = torch.nn.functional.pad(B, (0, R - b.k, 0, R - a.k))[None]
    return correlations(B, torch.tensor([a.k]), torch.tensor([b.k]))[0, :min(a.k, b.k)].numpy()


def svcca_distance(a: Reduced, b: Reduced) -> tuple[float, float]:
    """(1 − mean ρ, arccos(mean ρ)) of one pair."""
    D, A = distance_matrices([a, b])
    return float(D[0, 1]), float(A[0, 1])


PAIR_CHUNK = 2048               # pairs per batched SVD


def distance_matrices(reduced: list[Reduced]) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise distances [n, n] (1 − mean ρ) and angular distances [n, n]."""
    n = len(reduced)
    D, A = np.zeros((n, n)), np.zeros((n, n))
    if n < 2:
        return D, A
    if len({r.basis.shape[0] for r in reduced}) > 1:
        raise ValueError("the activities have different numbers of samples")
    # bases zero-padded to K columns: the Gram matrix of the stacked bases
    # holds every pair's V_aᵀ V_b as a K x K block
    K = max(r.k for r in reduced)
    W = np.zeros((reduced[0].basis.shape[0], n * K))
    for i, r in enumerate(reduced):
        W[:, i * K:i * K + r.k] = r.basis
    G = torch.from_numpy(W.T @ W).reshape(n, K, n, K).transpose(1, 2)   # [n, n, K, K]
    k = torch.tensor([r.k for r in reduced])
    I, J = np.triu_indices(n, 1)
    for lo in range(0, len(I), PAIR_CHUNK):
        ii, jj = I[lo:lo + PAIR_CHUNK], J[lo:lo + PAIR_CHUNK]
        m = mean_correlations(G[ii, jj], k[ii], k[jj]).numpy()
        D[ii, jj] = D[jj, ii] = 1.0 - m
        A[ii, jj] = A[jj, ii] = np.arccos(np.clip(m, -1.0, 1.0))
    return D, A


@dataclass(frozen=True)
class SVCCAResult:
    """Distances of a list of networks under one analysis.

    distances, angular [n, n]; dims [n] (SVD directions kept per network);
    noise_floor [n]: each network's distance to itself under a second draw of
    the random probe starts (all 0 when the starts are x = 0)."""
    distances: np.ndarray
    angular: np.ndarray
    dims: list[int]
    noise_floor: np.ndarray
    computed: int = 0            # networks reduced now (the rest came from a cache)
    new_pairs: int = 0           # pairwise distances computed now


class PairCache:
    """SVCCA distances keyed by the two networks' weights hashes, for one
    analysis: any groups file listing the same networks reuses them.

    Stored as JSON: {"analysis": options, "networks": {hash: [dims, noise
    floor]}, "pairs": {"hashA hashB": [distance, angular]}} (hashes sorted)."""

    def __init__(self, options: "SVCCAOptions | dict", path=None, load: bool = True):
        """``options``: the analysis (or its dict, e.g. another metric's, see
        rnn.similarity); ``path``: where the cache is saved; ``load=False``
        starts empty (-reload)."""
        self.analysis = options if isinstance(options, dict) else options.to_dict()
        self.path = path
        self.networks: dict[str, list] = {}
        self.pairs: dict[str, list] = {}
        self.dropped = 0                   # entries of the file that were not reused
        from rnn.io import is_regular_file
        if path is not None and load and is_regular_file(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                if isinstance(data, dict) and data.get("analysis") == self.analysis:
                    self._take(data.get("networks"), data.get("pairs"))
            except FileNotFoundError:
                pass                       # no cache yet
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                self.dropped = -1          # unreadable: start empty
            if self.dropped:
                import sys
                what = "could not be read" if self.dropped < 0 else \
                    f"has {self.dropped} entries that are not valid distances"
                print(f"note: cache {path} {what}; those distances are recomputed",
                      file=sys.stderr)

    def bounds(self) -> tuple[float, float]:
        """The values a distance of this analysis's metric can take (with
        rounding room): 1 − a mean correlation or 1 − CKA lie in [0, 1], an
        angle in [0, π/2], a DSA distance is finite and not negative."""
        metric = self.analysis.get("metric", "svcca")
        tol = 1e-6
        if metric in ("svcca", "pwcca", "cka"):
            return -tol, 1 + tol
        if metric == "procrustes":
            return -tol, math.pi / 2 + tol
        return -tol, math.inf

    def _take(self, networks, pairs) -> None:
        """Keep the entries of a loaded file that hold valid values."""
        lo, hi = self.bounds()

        def number(x, low=-math.inf, high=math.inf):
            return isinstance(x, (int, float)) and not isinstance(x, bool) and \
                math.isfinite(x) and low <= x <= high

        if not isinstance(networks, dict) or not isinstance(pairs, dict):
            self.dropped = -1
            return
        for k, v in networks.items():
            if isinstance(v, list) and len(v) == 2 and number(v[0], 0) and number(v[1], lo):
                self.networks[k] = v
            else:
                self.dropped += 1
        for k, v in pairs.items():
            ok = isinstance(v, list) and 1 <= len(v) <= 2 and number(v[0], lo, hi) and \
                (len(v) == 1 or number(v[1], -1e-6, math.pi / 2 + 1e-6))
            if ok and isinstance(k, str) and len(k.split(" ")) == 2:
                self.pairs[k] = v
            else:
                self.dropped += 1

    @staticmethod
    def file_name(options: SVCCAOptions) -> str:
        h = hashlib.sha256(json.dumps(options.to_dict(), sort_keys=True).encode()).hexdigest()
        return f"svcca_cache_{h[:10]}.json"

    @staticmethod
    def pair(a: str, b: str) -> str:
        return " ".join(sorted((a, b)))

    def missing(self, keys: list[str]) -> tuple[list[int], int]:
        """The networks (indices into ``keys``) this cache lacks or that have a
        pair missing from it, and the number of missing pairs."""
        n = len(keys)
        todo = {i for i in range(n) if keys[i] not in self.networks}
        pairs = 0
        for i in range(n):
            for j in range(i + 1, n):
                if keys[i] != keys[j] and self.pair(keys[i], keys[j]) not in self.pairs:
                    todo |= {i, j}
                    pairs += 1
        return sorted(todo), pairs

    def save(self) -> None:
        from rnn.io import atomic_write_text, dumps_strict
        if self.path is not None:
            atomic_write_text(self.path, dumps_strict({"analysis": self.analysis,
                                                       "networks": self.networks,
                                                       "pairs": self.pairs}, indent=None))


def svcca_distances(models: list[RateRNN], tasks: list[DecisionTask], keys: list[str],
                    options: SVCCAOptions, progress=lambda it: it,
                    cache: PairCache | None = None) -> SVCCAResult:
    """Every network's reduction once, then all pairwise distances.  ``keys``
    identify the networks (weights hashes) for their random probe starts and
    the ``cache``; only networks with a pair missing from it are reduced.
    The result's ``computed`` field counts them."""
    n = len(models)
    cache = cache if cache is not None else PairCache(options)
    todo, new_pairs = cache.missing(keys)
    reduced: dict[int, Reduced] = {}
    for i in progress(todo):
        model, task, key = models[i], tasks[i], keys[i]
        r = options.reduce(options.activity(model, task, key))
        reduced[i] = r
        floor = 0.0
        if options.x0 == "random":
            floor = svcca_distance(r, options.reduce(options.activity(model, task, key, 1)))[0]
        cache.networks[key] = [r.k, floor]
    if todo:
        D, A = distance_matrices([reduced[i] for i in todo])
        for a, i in enumerate(todo):
            for b, j in enumerate(todo):
                if a < b:
                    cache.pairs[PairCache.pair(keys[i], keys[j])] = [D[a, b], A[a, b]]
    D, A = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            d, ang = cache.pairs[PairCache.pair(keys[i], keys[j])] if keys[i] != keys[j] \
                else (0.0, 0.0)
            D[i, j] = D[j, i] = d
            A[i, j] = A[j, i] = ang
    dims = [int(cache.networks[k][0]) for k in keys]
    floor = np.array([float(cache.networks[k][1]) for k in keys])
    return SVCCAResult(D, A, dims, floor, len(todo), new_pairs)


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
