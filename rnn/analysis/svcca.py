"""The activity every representational metric compares, and SVCCA's own
pieces (Raghu et al. 2017); the distances themselves come from the one
compare pipeline, rnn.analysis.similarity.network_distances.

Each network is driven by noise-free static inputs (10 evenly spaced values
in [−mean, mean] per context, cue on) for 750 steps from x = 0; its activity
matrix A is units × (inputs·steps) of hidden states x (clamped bias units
left out).  Each unit is centred over the samples; the SVD A = U S Vᵀ keeps
the top k directions explaining ≥ 95% of the variance (s²).  The reduced
activity S_k V_kᵀ spans the same sample-space subspace as V_k, so the
canonical correlations between two networks are the singular values of
V_aᵀ V_b (min(k_a, k_b) of them).

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
from dataclasses import dataclass

import numpy as np
import torch

from rnn.model import RateRNN
from rnn.protocol import X0_SCALE
from rnn.rng import PROBE, Streams
from tasks import DecisionTask


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

def network_activity(model: RateRNN, task: DecisionTask, steps: int | None = None,
                     x0_scale: float = 0.0, seed: int = 0, rates: bool = False,
                     levels: int = 10) -> np.ndarray:
    """Hidden states of the free units under the SVCCA inputs: [units, inputs·steps]
    (a discrete-time network's h, rnn.arch).

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
    if hasattr(red, "arch"):          # a discrete-time network: its units' h (an LSTM's
        X = X[..., :red.units]        # memory cells c are not activity), already bounded
    elif rates:
        X = red.phi(X)
    return X.permute(2, 1, 0).reshape(X.shape[-1], -1).numpy()


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
