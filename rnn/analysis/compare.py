"""Comparing groups of networks: loading a groups file's models, the
attractor input-topology descriptor, silhouette scores and MDS embeddings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.manifold import MDS
from sklearn.metrics import silhouette_score

from rnn.errors import UserError
from rnn.analysis.fixed_points import FixedPoints
from rnn.io.groups import Groups
from rnn.io import LoadedModel, load_model

TOPOLOGY_NEIGHBOURS = 3     # k: each point itself and its 2 nearest fixed points (original)
TOPOLOGY_POINTS = 10        # the first 10 fixed points: a 30-number descriptor


def load_group_models(groups: Groups, directory: Path) -> list[LoadedModel]:
    """Load every model of the groups; all must be trained on the same task."""
    models = [load_model(n, directory) for n in groups.names]
    first = models[0]
    for lm in models[1:]:
        a, b = first.task, lm.task
        if (a.name, a.n_inputs) != (b.name, b.n_inputs):
            raise UserError(f"networks of different tasks in one comparison: {first.name} "
                            f"({a.describe()}) and {lm.name} ({b.describe()})")
    return models


def flipflop_descriptor(fp: FixedPoints, model) -> tuple[np.ndarray | None, int]:
    """The flip-flop's topology (its fixed points all lie at the zero input):
    [stable points, corners, saddles with 1, with 2, with 3 or more unstable
    directions].  *Corners*: the distinct sign patterns the outputs take at the
    stable points — 8 when the stable points hold the 2³ memories, as
    Sussillo & Barak's and every architecture of Maheswaranathan et al. do.
    Returns (vector or None when no fixed point, number of points)."""
    m = len(fp.xstar)
    if m == 0:
        return None, 0
    st = np.asarray(fp.is_stable, bool)
    with torch.no_grad():
        z = model.outputs(torch.as_tensor(fp.xstar[st], dtype=model.dtype)[None])[0]
    corners = len({tuple(r) for r in np.sign(z.double().numpy()).astype(int)})
    nu = np.asarray(fp.n_unstable)[~st]
    return np.array([st.sum(), corners, (nu == 1).sum(), (nu == 2).sum(), (nu >= 3).sum()],
                    dtype=np.float64), m


def topology_descriptor(fp: FixedPoints, model, n_points: int = TOPOLOGY_POINTS,
                        k: int = TOPOLOGY_NEIGHBOURS,
                        task=None) -> tuple[np.ndarray | None, int]:
    """The input-topology description of one network's fixed points.

    Fixed points are ordered by their static input (the order of the input
    set), then by the network's output at the point.  For each point, its k
    nearest fixed points in state space — the point itself first, as in the
    original (scikit-learn's kneighbors on the fitted points) — contribute
    their input values.  The first ``n_points`` points give an
    ``n_points·k`` vector.

    Fewer points than that: with m < k points, each neighbour list is padded
    with its farthest available neighbour; with m < n_points, rows are reused
    cyclically (point 1, 2, …, m, 1, 2, …), so a network with a single
    attractor describes itself as that attractor repeated.  No fixed point at
    all: returns None (the caller leaves the network out and says so).
    Returns (vector or None, m).  A sequence task (the flip-flop, ``task``) has
    its own: :func:`flipflop_descriptor`; a task with several action outputs (a
    neurogym task) orders a static input's points by its ``decision_variable``."""
    from tasks.flipflop import FlipFlopTask
    if isinstance(task, FlipFlopTask):
        return flipflop_descriptor(fp, model)
    m = len(fp.xstar)
    if m == 0:
        return None, 0
    x = torch.as_tensor(fp.xstar, dtype=model.dtype)[None]
    with torch.no_grad():
        z = (task.decision_variable(model, x) if hasattr(task, "decision_variable")
             else model.output(x))[0].double().numpy()
    order = np.lexsort((z, fp.input_index))
    x = fp.xstar[order]
    ev = fp.evidence[order]
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]               # self first (distance 0)
    if m < k:
        nn = np.concatenate([nn, np.repeat(nn[:, -1:], k - m, axis=1)], axis=1)
    rows = np.arange(n_points) % m
    return ev[nn[rows]].reshape(-1), m


@dataclass(frozen=True)
class Topology:
    """The input-topology descriptors of a list of networks.

    vectors[i] is network i's descriptor, or None when it has no fixed point
    under the inputs (it is then left out: ``kept`` lists the others);
    ``points`` the number of fixed points of each network; ``solved`` how
    many networks' fixed points were solved (the rest came from caches)."""
    vectors: list
    points: list
    solved: int

    @property
    def kept(self) -> list[int]:
        return [i for i, v in enumerate(self.vectors) if v is not None]

    def distances(self) -> np.ndarray:
        """Euclidean distances between the kept networks' descriptors [k, k]
        (the silhouette of the descriptors is the silhouette of these)."""
        return euclidean_distances(np.array([self.vectors[i] for i in self.kept]))


def euclidean_distances(X: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances between the rows of X [n, d] (float64)."""
    X = np.asarray(X, dtype=np.float64)
    return np.sqrt(np.maximum(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1), 0.0))


def group_topology(models, directory: Path | None = None, kind: str = "small",
                   recompute: bool = False, progress=None) -> Topology:
    """Fixed points and the topology descriptor of each network (.model,
    .task, .name).  The fixed points are cached per network in ``directory``,
    by default beside a network read from disk (its .path); a network built in
    memory is solved without a cache.  ``progress`` wraps the loop (e.g. tqdm)."""
    from rnn.analysis.dynamics import cached_fixed_points
    from rnn.analysis.fixed_points import task_fixed_points
    vecs, counts, solved = [], [], 0
    for lm in (progress(models) if progress else models):
        where = directory or (lm.path.parent if getattr(lm, "path", None) else None)
        if where is None:
            fp, fresh = task_fixed_points(lm.model, lm.task, kind), True
        else:
            fp, fresh, _ = cached_fixed_points(lm.model, lm.task, lm.name, kind, where,
                                               recompute)
        solved += bool(fresh)
        v, m = topology_descriptor(fp, lm.model, task=lm.task)
        vecs.append(v)
        counts.append(m)
    return Topology(vecs, counts, solved)


@dataclass(frozen=True)
class Clustering:
    """Silhouette score against the group labels and a 2-D MDS embedding."""
    silhouette: float | None          # None when undefined (one group, or one per network)
    embedding: np.ndarray             # [n, 2]


def silhouette(X, labels, metric: str) -> float | None:
    """scikit-learn's silhouette score, or None where it is undefined (fewer than
    two groups, or every network its own group)."""
    n_labels = len(set(labels))
    if n_labels < 2 or n_labels > len(labels) - 1:
        return None
    return float(silhouette_score(X, labels, metric=metric))


def cluster_features(X: np.ndarray, labels: list[str], seed: int = 0) -> Clustering:
    """Euclidean silhouette of feature vectors X [n, d], and their MDS."""
    emb = MDS(n_components=2, random_state=seed, n_init=4, init="random",
              metric="euclidean").fit_transform(X) if len(X) > 2 else _line(X)
    return Clustering(silhouette(X, labels, "euclidean"), emb)


def cluster_distances(D: np.ndarray, labels: list[str], seed: int = 0) -> Clustering:
    """Silhouette on precomputed distances D [n, n], and their metric MDS (every
    network at the origin where all distances are 0: MDS's stress is undefined)."""
    if len(D) > 2 and not np.any(D):
        return Clustering(silhouette(D, labels, "precomputed"), np.zeros((len(D), 2)))
    emb = MDS(n_components=2, random_state=seed, n_init=4, init="random",
              metric="precomputed").fit_transform(D) if len(D) > 2 else _line(D)
    return Clustering(silhouette(D, labels, "precomputed"), emb)


def _line(X):
    out = np.zeros((len(X), 2))
    out[:, 0] = np.arange(len(X))
    return out


def within_between(D: np.ndarray, group_index: list[int]) -> tuple[float, float]:
    """Mean distance between networks of the same group and of different groups."""
    g = np.asarray(group_index)
    same = g[:, None] == g[None, :]
    off = ~np.eye(len(g), dtype=bool)
    w = D[same & off]
    b = D[~same]
    return (float(w.mean()) if w.size else float("nan"),
            float(b.mean()) if b.size else float("nan"))


def fmt_score(s: float | None) -> str:
    return "n/a" if s is None else f"{s:.3f}"


@dataclass(frozen=True)
class SilhouetteStats:
    """A silhouette score on precomputed distances with its uncertainty.

    ci: 95% percentile interval of a bootstrap over networks (each group
    resampled with replacement to its own size; a network never counts as its
    own neighbour, so copies of one network do not shrink the within-group
    distances); p_value: permutation test with the labels shuffled,
    (1 + #{permuted ≥ observed}) / (1 + permutations); boots: the bootstrap
    silhouettes themselves (for statistics over several comparisons, e.g. a
    trend across tasks), None when undefined."""
    silhouette: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_boot: int
    n_perm: int
    boots: np.ndarray | None = field(default=None, repr=False, compare=False)

    def interval(self) -> list[float] | None:
        """[low, high] of the 95% bootstrap interval (None when undefined)."""
        return None if self.silhouette is None else [self.ci_low, self.ci_high]

    def summary(self) -> dict:
        """{'silhouette', 'ci', 'p'}: the experiments' JSON form."""
        return {"silhouette": self.silhouette, "ci": [self.ci_low, self.ci_high],
                "p": self.p_value}

    def fmt(self) -> str:
        if self.silhouette is None:
            return "n/a"
        return (f"{self.silhouette:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}], "
                f"p = {self.p_value:.3g}")


def batched_silhouette(D: np.ndarray, index: np.ndarray, labels: np.ndarray,
                       n_groups: int, balanced: bool = False) -> np.ndarray:
    """Silhouette scores (mean over samples) of B configurations at once.

    D [n0, n0] precomputed distances; index [B, n] which network fills each
    slot; labels [B, n] group of each slot (0..n_groups-1).  Slots holding the
    same network are not each other's neighbours.  A slot whose own group has
    no other network scores 0 (scikit-learn's rule for singletons).  [B]

    ``balanced``: the mean over groups of each group's mean silhouette, so a
    large group does not outweigh a small one (scikit-learn's score is the
    mean over networks and moves with the groups' sizes)."""
    B, n = index.shape
    Db = D[index[:, :, None], index[:, None, :]]                        # [B, n, n]
    valid = (index[:, :, None] != index[:, None, :]).astype(np.float64)
    onehot = np.eye(n_groups)[labels]                                   # [B, n, G]
    sums = np.matmul(Db * valid, onehot)
    counts = np.matmul(valid, onehot)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    own = np.take_along_axis(means, labels[..., None], axis=2)[..., 0]
    own_n = np.take_along_axis(counts, labels[..., None], axis=2)[..., 0]
    other = np.where(np.eye(n_groups, dtype=bool)[labels] | (counts == 0), np.inf, means)
    b = other.min(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (b - own) / np.maximum(own, b)
    s = np.where((own_n > 0) & np.isfinite(s), s, 0.0)
    if balanced:
        return np.einsum("bn,bng->bg", s, onehot).__truediv__(onehot.sum(1)).mean(axis=1)
    return s.mean(axis=1)


def _bootstrap_slots(members: list[np.ndarray], rng, b: int) -> tuple[np.ndarray, np.ndarray]:
    """b resamples of the networks, each group drawn with replacement to its own
    size: (which network fills each slot [b, n], the slot's group [b, n])."""
    idx = np.concatenate([m[rng.integers(0, len(m), size=(b, len(m)))] for m in members], axis=1)
    lab = np.broadcast_to(np.concatenate([np.full(len(m), k) for k, m in enumerate(members)]),
                          idx.shape)
    return idx, lab


def silhouette_stats(D: np.ndarray, group_index, n_boot: int = 2000, n_perm: int = 2000,
                     seed: int = 0, balanced: bool = False) -> SilhouetteStats:
    """Silhouette of ``group_index`` on the precomputed distances D, with a
    bootstrap interval and a permutation p-value (see SilhouetteStats)."""
    g = np.asarray(group_index)
    _, g = np.unique(g, return_inverse=True)
    G, n = int(g.max()) + 1 if len(g) else 0, len(g)
    if G < 2 or G > n - 1:
        return SilhouetteStats(None, None, None, None, n_boot, n_perm)
    D = np.asarray(D, dtype=np.float64)
    obs = float(batched_silhouette(D, np.arange(n)[None], g[None], G, balanced)[0])
    rng = np.random.default_rng(seed)
    chunk = max(1, int(2e7 // (n * n)))
    members = [np.flatnonzero(g == k) for k in range(G)]
    boots = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx, lab = _bootstrap_slots(members, rng, b)
        boots.append(batched_silhouette(D, idx, lab, G, balanced))
    perms = []
    for start in range(0, n_perm, chunk):
        b = min(chunk, n_perm - start)
        lab = rng.permuted(np.broadcast_to(g, (b, n)), axis=1)
        perms.append(batched_silhouette(D, np.broadcast_to(np.arange(n), (b, n)), lab, G,
                                        balanced))
    boots = np.concatenate(boots) if boots else np.array([obs])
    perms = np.concatenate(perms) if perms else np.array([])
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p = (1 + int(np.sum(perms >= obs - 1e-12))) / (1 + len(perms))
    return SilhouetteStats(obs, float(lo), float(hi), float(p), n_boot, n_perm, boots)


def paired_silhouette_difference(D_a: np.ndarray, D_b: np.ndarray, group_index,
                                 n_boot: int = 2000, seed: int = 0,
                                 balanced: bool = True) -> dict:
    """Silhouette of the same design under two conditions, B − A, with a paired
    bootstrap interval.

    Slot i of D_a and D_b is the same unit of the design in both conditions
    (e.g. the network of one seed trained under protocol A and under protocol
    B).  Each resample draws the slots once (within each group, with
    replacement) and scores both conditions on those slots, so what the two
    conditions share (seed, initial weights, data) cancels out of the
    difference.  Returns {"a", "b", "difference", "ci", "p"}: p is the
    two-sided bootstrap p-value, 2 × the smaller share of resampled
    differences on either side of 0 (at least 1/(n_boot+1))."""
    g = np.asarray(group_index)
    _, g = np.unique(g, return_inverse=True)
    G, n = int(g.max()) + 1 if len(g) else 0, len(g)
    if D_a.shape != (n, n) or D_b.shape != (n, n):
        raise ValueError("D_a and D_b must both be n x n for the n labelled slots")
    if G < 2 or G > n - 1:
        return {"a": None, "b": None, "difference": None, "ci": [None, None], "p": None}
    D_a, D_b = np.asarray(D_a, np.float64), np.asarray(D_b, np.float64)
    whole = np.arange(n)[None]
    a = float(batched_silhouette(D_a, whole, g[None], G, balanced)[0])
    b = float(batched_silhouette(D_b, whole, g[None], G, balanced)[0])
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(g == k) for k in range(G)]
    chunk = max(1, int(2e7 // (n * n)))
    diffs = []
    for start in range(0, n_boot, chunk):
        idx, lab = _bootstrap_slots(members, rng, min(chunk, n_boot - start))
        diffs.append(batched_silhouette(D_b, idx, lab, G, balanced)
                     - batched_silhouette(D_a, idx, lab, G, balanced))
    d = np.concatenate(diffs) if diffs else np.array([b - a])
    lo, hi = np.percentile(d, [2.5, 97.5])
    p = min(1.0, 2 * max(min(np.mean(d <= 0), np.mean(d >= 0)), 1 / (len(d) + 1)))
    return {"a": a, "b": b, "difference": b - a, "ci": [float(lo), float(hi)], "p": float(p)}


# ---- groups of networks compared under any metric: the one entry -------------

@dataclass(frozen=True)
class GroupComparison:
    """Groups of networks under one metric (rnn.analysis.compare.compare_groups).

    ``result``: the pipeline's rnn.analysis.similarity.MetricResult (distances over the
    networks it kept, noise floor, cache); ``names``, ``labels``: those
    networks and their groups; ``group_index``: each one's group as a number;
    ``stats`` (and ``balanced``, the mean over groups of each group's mean
    silhouette, when asked for): the silhouette with its bootstrap interval
    and permutation p; ``within``, ``between``: the mean distances."""
    metric: str
    label: str
    result: object
    names: list[str]
    labels: list[str]
    group_index: list[int]
    stats: SilhouetteStats
    balanced: SilhouetteStats | None
    within: float
    between: float | None

    @property
    def distances(self) -> np.ndarray:
        return self.result.distances

    def row(self) -> dict:
        """The summary row a grid, a script or a report prints."""
        out = {"metric": self.metric, "label": self.label,
               "silhouette": self.stats.silhouette,
               "silhouette_interval_95": self.stats.interval(),
               "silhouette_permutation_p": self.stats.p_value,
               "mean_within_group_distance": self.within,
               "mean_between_group_distance": self.between}
        if self.balanced is not None:
            out.update({"balanced_silhouette": self.balanced.silhouette,
                        "balanced_interval_95": self.balanced.interval(),
                        "balanced_permutation_p": self.balanced.p_value})
        return out


def compare_groups(networks, labels: list[str], metrics: list[str], options=None,
                   cache_dir: Path | None = None, *, order: list[str] | None = None,
                   n_boot: int = 2000, seed: int = 0, balanced: bool = False,
                   alpha: float = 1.0, dsa=None, keys: list[str] | None = None,
                   reload: bool = False, progress=lambda it, desc: it
                   ) -> dict[str, GroupComparison]:
    """Networks (.model, .task, .name) in groups (``labels``, one per network)
    under each of ``metrics``: their distances from the one pipeline
    (rnn.analysis.similarity.network_distances, with its caches in ``cache_dir``), the
    silhouette of the groups with its interval and p (``n_boot`` resamples,
    ``seed``), and the mean distances within and between groups.  Groups are
    numbered in ``order`` (default: as they first appear)."""
    from rnn.analysis.metrics import label as metric_label
    from rnn.analysis.similarity import DSAOptions, network_distances
    from rnn.analysis.svcca import SVCCAOptions
    options = options if options is not None else SVCCAOptions()
    dsa = dsa if dsa is not None else DSAOptions()
    order = list(order) if order is not None else list(dict.fromkeys(labels))
    res = network_distances(networks, metrics, options, cache_dir, keys, alpha, dsa,
                            reload=reload, progress=progress)
    out = {}
    for m in metrics:
        r = res[m]
        kept_labels = [labels[i] for i in r.kept]
        index = [order.index(lab) for lab in kept_labels]
        w, b = within_between(r.distances, index)
        out[m] = GroupComparison(
            m, metric_label(m, alpha, dsa.score if m == "dsa" else None), r,
            [networks[i].name for i in r.kept], kept_labels, index,
            silhouette_stats(r.distances, index, n_boot, n_boot, seed),
            silhouette_stats(r.distances, index, n_boot, n_boot, seed, balanced=True)
            if balanced else None, w, None if b != b else b)
    return out
