"""The one compare pipeline: distances between networks under any metric of
the table in :mod:`rnn.analysis.metrics`, with caches, for every caller (the API, the
analysis scripts, the grid runner, the experiments).

Every activity metric works on the activity :mod:`rnn.analysis.svcca` builds (the same
static probe inputs, the same analysis options): one network's activity is A
[units, samples], centred per unit, with the SVD A = U S Vᵀ (its numerical
rank r: singular values above 1e-6 of the largest), computed once per
network (:func:`represent`).  For a pair (a, b) every geometric metric
follows from the r_a × r_b matrix G = V_aᵀ V_b and the two networks' S and U,
so all pairs come from one Gram matrix of the stacked V's
(:func:`pair_distances`); each metric's formula is its pair function in
:mod:`rnn.analysis.metrics`.

    svcca       1 − mean canonical correlation of the top-k SVD directions
                (k: --dims, or 95% of the variance; Raghu et al. 2017).
    pwcca       projection-weighted CCA (Morcos, Raghu & Bengio 2018), the
                mean of its two directions.
    cka         1 − linear CKA (Kornblith et al. 2019).
    procrustes  the angular shape distance of Williams et al. (2021) after
                partial whitening Aᵀ(αI + (1−α)C)^(-1/2), C the units'
                covariance scaled to mean variance 1 per unit; α = 1 (default)
                is Procrustes, α = 0 arccos of the mean canonical correlation.
    dsa         Dynamical Similarity Analysis (Ostrow et al. 2023) with the
                ``dsa-metric`` library: a delay-embedded DMD operator fitted
                per network to its trials [inputs, steps, units], compared by
                the library's ``SimilarityTransformDist`` (default score
                'wasserstein': the optimal-transport distance between the two
                operators' eigenvalues, zero for conjugate systems; 'angular'
                optimises a rotation per pair, seconds per pair on a CPU).
    topology    Euclidean distance between the attractor input-topology
                descriptors (rnn.analysis.compare.topology_descriptor).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rnn.analysis.metrics import RANK_TOL, REGISTRY, Pairs, cache_key
from rnn.analysis.pair_cache import PairCache
from rnn.analysis.svcca import SVCCAOptions, directions_kept

PAIR_CHUNK = 2048               # pairs per batched SVD
GRAM_MIN = 1e-3                 # the Gram route when every direction kept has s >= GRAM_MIN * s_max


@dataclass(frozen=True)
class DSAOptions:
    """The dsa-metric settings (recorded with every DSA cache)."""
    n_delays: int = 10            # delays in the Hankel embedding
    delay_interval: int = 10      # steps between delays (10 delays x 10 steps = 100 steps)
    rank: int = 10                # rank of the fitted DMD operator
    score: str = "wasserstein"    # or "angular"
    iters: int = 3000             # with score="angular": optimisation steps per pair
    lr: float = 0.01

    def __post_init__(self):
        if self.score not in ("wasserstein", "angular"):
            raise ValueError(f"DSA score must be 'wasserstein' or 'angular', got {self.score!r}")
        for f in ("n_delays", "delay_interval", "rank", "iters"):
            if getattr(self, f) < 1:
                raise ValueError(f"DSA {f} must be at least 1, got {getattr(self, f)}")


@dataclass(frozen=True)
class Representation:
    """One network's centred activity by its SVD: V [samples, r] (orthonormal),
    s [r], U [units, r]; k: the SVCCA directions kept; explained: the variance
    fraction those k directions explain."""
    V: np.ndarray
    s: np.ndarray
    U: np.ndarray
    k: int
    explained: float = 1.0

    @property
    def r(self) -> int:
        return len(self.s)


def represent(activity: np.ndarray, options: SVCCAOptions = SVCCAOptions(),
              directions: str = "rank") -> Representation:
    """The SVD of one network's activity [units, samples], centred per unit:
    the k directions SVCCA keeps (``directions="kept"``) or every direction
    down to the numerical rank (``"rank"``; never fewer than k).

    The SVD is taken through the units' Gram matrix A Aᵀ (units ≪ samples:
    about 19× faster than LAPACK's SVD of the wide matrix, bench/bench_similarity.py):
    its eigenvectors are U, and V = Aᵀ U / s.  That is accurate to about
    1e-16 · (s_max / s_j)² — within 1e-10 when every direction taken has
    s_j ≥ 1e-3 · s_max (true whenever SVCCA keeps directions for 95% of the
    variance); otherwise the full SVD is taken."""
    if directions not in ("kept", "rank"):
        raise ValueError(f"directions must be 'kept' or 'rank', got {directions!r}")
    A = np.asarray(activity, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"activity must be [units, samples], got shape {A.shape}")
    A = A - A.mean(axis=1, keepdims=True)
    lam, U = np.linalg.eigh(A @ A.T)
    s, U = np.sqrt(np.clip(lam[::-1], 0.0, None)), U[:, ::-1]
    if s[0] > 0:
        k, explained = directions_kept(s, options.keep, options.dims)
        r = k if directions == "kept" else max(k, int(np.sum(s > s[0] * RANK_TOL)))
        if s[r - 1] >= GRAM_MIN * s[0]:
            V = (A.T @ U[:, :r]) / s[:r]
            return Representation(np.ascontiguousarray(V), s[:r].copy(),
                                  np.ascontiguousarray(U[:, :r]), k, explained)
    u, s, vt = np.linalg.svd(A, full_matrices=False)
    k, explained = directions_kept(s, options.keep, options.dims)
    r = k if directions == "kept" else max(k, int(np.sum(s > s[0] * RANK_TOL)))
    return Representation(vt[:r].T.copy(), s[:r].copy(), u[:, :r].copy(), k, explained)


def canonical_correlations(a: Representation, b: Representation) -> np.ndarray:
    """SVCCA's min(k_a, k_b) canonical correlations of one pair, largest first."""
    from rnn.analysis.svcca import correlations
    if a.V.shape[0] != b.V.shape[0]:
        raise ValueError("the two activities have different numbers of samples")
    B = torch.from_numpy(a.V[:, :a.k].T @ b.V[:, :b.k])
    R = max(a.k, b.k)
    B = torch.nn.functional.pad(B, (0, R - b.k, 0, R - a.k))[None]
    return correlations(B, torch.tensor([a.k]), torch.tensor([b.k]))[0, :min(a.k, b.k)].numpy()


def whitened_spectrum(rep: Representation, alpha: float) -> np.ndarray:
    """Singular values of the partially whitened activity, Z = Aᵀ(αI + (1−α)C)^(-1/2)
    with C = AAᵀ/M scaled to mean eigenvalue 1 over the units."""
    if alpha == 1.0:
        return rep.s
    var = rep.s ** 2
    c = var / (var.sum() / rep.U.shape[0])          # C's eigenvalues, mean 1 per unit
    return rep.s / np.sqrt(alpha + (1.0 - alpha) * c)


def _padded(values: list[np.ndarray], width: int) -> torch.Tensor:
    out = torch.zeros(len(values), width, dtype=torch.float64)
    for i, v in enumerate(values):
        out[i, :len(v)] = torch.as_tensor(v)
    return out


def pair_distances(reps: list[Representation], metrics: list[str], alpha: float = 1.0,
                   progress=lambda it: it) -> dict[str, np.ndarray]:
    """All pairwise distances [n, n] under the "svd" ``metrics`` of the table."""
    n = len(reps)
    out = {m: np.zeros((n, n)) for m in metrics}
    if n < 2:
        return out
    if len({rep.V.shape[0] for rep in reps}) > 1:
        raise ValueError("the activities have different numbers of samples")
    R = max(rep.r for rep in reps)
    # each basis padded with zero columns to R: the Gram matrix of the stacked
    # bases holds every pair's V_aᵀ V_b as an R x R block (zeros change no
    # singular value, and the padded s, t and U are zero there too)
    W = np.zeros((reps[0].V.shape[0], n * R))
    for i, rep in enumerate(reps):
        W[:, i * R:i * R + rep.r] = rep.V
    G = torch.from_numpy(W.T @ W).reshape(n, R, n, R).transpose(1, 2)   # [n, n, R, R]
    S = _padded([rep.s for rep in reps], R)
    T = _padded([whitened_spectrum(rep, alpha) for rep in reps], R)
    rank = torch.tensor([rep.r for rep in reps])
    kk = torch.tensor([rep.k for rep in reps])
    U = torch.zeros(n, max(rep.U.shape[0] for rep in reps), R, dtype=torch.float64)
    for i, rep in enumerate(reps):                   # networks may differ in size
        U[i, :rep.U.shape[0], :rep.r] = torch.as_tensor(rep.U)
    I, J = np.triu_indices(n, 1)
    for lo in progress(range(0, len(I), PAIR_CHUNK)):
        ii, jj = I[lo:lo + PAIR_CHUNK], J[lo:lo + PAIR_CHUNK]
        a, b = torch.as_tensor(ii), torch.as_tensor(jj)
        batch = Pairs(G[ii, jj], S[a], S[b], T[a], T[b], kk[a], kk[b], rank[a], rank[b],
                      U[a], U[b])
        for m in metrics:
            v = REGISTRY[m].pair(batch).numpy()
            out[m][ii, jj] = v
            out[m][jj, ii] = v
    return out


def trials_of(activity: np.ndarray, steps: int) -> np.ndarray:
    """[units, inputs·steps] → [inputs, steps, units] (DSA's trials)."""
    units = activity.shape[0]
    return np.ascontiguousarray(activity.reshape(units, -1, steps).transpose(1, 2, 0))


def dsa_operator(activity: np.ndarray, steps: int, opts: DSAOptions) -> np.ndarray:
    """The DMD operator [rank, rank] that dsa-metric fits to one network's trials."""
    from DSA import DMD
    X = trials_of(activity, steps)
    X = (X - X.mean(axis=(0, 1), keepdims=True)).astype(np.float32)   # the library's precision
    dmd = DMD(X, n_delays=opts.n_delays, delay_interval=opts.delay_interval, rank=opts.rank,
              device="cpu")
    dmd.fit()
    return dmd.A_v.detach().cpu().double().numpy()


def dsa_distance(A: np.ndarray, B: np.ndarray, opts: DSAOptions) -> float:
    """dsa-metric's similarity-transform distance between two DMD operators."""
    from DSA import SimilarityTransformDist
    sim = SimilarityTransformDist(iters=opts.iters, score_method=opts.score, lr=opts.lr)
    return float(sim.fit_score(A.astype(np.float32), B.astype(np.float32)))


def metric_cache(metric: str, options: SVCCAOptions, directory: Path | None,
                 alpha: float = 1.0, dsa: DSAOptions = DSAOptions(),
                 load: bool = True) -> PairCache:
    """The cache of one metric under one analysis, in ``directory`` (None: in
    memory only).  Its key is the metric table's (rnn.analysis.metrics.cache_key)."""
    key = cache_key(metric, options.to_dict(), alpha, dsa)
    path = None if directory is None else \
        Path(directory) / PairCache.file_name(key, REGISTRY[metric].cache_name())
    return PairCache(key, path, load=load)


@dataclass(frozen=True)
class MetricResult:
    """One metric's distances between the networks.

    distances [n', n'] over the networks in ``kept`` (all of them, except
    for topology: a network with no fixed point has no descriptor);
    noise_floor [n']: each network against itself under a second draw of the
    random probe starts (zeros otherwise); directions [n']: SVD directions
    (SVCCA's k; the rank for the other "svd" metrics); angular: SVCCA's
    arccos(mean ρ) [n', n'] (None for the others); computed: networks whose
    activity or fixed points were computed now; new_pairs: distances computed
    now; cache: where they are kept (None: not kept, or topology, whose fixed
    points are cached per network); topology: rnn.analysis.compare.Topology."""
    distances: np.ndarray
    noise_floor: np.ndarray
    computed: int
    new_pairs: int
    kept: list[int]
    directions: list[int] = field(default_factory=list)
    angular: np.ndarray | None = None
    cache: PairCache | None = None
    topology: object = None


def network_distances(networks, metrics: list[str], options: SVCCAOptions = SVCCAOptions(),
                      cache_dir: Path | None = None, keys: list[str] | None = None,
                      alpha: float = 1.0, dsa: DSAOptions = DSAOptions(),
                      reload: bool = False, save: bool = True,
                      progress=lambda it, desc: it) -> dict[str, MetricResult]:
    """Pairwise distances between ``networks`` (each with .model, .task, .name
    and, for cached fixed points, .path) under each of ``metrics`` (names in
    rnn.analysis.metrics.REGISTRY): the one compare pipeline.

    Distances are cached per metric in ``cache_dir`` (None: not on disk) keyed
    by the networks' weights hashes ``keys`` (computed when not given); each
    network's activity is simulated once for all metrics that need it, its SVD
    or DMD operator computed once; only networks with a pair missing from a
    cache are simulated.  ``reload``: recompute, ignoring the caches; ``save``:
    write the caches that gained entries.  Topology's fixed points are cached
    beside each network read from disk (not at all for one built in memory)."""
    from rnn.analysis.fixed_points import weights_hash
    unknown = [m for m in metrics if m not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r} (known: {', '.join(REGISTRY)})")
    if keys is None:
        keys = [weights_hash(net.model) for net in networks]
    activity = [m for m in metrics if REGISTRY[m].source != "fixed_points"]
    caches = {m: metric_cache(m, options, cache_dir, alpha, dsa, load=not reload)
              for m in activity}
    results = activity_distances(networks, keys, options, activity, caches, alpha, dsa,
                                 progress)
    for m in activity:
        if save and results[m].computed and caches[m].path is not None:
            caches[m].save()
    for m in metrics:
        if REGISTRY[m].source == "fixed_points":
            results[m] = _topology(networks, reload, progress)
    return {m: results[m] for m in metrics}


def _topology(networks, recompute: bool, progress) -> MetricResult:
    from rnn.analysis.compare import group_topology
    topo = group_topology(networks, None, "small", recompute,
                          lambda it: progress(it, "fixed points"))
    kept = topo.kept
    return MetricResult(topo.distances(), np.zeros(len(kept)), topo.solved, 0, kept,
                        [topo.points[i] for i in kept], topology=topo)


def activity_distances(networks, keys: list[str], options: SVCCAOptions, metrics: list[str],
                       caches: dict[str, PairCache], alpha: float = 1.0,
                       dsa: DSAOptions = DSAOptions(),
                       progress=lambda it, desc: it) -> dict[str, MetricResult]:
    """The activity metrics of :func:`network_distances`, reusing each metric's
    cache (keyed by weights hashes ``keys``).  With random probe starts each
    network is also compared with itself under a second draw (the noise floor)."""
    todo_by_metric = {m: caches[m].missing(keys) for m in metrics}
    need = sorted(set().union(*(set(t) for t, _ in todo_by_metric.values())))
    random = options.x0 == "random"
    geo = [m for m in metrics if REGISTRY[m].source == "svd" and todo_by_metric[m][0]]
    ops_for = [m for m in metrics if REGISTRY[m].source == "operator" and todo_by_metric[m][0]]
    directions = "rank" if any(REGISTRY[m].directions == "rank" for m in geo) else "kept"
    reps: dict[int, list[Representation]] = {}
    ops: dict[int, list[np.ndarray]] = {}
    for i in (progress(need, "activity") if need else ()):
        net = networks[i]
        acts = [options.activity(net.model, net.task, keys[i], d)
                for d in ((0, 1) if random else (0,))]
        if any(i in todo_by_metric[m][0] for m in geo):
            reps[i] = [represent(a, options, directions) for a in acts]
        if any(i in todo_by_metric[m][0] for m in ops_for):
            ops[i] = [dsa_operator(a, net.task.steps, dsa) for a in acts]
    if geo:
        _store_svd_pairs(geo, reps, keys, todo_by_metric, caches, alpha, random, progress)
    for m in ops_for:
        _store_operator_pairs(m, ops, keys, todo_by_metric[m][0], caches[m], dsa, random,
                              progress)
    return {m: _from_cache(caches[m], keys, REGISTRY[m].angle, *todo_by_metric[m])
            for m in metrics}


def _store_svd_pairs(geo, reps, keys, todo_by_metric, caches, alpha, random, progress):
    """Every missing pair of the "svd" metrics ``geo`` into their caches."""
    union = sorted(set().union(*(todo_by_metric[m][0] for m in geo)))
    D = pair_distances([reps[i][0] for i in union], geo, alpha,
                       progress=lambda it: progress(it, "pairs"))
    floors = {m: {} for m in geo}
    if random:
        for i in union:
            F = pair_distances(reps[i], geo, alpha)
            for m in geo:
                floors[m][i] = float(F[m][0, 1])
    for m in geo:
        cache, todo = caches[m], set(todo_by_metric[m][0])
        for a, i in enumerate(union):
            if i in todo:
                rep = reps[i][0]
                cache.networks[keys[i]] = [rep.k if REGISTRY[m].directions == "kept"
                                           else rep.r, floors[m].get(i, 0.0)]
            for b in range(a + 1, len(union)):
                j = union[b]
                if i in todo and j in todo and keys[i] != keys[j]:
                    d = float(D[m][a, b])
                    cache.pairs[PairCache.pair(keys[i], keys[j])] = \
                        [d, float(np.arccos(np.clip(1 - d, -1, 1)))] if REGISTRY[m].angle \
                        else [d]


def _store_operator_pairs(m, ops, keys, todo, cache, dsa, random, progress):
    for i in todo:
        floor = dsa_distance(ops[i][0], ops[i][1], dsa) if random else 0.0
        cache.networks[keys[i]] = [dsa.rank, floor]
    pairs = [(i, j) for a, i in enumerate(todo) for j in todo[a + 1:]
             if keys[i] != keys[j] and PairCache.pair(keys[i], keys[j]) not in cache.pairs]
    for i, j in progress(pairs, f"{m} pairs"):
        cache.pairs[PairCache.pair(keys[i], keys[j])] = [dsa_distance(ops[i][0], ops[j][0], dsa)]


def _from_cache(cache: PairCache, keys: list[str], angle: bool, todo: list[int],
                new_pairs: int) -> MetricResult:
    n = len(keys)
    D = np.zeros((n, n))
    A = np.zeros((n, n)) if angle else None
    for i in range(n):
        for j in range(i + 1, n):
            if keys[i] != keys[j]:
                v = cache.pairs[PairCache.pair(keys[i], keys[j])]
                D[i, j] = D[j, i] = v[0]
                if angle:
                    A[i, j] = A[j, i] = v[1] if len(v) > 1 else np.arccos(np.clip(1 - v[0], -1, 1))
    floor = np.array([float(cache.networks[k][1]) for k in keys])
    dirs = [int(cache.networks[k][0]) for k in keys]
    return MetricResult(D, floor, len(todo), new_pairs, list(range(n)), dirs, A, cache)
