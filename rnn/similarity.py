"""Representational and dynamical similarity of networks, several metrics side by side.

Every metric works on the activity :mod:`rnn.svcca` builds (the same static
probe inputs, the same analysis options): one network's activity is A
[units, samples], centred per unit, with the SVD A = U S Vᵀ (its numerical
rank r: singular values above 1e-6 of the largest).  Each network's SVD is
computed once; for a pair (a, b) every geometric metric follows from the
r_a × r_b matrix G = V_aᵀ V_b and the two networks' S and U, so all pairs come
from one Gram matrix of the stacked V's.

    svcca       1 − mean canonical correlation of the top-k SVD directions
                (k: --dims, or 95% of the variance) — :mod:`rnn.svcca`'s
                number exactly (Raghu et al. 2017).
    pwcca       1 − Σ wᵢρᵢ / Σ wᵢ over all r directions, the weights wᵢ the
                summed |projection| of the network's units on canonical
                variate i (Morcos, Raghu & Bengio 2018).  PWCCA is asymmetric;
                the mean of the two directions is used.
    cka         1 − linear CKA = 1 − ‖A_a A_bᵀ‖²_F / (‖A_a A_aᵀ‖_F ‖A_b A_bᵀ‖_F)
                (Kornblith et al. 2019) = 1 − ‖S_a G S_b‖²_F / (‖S_a²‖_F ‖S_b²‖_F).
    procrustes  the angular shape distance of Williams et al. (2021):
                arccos(‖Z_aᵀ Z_b‖_* / (‖Z_a‖_F ‖Z_b‖_F)), Z = A after partial
                whitening Aᵀ(αI + (1−α)C)^(-1/2), C the units' covariance
                scaled to mean variance 1 per unit.  α = 1 (default) is
                Procrustes; α = 0 is arccos of the mean canonical correlation.
                A metric (symmetric, triangle inequality).
    dsa         Dynamical Similarity Analysis (Ostrow et al. 2023) with the
                ``dsa-metric`` library: a delay-embedded DMD operator fitted
                per network to its trials [inputs, steps, units], compared by
                the library's ``SimilarityTransformDist`` (default score
                'wasserstein': the optimal-transport distance between the two
                operators' eigenvalues, which is zero for conjugate systems;
                'angular' optimises a rotation per pair, seconds per pair on a CPU).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from rnn.metrics import METRICS, label
from rnn.svcca import PAIR_CHUNK, PairCache, SVCCAOptions, directions_kept, mean_correlations

RANK_TOL = 1e-6                 # directions with s < RANK_TOL * s_max are numerical zeros


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
    s [r], U [units, r]; k: the SVCCA directions kept."""
    V: np.ndarray
    s: np.ndarray
    U: np.ndarray
    k: int

    @property
    def r(self) -> int:
        return len(self.s)


def represent(activity: np.ndarray, options: SVCCAOptions) -> Representation:
    """The SVD of one network's activity [units, samples], centred per unit."""
    A = np.asarray(activity, dtype=np.float64)
    A = A - A.mean(axis=1, keepdims=True)
    u, s, vt = np.linalg.svd(A, full_matrices=False)
    k, _ = directions_kept(s, options.keep, options.dims)
    r = max(k, int(np.sum(s > s[0] * RANK_TOL)))
    return Representation(vt[:r].T.copy(), s[:r].copy(), u[:, :r].copy(), k)


def whitened_spectrum(rep: Representation, alpha: float) -> np.ndarray:
    """Singular values of the partially whitened activity, Z = Aᵀ(αI + (1−α)C)^(-1/2)
    with C = AAᵀ/M scaled to mean eigenvalue 1 over the units."""
    if alpha == 1.0:
        return rep.s
    var = rep.s ** 2
    c = var / (var.sum() / rep.U.shape[0])          # C's eigenvalues, mean 1 per unit
    return rep.s / np.sqrt(alpha + (1.0 - alpha) * c)


def _padded(reps: list[Representation], attr: str, width: int) -> torch.Tensor:
    out = torch.zeros(len(reps), width, dtype=torch.float64)
    for i, rep in enumerate(reps):
        v = getattr(rep, attr) if isinstance(attr, str) else attr(rep)
        out[i, :len(v)] = torch.as_tensor(v)
    return out


def pair_distances(reps: list[Representation], metrics: list[str], alpha: float = 1.0,
                   progress=lambda it: it) -> dict[str, np.ndarray]:
    """All pairwise distances [n, n] of the geometric ``metrics`` (not dsa)."""
    n = len(reps)
    out = {m: np.zeros((n, n)) for m in metrics}
    if n < 2:
        return out
    R = max(rep.r for rep in reps)
    # each basis padded with zero columns to R: the Gram matrix of the stacked
    # bases holds every pair's V_aᵀ V_b as an R x R block (zeros change no
    # singular value, and the padded s, t and U are zero there too)
    W = np.zeros((reps[0].V.shape[0], n * R))
    for i, rep in enumerate(reps):
        W[:, i * R:i * R + rep.r] = rep.V
    G = torch.from_numpy(W.T @ W).reshape(n, R, n, R).transpose(1, 2)   # [n, n, R, R]
    S = _padded(reps, "s", R)
    T = _padded(reps, lambda rep: whitened_spectrum(rep, alpha), R)
    rank = torch.tensor([rep.r for rep in reps])
    kk = torch.tensor([rep.k for rep in reps])
    Upad = torch.zeros(n, max(rep.U.shape[0] for rep in reps), R, dtype=torch.float64)
    for i, rep in enumerate(reps):                   # networks may differ in size
        Upad[i, :rep.U.shape[0], :rep.r] = torch.as_tensor(rep.U)
    I, J = np.triu_indices(n, 1)
    for lo in progress(range(0, len(I), PAIR_CHUNK)):
        ii, jj = I[lo:lo + PAIR_CHUNK], J[lo:lo + PAIR_CHUNK]
        B = G[ii, jj]                                # [pairs, R, R]
        ti, tj = torch.as_tensor(ii), torch.as_tensor(jj)
        res = {}
        if "svcca" in metrics:
            res["svcca"] = 1 - mean_correlations(B, kk[ti], kk[tj])
        if "cka" in metrics:
            Si, Sj = S[ti], S[tj]
            num = ((Si[:, :, None] * B * Sj[:, None, :]) ** 2).sum((1, 2))
            den = (Si ** 4).sum(1).sqrt() * (Sj ** 4).sum(1).sqrt()
            res["cka"] = (1 - num / den).clamp(min=0)
        if "procrustes" in metrics:
            Ti, Tj = T[ti], T[tj]
            nuc = torch.linalg.svdvals(Ti[:, :, None] * B * Tj[:, None, :]).sum(1)
            cos = nuc / (Ti.norm(dim=1) * Tj.norm(dim=1))
            res["procrustes"] = torch.arccos(cos.clamp(-1, 1))
        if "pwcca" in metrics:
            P, rho, Qh = torch.linalg.svd(B)
            rho = rho.clamp(0, 1)
            m = torch.minimum(rank[ti], rank[tj])
            live = (torch.arange(R)[None] < m[:, None]).to(torch.float64)

            def one_side(U, Sv, vecs):
                # |projection| of each unit on each canonical variate: U S p_i
                w = (U @ (Sv[:, :, None] * vecs)).abs().sum(1) * live
                return 1 - (w * rho).sum(1) / w.sum(1)
            res["pwcca"] = 0.5 * (one_side(Upad[ti], S[ti], P)
                                  + one_side(Upad[tj], S[tj], Qh.transpose(1, 2)))
        for name, v in res.items():
            out[name][ii, jj] = v.numpy()
            out[name][jj, ii] = v.numpy()
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


def analysis_of(metric: str, options: SVCCAOptions, alpha: float, dsa: DSAOptions) -> dict:
    """What a metric's cache is keyed by: the activity options and the metric's own."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    extra = {"procrustes": {"alpha": alpha}, "dsa": dataclasses.asdict(dsa)}.get(metric, {})
    if metric in ("pwcca", "cka", "procrustes"):
        extra = {**extra, "rank_tol": RANK_TOL}
    d = options.to_dict()
    if metric != "svcca":
        d = {k: v for k, v in d.items() if k not in ("dims", "keep")}
    return {**d, "metric": metric, **extra}


def metric_cache(metric: str, options: SVCCAOptions, directory, alpha: float = 1.0,
                 dsa: DSAOptions = DSAOptions(), load: bool = True) -> PairCache:
    """The cache of one metric under one analysis, in ``directory``.  SVCCA's is
    rnn.svcca's own file (svcca_analysis.py and this module share it)."""
    if metric == "svcca":
        return PairCache(options, directory / PairCache.file_name(options), load=load)
    analysis = analysis_of(metric, options, alpha, dsa)
    h = hashlib.sha256(json.dumps(analysis, sort_keys=True).encode()).hexdigest()
    return PairCache(analysis, directory / f"similarity_{metric}_cache_{h[:10]}.json", load=load)


def metric_label(metric: str, alpha: float = 1.0, dsa: DSAOptions | None = None) -> str:
    return label(metric, alpha, None if dsa is None else dsa.score)


@dataclass(frozen=True)
class MetricResult:
    distances: np.ndarray
    noise_floor: np.ndarray
    computed: int                # networks whose activity was used now
    new_pairs: int


def similarity_distances(models, tasks, keys: list[str], options: SVCCAOptions,
                         metrics: list[str], caches: dict[str, PairCache],
                         alpha: float = 1.0, dsa: DSAOptions = DSAOptions(),
                         progress=lambda it, desc: it) -> dict[str, MetricResult]:
    """Pairwise distances under each metric, reusing each metric's cache (keyed
    by weights hashes ``keys``); each network's activity is simulated once for
    all metrics that need it, and its SVD / DMD operator computed once.  With
    random probe starts each network is also compared with itself under a
    second draw (the noise floor)."""
    n = len(models)
    todo_by_metric = {m: caches[m].missing(keys) for m in metrics}
    need = sorted(set().union(*(set(t) for t, _ in todo_by_metric.values())))
    random = options.x0 == "random"
    geo = [m for m in metrics if m != "dsa" and todo_by_metric[m][0]]
    reps: dict[int, Representation] = {}
    reps2: dict[int, Representation] = {}
    ops: dict[int, np.ndarray] = {}
    ops2: dict[int, np.ndarray] = {}
    want_dsa = "dsa" in metrics and todo_by_metric["dsa"][0]
    for i in progress(need, "activity"):
        steps = tasks[i].steps
        acts = [options.activity(models[i], tasks[i], keys[i], d) for d in
                ((0, 1) if random else (0,))]
        if any(i in todo_by_metric[m][0] for m in geo):
            reps[i] = represent(acts[0], options)
            if random:
                reps2[i] = represent(acts[1], options)
        if want_dsa and i in todo_by_metric["dsa"][0]:
            ops[i] = dsa_operator(acts[0], steps, dsa)
            if random:
                ops2[i] = dsa_operator(acts[1], steps, dsa)
    if geo:
        union = sorted(set().union(*(todo_by_metric[m][0] for m in geo)))
        D = pair_distances([reps[i] for i in union], geo, alpha,
                           progress=lambda it: progress(it, "pairs"))
        floors = {m: {} for m in geo}
        if random:
            for i in union:
                F = pair_distances([reps[i], reps2[i]], geo, alpha)
                for m in geo:
                    floors[m][i] = float(F[m][0, 1])
        for m in geo:
            cache = caches[m]
            todo = set(todo_by_metric[m][0])
            for a, i in enumerate(union):
                if i in todo:
                    cache.networks[keys[i]] = [reps[i].r if m != "svcca" else reps[i].k,
                                               floors[m].get(i, 0.0)]
                for b in range(a + 1, len(union)):
                    j = union[b]
                    if i in todo and j in todo and keys[i] != keys[j]:
                        d = float(D[m][a, b])
                        # svcca: rnn.svcca's cache entry [distance, angular]
                        cache.pairs[PairCache.pair(keys[i], keys[j])] = \
                            [d, float(np.arccos(np.clip(1 - d, -1, 1)))] if m == "svcca" else [d]
    if want_dsa:
        cache = caches["dsa"]
        todo = todo_by_metric["dsa"][0]
        for i in todo:
            floor = dsa_distance(ops[i], ops2[i], dsa) if random else 0.0
            cache.networks[keys[i]] = [dsa.rank, floor]
        pairs = [(i, j) for a, i in enumerate(todo) for j in todo[a + 1:]
                 if keys[i] != keys[j] and PairCache.pair(keys[i], keys[j]) not in cache.pairs]
        for i, j in progress(pairs, "dsa pairs"):
            cache.pairs[PairCache.pair(keys[i], keys[j])] = [dsa_distance(ops[i], ops[j], dsa)]
    results = {}
    for m in metrics:
        cache = caches[m]
        D = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                if keys[i] != keys[j]:
                    D[i, j] = D[j, i] = cache.pairs[PairCache.pair(keys[i], keys[j])][0]
        floor = np.array([float(cache.networks[k][1]) for k in keys])
        todo, pairs = todo_by_metric[m]
        results[m] = MetricResult(D, floor, len(todo), pairs)
    return results
