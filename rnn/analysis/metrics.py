"""The metric table: every way this tool measures the distance between two
networks, one record each.

A record says what the metric needs from each network, how a batch of pairs
becomes distances, what its cache key holds and which values a distance can
take.  :func:`rnn.analysis.similarity.network_distances` (the one compare pipeline)
reads nothing else, so a metric computed from the activity is one record and
its pair function here (see ``register``).  This module imports no torch at
load time: grid files and help texts are checked against the table before any
work starts.

What a metric needs from each network (``source``):

    "svd"           the SVD of its centred activity under the static probe
                    inputs (rnn.analysis.similarity.represent); its pair function gets
                    a :class:`Pairs` batch: each pair's G = V_aᵀ V_b and both
                    networks' spectra.  ``directions``: "kept" (SVCCA's k
                    directions) or "rank" (every direction above RANK_TOL).
    "operator"      a DMD operator fitted to its trials (DSA).
    "fixed_points"  its fixed points under the 'small' static inputs: the
                    attractor input topology (rnn.analysis.compare.topology_descriptor).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

RANK_TOL = 1e-6                 # directions with s < RANK_TOL * s_max are numerical zeros


@dataclass
class Pairs:
    """A batch of network pairs (a, b) for the pair functions of "svd" metrics
    (torch float64 tensors; bases zero-padded to R directions).

    G [pairs, R, R]: V_aᵀ V_b; s_a, s_b [pairs, R]: singular values of the
    centred activity; t_a, t_b [pairs, R]: those of the partially whitened
    activity (Procrustes' α); k_a, k_b [pairs]: SVCCA's kept directions;
    r_a, r_b [pairs]: numerical ranks; U_a, U_b [pairs, units, R]: left
    singular vectors."""
    G: object
    s_a: object
    s_b: object
    t_a: object
    t_b: object
    k_a: object
    k_b: object
    r_a: object
    r_b: object
    U_a: object
    U_b: object


@dataclass(frozen=True)
class Metric:
    """One metric.  ``pair``: for "svd" metrics, Pairs → distances [pairs]
    (a torch tensor); ``key(options, alpha, dsa)``: what its cache is keyed by,
    from the activity options' dict; ``angle``: the cache also keeps
    arccos(1 − d) (SVCCA's angular distance, Williams et al. 2021)."""
    name: str
    label: str
    source: str                           # "svd", "operator" or "fixed_points"
    bounds: tuple[float, float]           # the values a distance can take
    key: Callable[[dict, float, dict], dict] | None = None
    pair: Callable | None = None
    directions: str = "rank"              # "svd" metrics: "kept" or "rank"
    angle: bool = False
    cache_prefix: str = ""                # the cache file's name before its key hash

    def cache_name(self) -> str:
        return self.cache_prefix or f"similarity_{self.name}_cache_"


# ---- the pair functions of the "svd" metrics ---------------------------------

def svcca_pairs(p: Pairs):
    """1 − mean canonical correlation of the top-k SVD directions (Raghu et al. 2017)."""
    from rnn.analysis.svcca import mean_correlations
    return 1 - mean_correlations(p.G, p.k_a, p.k_b)


def cka_pairs(p: Pairs):
    """1 − linear CKA = 1 − ‖S_a G S_b‖²_F / (‖S_a²‖_F ‖S_b²‖_F) (Kornblith et al. 2019)."""
    num = ((p.s_a[:, :, None] * p.G * p.s_b[:, None, :]) ** 2).sum((1, 2))
    den = (p.s_a ** 4).sum(1).sqrt() * (p.s_b ** 4).sum(1).sqrt()
    return (1 - num / den).clamp(min=0)


def procrustes_pairs(p: Pairs):
    """arccos(‖Z_aᵀ Z_b‖_* / (‖Z_a‖_F ‖Z_b‖_F)) of the partially whitened
    activity (Williams et al. 2021)."""
    import torch
    nuc = torch.linalg.svdvals(p.t_a[:, :, None] * p.G * p.t_b[:, None, :]).sum(1)
    cos = nuc / (p.t_a.norm(dim=1) * p.t_b.norm(dim=1))
    return torch.arccos(cos.clamp(-1, 1))


def pwcca_pairs(p: Pairs, equal_dims: bool = True):
    """1 − Σ wᵢρᵢ / Σ wᵢ, weights the summed |projection| of the units on each
    canonical variate, the mean of both directions (Morcos et al. 2018), over
    the same number of directions from both networks: the top m = min(r_a, r_b)
    SVD directions of each (the smaller numerical rank).

    Canonical correlations between subspaces of unequal dimension are biased:
    enlarging one subspace can only raise them.  Over each network's own rank,
    a network whose spectrum decays more slowly (more directions above
    RANK_TOL, the last ones carrying as little as 1e-12 of the largest one's
    variance) would sit nearer every other network, whatever their geometry
    (docs/findings.md: the CDI rate networks' rule silhouette, −0.45 that way,
    −0.01 this way).  Networks
    of the same rank (most trained networks of one width) are compared over
    every direction, as Morcos et al. compare all units.  ``equal_dims=False``:
    each network over its own rank, the biased form (for
    experiments/pwcca_directions.py, which shows the difference)."""
    import torch
    m = torch.minimum(p.r_a, p.r_b)
    live = (torch.arange(p.G.shape[-1])[None] < m[:, None]).to(torch.float64)  # [pairs, R]
    keep = live if equal_dims else torch.ones_like(live)    # the directions taken
    P, rho, Qh = torch.linalg.svd(p.G * keep[:, :, None] * keep[:, None, :])
    rho = rho.clamp(0, 1)

    def one_side(U, s, vecs):
        w = (U @ ((s * keep)[:, :, None] * vecs)).abs().sum(1) * live
        return 1 - (w * rho).sum(1) / w.sum(1)
    return 0.5 * (one_side(p.U_a, p.s_a, P) + one_side(p.U_b, p.s_b, Qh.transpose(1, 2)))


# ---- what each cache is keyed by ---------------------------------------------

def _without_k(options: dict) -> dict:
    return {k: v for k, v in options.items() if k not in ("dims", "keep")}


def _svcca_key(options, alpha, dsa):
    return options                        # SVCCA's caches have always been keyed so


def _rank_key(name, **extra):
    return lambda options, alpha, dsa: {**_without_k(options), "metric": name,
                                        **{k: f(alpha) for k, f in extra.items()},
                                        "rank_tol": RANK_TOL}


def _dsa_key(options, alpha, dsa):
    return {**_without_k(options), "metric": "dsa", **dsa}


UNIT = (-1e-6, 1 + 1e-6)              # 1 − a mean correlation, 1 − CKA
ANGLE = (-1e-6, math.pi / 2 + 1e-6)   # an angle between two representations

REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to the table (tests register toy ones)."""
    if metric.source not in ("svd", "operator", "fixed_points"):
        raise ValueError(f"unknown source {metric.source!r} of metric {metric.name!r}")
    REGISTRY[metric.name] = metric
    return metric


for _m in (
        Metric("svcca", "SVCCA", "svd", UNIT, _svcca_key, svcca_pairs, directions="kept",
               angle=True, cache_prefix="svcca_cache_"),
        Metric("pwcca", "PWCCA", "svd", UNIT, _rank_key("pwcca", directions=lambda a: "min"),
               pwcca_pairs),     # "directions": each pair over min(r_a, r_b) of each
        Metric("cka", "1 − CKA", "svd", UNIT, _rank_key("cka"), cka_pairs),
        Metric("procrustes", "Procrustes", "svd", ANGLE,
               _rank_key("procrustes", alpha=lambda a: a), procrustes_pairs),
        Metric("dsa", "DSA", "operator", (-1e-6, math.inf), _dsa_key),
        Metric("topology", "attractor topology", "fixed_points", (0.0, math.inf))):
    register(_m)

TOPOLOGY = "topology"        # the attractor input topology, compared beside the others
# the representational and dynamical metrics, computed from the activity
METRICS = tuple(m.name for m in REGISTRY.values() if m.source != "fixed_points")
LABEL = {m.name: m.label for m in REGISTRY.values() if m.source != "fixed_points"}


def label(metric: str, alpha: float = 1.0, dsa_score: str | None = None) -> str:
    """'SVCCA', 'shape (α=0.5)' (Procrustes at another α), 'DSA (wasserstein)', ..."""
    if metric == "procrustes" and alpha != 1.0:
        return f"shape (α={alpha:g})"
    if metric == "dsa" and dsa_score is not None:
        return f"DSA ({dsa_score})"
    return REGISTRY[metric].label if metric in REGISTRY else metric


def cache_key(metric: str, options: dict, alpha: float = 1.0, dsa=None) -> dict:
    """What ``metric``'s cache is keyed by: the activity options' dict and the
    metric's own settings (``dsa``: the DSA options, a dataclass or dict)."""
    if metric not in REGISTRY or REGISTRY[metric].key is None:
        known = [m for m, r in REGISTRY.items() if r.key is not None]
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(known)})")
    if dsa is not None and dataclasses.is_dataclass(dsa):
        dsa = dataclasses.asdict(dsa)
    return REGISTRY[metric].key(options, alpha, dsa or {})
