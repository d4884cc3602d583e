"""Analyses of one trained network: fixed points, trajectories, PCA,
psychometric curves, returning small result objects.  The ``cached_*``
functions read and write their results as files beside the network (a cache
for other weights, or one that is damaged, is recomputed)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import curve_fit

from rnn.analysis.fixed_points import (FixedPoints, SolverConfig, expected_task_starts,
                                       task_fixed_points, weights_hash)
from rnn.model import RateRNN
from rnn.protocol import X0_SCALE
from rnn.rng import PROBE, Streams
from tasks import DecisionTask


PSYCHOMETRIC_CHUNK = 20000     # trials simulated at once (at least one level's)


def psychometric_bytes(task, hidden: int, per_level: int) -> int:
    """Memory of one chunk of psychometric trials: inputs [T, n, I], states."""
    n = max(per_level, min(PSYCHOMETRIC_CHUNK, per_level * 21))
    return 4 * n * (task.steps * task.n_inputs + 3 * hidden)


def fixed_points_path(directory: Path, name: str, kind: str) -> Path:
    return Path(directory) / f"{name}_fixed_points_{kind}.npz"


def damaged_cache(path: Path) -> None:
    """Say in one line that a cache file could not be reused."""
    import sys
    print(f"note: cache {path} is damaged or holds impossible values; recomputing it",
          file=sys.stderr)


def _fixed_points_valid(fp: FixedPoints, hidden: int, st, root_tol: float) -> bool:
    """A fixed-point cache's content: finite numbers and consistent shapes, and
    consistent with itself and the static input set ``st``: every residual in
    [0, root_tol) (only roots are kept), the stability flags and unstable counts
    those of the stored eigenvalues, each point's input and evidence those of its
    input's row in the set."""
    m = len(fp.xstar)
    n_inputs = len(st.values)
    if not (fp.xstar.ndim == 2 and (m == 0 or fp.xstar.shape[1] == hidden)
            and all(len(a) == m for a in (fp.input_index, fp.evidence, fp.residual,
                                          fp.is_stable, fp.n_unstable, fp.eigvals))
            and bool(np.all(np.isfinite(fp.xstar)) and np.all(np.isfinite(fp.evidence))
                     and np.all(np.isfinite(fp.residual)) and np.all(np.isfinite(fp.eigvals)))
            and bool(np.all((fp.input_index >= 0) & (fp.input_index < n_inputs)))):
        return False
    if m == 0:
        return True
    ev = np.asarray(fp.eigvals)
    idx = np.asarray(fp.input_index, dtype=np.int64)
    # the stability the eigenvalues give: |λ| < 1 (a discrete-time map), Re λ < 0 (a flow)
    grow = np.abs(ev) - 1.0 if fp.is_discrete else ev.real
    return bool(np.all((fp.residual >= 0) & (fp.residual < root_tol))
                and np.array_equal(np.asarray(fp.is_stable, bool), (grow < 0).all(1))
                and np.array_equal(np.asarray(fp.n_unstable), (grow > 0).sum(1))
                and np.array_equal(np.asarray(fp.inputs), np.asarray(st.values)[idx])
                and np.array_equal(np.asarray(fp.evidence), np.asarray(st.evidence)[idx]))


def cached_fixed_points(model: RateRNN, task: DecisionTask, name: str, kind: str,
                        directory: Path, recompute: bool = False,
                        cfg: SolverConfig = SolverConfig()) -> tuple[FixedPoints, bool, Path]:
    """Fixed points of ``model`` under the static set ``kind``, from
    ``models/NAME_fixed_points_KIND.npz`` when it belongs to these weights.
    A cache solved from other starts (before the task's own trials seeded the
    flip-flop's search) is recomputed.  Returns (points, computed_now, path)."""
    from rnn.io import is_regular_file
    path = fixed_points_path(directory, name, kind)
    st = task.static_inputs(kind)
    if path.exists() and not is_regular_file(path):
        damaged_cache(path)             # a pipe or folder where the cache goes: not read
    if is_regular_file(path) and not recompute:
        try:
            fp = FixedPoints.load(path)
            ok = _fixed_points_valid(fp, model.hidden, st, cfg.root_tol)
        except Exception:            # noqa: BLE001 (truncated, bit-flipped, foreign: a miss)
            fp, ok = None, False
        if (fp is not None and ok and str(fp.weights_hash) == weights_hash(model)
                and int(fp.task_starts) == expected_task_starts(task, cfg)):
            return fp, False, path
        if not ok:
            damaged_cache(path)
    fp = task_fixed_points(model, task, kind, cfg)
    fp.save(path)
    return fp, True, path


@dataclass(frozen=True)
class Trajectories:
    """Noisy trials of one context.  states [n, T', H] (every ``stride`` steps),
    steps [T'], evidence [n] (signed, cued channel), choice [n] (sign z_T)."""
    states: np.ndarray
    steps: np.ndarray
    evidence: np.ndarray
    choice: np.ndarray


def trajectories(model: RateRNN, task: DecisionTask, context: int, levels: np.ndarray,
                 per_level: int, seed: int, stride: int = 5) -> Trajectories:
    """Trials of ``context`` at the signed evidence ``levels`` with the task's noise."""
    rng = Streams([seed], PROBE)
    tr = task.psychometric_trials(levels, per_level, context, rng)
    x0 = X0_SCALE * rng.normal(tr.n_trials, model.hidden)
    sim = model.simulate(tr.inputs, x0, keep=stride)
    z = model.output(sim.x_last)[0]
    ev = np.repeat(levels, per_level)
    return Trajectories(sim.states[:, 0].permute(1, 0, 2).numpy(), sim.steps.numpy(), ev,
                        torch.sign(z).numpy())


@dataclass(frozen=True)
class PCA:
    mean: np.ndarray          # [H]
    components: np.ndarray    # [k, H]
    explained: np.ndarray     # [k] fraction of variance

    def project(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x) - self.mean) @ self.components.T


def fit_pca(states: np.ndarray, k: int = 3) -> PCA:
    """PCA of states [..., H] (rows are samples)."""
    X = states.reshape(-1, states.shape[-1]).astype(np.float64)
    mean = X.mean(0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    var = s ** 2
    return PCA(mean, vt[:k], var[:k] / var.sum())


@dataclass(frozen=True)
class Psychometric:
    """Fraction of positive choices per signed evidence level, per context.
    levels [L]; fraction [C, L]; n_per_level; fit [C, 3] (bias μ0, slope s,
    lapse λ) of p(e) = λ/2 + (1 − λ)/(1 + exp(−(e − μ0)/s))."""
    levels: np.ndarray
    fraction: np.ndarray
    n_per_level: int
    fit: np.ndarray


def sigmoid(e, mu0, s, lapse):
    """The psychometric function p(e) = λ/2 + (1 − λ)/(1 + exp(−(e − μ0)/s))."""
    return lapse / 2 + (1 - lapse) / (1 + np.exp(-(e - mu0) / s))


def psychometric(model: RateRNN, task: DecisionTask, per_level: int = 2000,
                 levels: np.ndarray | None = None, seed: int = 0,
                 progress=lambda it: it) -> Psychometric:
    """Psychometric curves: ``per_level`` noisy trials per level and context.
    ``progress`` wraps the list of (context, chunk of levels) being simulated."""
    levels = task.psychometric_levels() if levels is None else np.asarray(levels)
    fr = np.zeros((task.n_contexts, len(levels)))
    fits = np.full((task.n_contexts, 3), np.nan)
    # chunk the levels so memory stays bounded ([T, 1, n, I] inputs)
    chunks = np.array_split(levels, max(1, len(levels) * per_level // PSYCHOMETRIC_CHUNK))
    pos: list[list[np.ndarray]] = [[] for _ in range(task.n_contexts)]
    rngs = [Streams([seed + 7919 * k], PROBE) for k in range(task.n_contexts)]
    for k, chunk in progress([(k, c) for k in range(task.n_contexts) for c in chunks]):
        tr = task.psychometric_trials(chunk, per_level, k, rngs[k])
        x0 = X0_SCALE * rngs[k].normal(tr.n_trials, model.hidden)
        z = model.output(model.simulate(tr.inputs, x0).x_last)[0]
        pos[k].append((z > 0).double().view(len(chunk), per_level).mean(1).numpy())
    for k in range(task.n_contexts):
        fr[k] = np.concatenate(pos[k])
        try:
            span = float(np.ptp(levels)) or 1.0
            p, _ = curve_fit(sigmoid, levels, fr[k], p0=[0.0, span / 10, 0.01],
                             bounds=([-span, 1e-6, 0.0], [span, span, 0.5]), maxfev=20000)
            fits[k] = p
        except (RuntimeError, ValueError):
            pass                        # flat curve (untrained network): no fit
    return Psychometric(levels, fr, per_level, fits)


def cached_psychometric(model: RateRNN, task: DecisionTask, name: str, directory: Path,
                        per_level: int, seed: int, recompute: bool = False,
                        progress=lambda it: it) -> tuple[Psychometric, bool, Path]:
    """The psychometric curves, from ``models/NAME_psychometric.npz`` when it
    belongs to these weights, trials per level and seed.  Returns (curves,
    computed_now, path)."""
    from rnn.io import atomic_write
    path = Path(directory) / f"{name}_psychometric.npz"
    key = np.array([weights_hash(model), str(per_level), str(seed)])
    from rnn.io import is_regular_file
    if is_regular_file(path) and not recompute:
        try:
            with np.load(path) as z:
                psy = Psychometric(z["levels"], z["fraction"], int(z["n_per_level"]), z["fit"])
                same = z["key"].tolist() == key.tolist()
            f = psy.fraction
            ok = f.shape == (task.n_contexts, len(psy.levels)) and \
                bool(np.all(np.isfinite(f)) and np.all((f >= 0) & (f <= 1))) and \
                bool(np.all(np.isfinite(psy.levels)))
        except Exception:            # noqa: BLE001 (truncated, bit-flipped, foreign: a miss)
            same, ok = False, False
        if same and ok:
            return psy, False, path
        if not ok:
            damaged_cache(path)
    psy = psychometric(model, task, per_level, seed=seed, progress=progress)
    atomic_write(path, lambda f: np.savez(f, key=key, levels=psy.levels, fraction=psy.fraction,
                                          n_per_level=psy.n_per_level, fit=psy.fit))
    return psy, True, path


LYAPUNOV_STEPS = 10000     # steps averaged by largest_lyapunov (after its transient)
LYAPUNOV_ZERO = 10.0       # |exponent| · steps below this counts as 0 (exponent_kind)


def largest_lyapunov(advance, x0: torch.Tensor, steps: int = LYAPUNOV_STEPS,
                     transient: int = 200, every: int = 10, eps: float = 1e-10,
                     seed: int = 0) -> np.ndarray:
    """The largest Lyapunov exponent, per step (natural log), of the orbit of each
    row of ``x0`` [n, S] under a map x ← f(x): ``advance(x [m, S], k)`` returns
    every row after k steps (float64).  Benettin's estimate: a companion starts
    ``eps`` away in a random direction (seeded) and is pulled back to ``eps``
    from the orbit every ``every`` steps; the exponent is the mean log stretch
    per step over ``steps`` steps after ``transient`` (not counted).

    At a stable fixed point it is the log of the Jacobian's spectral radius;
    on a stable cycle, negative; on a quasi-periodic orbit (an invariant
    circle), 0; on a chaotic attractor, positive.  Its error falls as 1/steps
    on regular orbits (tests/test_flipflop.py checks known answers)."""
    if steps < every or every < 1:
        raise ValueError("need steps >= every >= 1")
    x = x0.to(torch.float64)
    n = x.shape[0]
    g = torch.Generator().manual_seed(seed)

    def away(base: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        lost = ~(d.norm(dim=-1) > 0)             # a direction crushed to 0: draw another
        if lost.any():
            d = d.clone()
            d[lost] = torch.randn(int(lost.sum()), d.shape[-1], generator=g, dtype=d.dtype)
        return base + eps * d / d.norm(dim=-1, keepdim=True)

    y = away(x, torch.randn(x.shape, generator=g, dtype=torch.float64))
    total = torch.zeros(n, dtype=torch.float64)
    counted = 0
    for t in range(0, transient + steps, every):
        both = advance(torch.cat([x, y]), every)
        x, y = both[:n], both[n:]
        d = y - x
        if t >= transient:
            total += torch.log(d.norm(dim=-1).clamp_min(1e-300) / eps)
            counted += every
        y = away(x, d)
    return (total / counted).numpy()


def zero_input_advance(model):
    """``advance(x, k)`` for :func:`largest_lyapunov`: k steps of network 0 of
    ``model`` under zero input, in float64 (its own simulate, so any
    architecture; a rate network's step is one Euler step of dt)."""
    net = model.select(0).to(dtype=torch.float64)

    def advance(x: torch.Tensor, k: int) -> torch.Tensor:
        u = torch.zeros(k, 1, x.shape[0], net.n_inputs, dtype=torch.float64)
        with torch.no_grad():
            return net.simulate(u.to(net.device), x[None].to(net.device)).x_last[0].cpu()
    return advance


def exponent_kind(lam: float, steps: int = LYAPUNOV_STEPS) -> str:
    """What a largest Lyapunov exponent measured over ``steps`` steps says of its
    orbit.  A zero exponent's estimate is the log of a bounded stretch over the
    run, so it falls as 1/steps; |λ| < LYAPUNOV_ZERO / steps counts as 0
    (measured on the committed GA flip-flops: their orbits with no period gave
    |λ| · steps of 0.05–2.6, their cycles 20 and more at 10000 steps)."""
    if lam > LYAPUNOV_ZERO / steps:
        return "chaotic"
    return "contracting" if lam < -LYAPUNOV_ZERO / steps else "quasi-periodic"


@dataclass(frozen=True)
class OrbitOrigin:
    """A moving orbit beside the fixed point nearest its centroid (:func:`orbit_origin`)."""
    distance: float      # from the orbit's centroid to that fixed point
    radius: float        # the orbit's mean distance from its centroid
    n_unstable: int      # the fixed point's unstable directions
    modulus: float       # |μ| of its leading eigenvalue μ of the step map
    angle: float         # |arg μ| in [0, π]: radians per step
    turn: float          # the orbit's mean turn per step in its first two PCs, in [0, π]
    planar: float        # the share of the orbit's variance in those two PCs

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def orbit_origin(fp: FixedPoints, states: np.ndarray, dt: float | None = None
                 ) -> OrbitOrigin | None:
    """Where an orbit (``states`` [T, S], consecutive steps) comes from: the fixed
    point of ``fp`` nearest its centroid, with the leading eigenvalue of the
    step map there (a discrete-time network's own; a rate network's Euler step
    of ``dt`` has μ = 1 + dt·λ of its J), set beside the orbit's own turn per
    step.  An invariant circle born of a focus that lost stability through a
    complex pair (a Neimark–Sacker bifurcation) turns by about that pair's
    angle, around a point with 2 unstable directions; a 2-cycle born of a
    period doubling jumps by π around a point whose leading μ is below −1.
    None when ``fp`` has no fixed point."""
    if len(fp.xstar) == 0:
        return None
    if not bool(fp.discrete) and dt is None:
        raise ValueError("a continuous-time network's fixed points need its step dt")
    x = np.asarray(states, np.float64)
    c = x.mean(0)
    d = np.linalg.norm(np.asarray(fp.xstar, np.float64) - c, axis=1)
    i = int(d.argmin())
    ev = np.asarray(fp.eigvals[i])
    mu = ev if bool(fp.discrete) else 1.0 + float(dt) * ev
    lead = mu[int(np.argmax(np.abs(mu)))]
    _, s, vt = np.linalg.svd(x - c, full_matrices=False)
    z = (x - c) @ vt[:2].T
    step = np.diff(np.arctan2(z[:, 1], z[:, 0]))
    step = (step + np.pi) % (2 * np.pi) - np.pi            # wrapped to [−π, π)
    var = s ** 2
    return OrbitOrigin(float(d[i]), float(np.linalg.norm(x - c, axis=1).mean()),
                       int(fp.n_unstable[i]), float(abs(lead)), float(abs(np.angle(lead))),
                       float(np.abs(step).mean()),
                       float(var[:2].sum() / var.sum()) if var.sum() > 0 else 1.0)
