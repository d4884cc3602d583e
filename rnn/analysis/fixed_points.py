"""Fixed points of a rate network under static inputs.

For each static input u we solve

    F(x) = −x + W_rec·φ(x) + W_in·u + b = 0,    J(x) = −I + W_rec·diag(φ′(x))

from many starts at once: all inputs × all starts are one batch of
Levenberg–Marquardt iterations on the analytic Jacobian (float64, with an
adaptive damping λ and a convergence mask per start; λ → 0 near a regular
root, so the last iterations are Newton steps with quadratic convergence).

Starts (per input):
* uniform in a box that provably contains every fixed point: at a root
  x = W_rec·φ(x) + W_in·u + b, so with φ bounded in [lo, hi] each x_i lies in
  c_i + Σ_j min(W_ij·lo, W_ij·hi) … c_i + Σ_j max(W_ij·lo, W_ij·hi)
  (1 + tanh: [0, 2]; tanh: [−1, 1]).  ReLU is unbounded: the box is the
  range of the network's own trajectories, widened (no proof there);
* states visited by the network's own trajectories under that input (from
  random initial states), with a little noise;
* for a task whose fixed points of interest are reached only through its
  inputs' history (the flip-flop: each memory is entered by a pulse, and
  under the zero input a random state falls into a few of the 8 basins),
  states the network visits on the task's own trials, with the same noise
  (:func:`visited_starts`; the task's ``start_trials``).

A point is accepted only if it is a root: ‖F‖∞ < ``root_tol`` (1e-8), whatever
the solver did.  Duplicates (per input) closer than ``merge_tol`` are merged,
keeping the smallest residual.  Stability comes from the eigenvalues of J:
stable when every real part is negative; the number of eigenvalues with
positive real part is recorded.  Starts where the solver stalls (a local
minimum of ‖F‖² that is not a root) with ‖F‖∞ below ``slow_tol`` are reported
separately as *slow points*.

Clamped units (Hebbian bias units) are fixed, so the search runs over the
free units of :meth:`RateRNN.reduced`; points are reported with the clamped
values filled in, eigenvalues over the free units.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from rnn.model import RateRNN


@dataclass(frozen=True)
class SolverConfig:
    n_box: int = 100             # uniform starts per input (the original used 100 in [-5, 5]^50)
    n_traj: int = 100            # starts from the network's own trajectories per input
    traj_noise: float = 0.05     # std of the noise added to trajectory starts
    max_iter: int = 200          # Levenberg–Marquardt iterations at most
    root_tol: float = 1e-8       # accept as a root when ||F||_inf < root_tol
    merge_tol: float = 1e-6      # roots closer than this (max-norm) are one root
    slow_tol: float = 1e-2       # stalled points with ||F||_inf < slow_tol are slow points
    seed: int = 0                # random starts (NumPy generator)
    box: float | None = None     # None: the provable box; a number h: uniform in [-h, h]^H
                                 # (the original's choice was h = 5; for comparisons)


@dataclass
class FixedPoints:
    """Result of :func:`find_fixed_points` (NumPy arrays, one per field).

    xstar [K, H]   the roots (all units; clamped units at their values)
    inputs [K, I]  the static input of each root; ``input_index`` [K] its row
                   in the input set; ``evidence`` [K] and ``context`` [K] its label
    residual [K]   ||F(xstar)||_inf
    eigvals [K, Hf] eigenvalues of J (complex; Hf free units)
    is_stable [K]  all real parts < 0;  n_unstable [K]  count of real parts > 0
    slow_* the same (without eigenvalues) for slow points
    """
    xstar: np.ndarray
    inputs: np.ndarray
    input_index: np.ndarray
    evidence: np.ndarray
    context: np.ndarray
    residual: np.ndarray
    eigvals: np.ndarray
    is_stable: np.ndarray
    n_unstable: np.ndarray
    slow_xstar: np.ndarray
    slow_inputs: np.ndarray
    slow_input_index: np.ndarray
    slow_evidence: np.ndarray
    slow_context: np.ndarray
    slow_residual: np.ndarray
    n_starts: np.ndarray          # starts per input (scalar array)
    weights_hash: np.ndarray      # identifies the network the points belong to
    # a discrete-time network's (rnn.arch): eigvals are those of the step map's
    # Jacobian ∂f/∂h, stable when every |λ| < 1 and n_unstable counts |λ| > 1
    discrete: np.ndarray = field(default_factory=lambda: np.array(False))
    # starts drawn from the states the network visits on its task's own trials
    # (:func:`visited_starts`; the flip-flop's), shared by every input; 0: none
    task_starts: np.ndarray = field(default_factory=lambda: np.array(0))

    @property
    def is_discrete(self) -> bool:
        return bool(self.discrete)

    def save(self, path: Path) -> Path:
        from rnn.io import atomic_write
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        atomic_write(Path(path), lambda fobj: np.savez(fobj, **arrays))
        return Path(path)

    @staticmethod
    def load(path: Path) -> "FixedPoints":
        with np.load(path, allow_pickle=False) as z:
            # caches written before architectures (or task starts) existed have no
            # 'discrete' ('task_starts'): a rate network's, without task starts
            late = ("discrete", "task_starts")
            return FixedPoints(**{f.name: z[f.name] for f in fields(FixedPoints)
                                  if f.name not in late or f.name in z.files})

    def summary(self) -> str:
        n, s = len(self.residual), int(self.is_stable.sum())
        worst = f"{self.residual.max():.1e}" if n else "-"
        return (f"{n} fixed points ({s} stable, {n - s} unstable; largest ||F||inf {worst}), "
                f"{len(self.slow_residual)} slow points")


def weights_hash(model: RateRNN) -> str:
    h = hashlib.sha1()
    if hasattr(model, "arch"):              # a discrete-time network (rnn.arch.CellRNN)
        for t in model.tensors().values():
            h.update(t.detach().cpu().to(torch.float64).numpy().tobytes())
        h.update(repr((model.arch, model.nonlinearity)).encode())
        return h.hexdigest()
    for t in (model.W_in, model.W_rec, model.W_out, model.b):
        h.update(t.detach().cpu().to(torch.float64).numpy().tobytes())
    h.update(repr((model.activation, model.readout, model.dt, model.clamp_idx,
                   model.clamp_val)).encode())
    return h.hexdigest()


def _phi_and_deriv(act: str, x: torch.Tensor):
    if act == "relu":
        return torch.relu(x), (x > 0).to(x.dtype)
    t = torch.tanh(x)
    return (1.0 + t if act == "one_plus_tanh" else t), 1.0 - t * t


def residual_and_jacobian(W: torch.Tensor, c: torch.Tensor, act: str, x: torch.Tensor,
                          jacobian: bool = True):
    """F(x) = −x + W·φ(x) + c and J(x) for a batch: W [H, H], c [B, H], x [B, H]."""
    ph, dph = _phi_and_deriv(act, x)
    F = -x + ph @ W.T + c
    if not jacobian:
        return F, None
    J = W.unsqueeze(0) * dph.unsqueeze(1)            # W · diag(φ′(x))
    J.diagonal(dim1=1, dim2=2).sub_(1.0)
    return F, J


def fixed_point_box(W: torch.Tensor, c: torch.Tensor, act: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-input, per-unit bounds [K, H] containing every fixed point (bounded φ)."""
    lo, hi = (0.0, 2.0) if act == "one_plus_tanh" else (-1.0, 1.0)
    a, b = W * lo, W * hi
    return c + torch.minimum(a, b).sum(1), c + torch.maximum(a, b).sum(1)


def levenberg_marquardt(W, c, act, x, cfg: SolverConfig, tol: float):
    """Minimise ||F(x)||² of the rate network from every row of x (c gives each
    row's constant term W_in·u + b): :func:`lm_solve` on the analytic F and J."""
    W, c = W.to(x.dtype), c.to(x.dtype)
    return lm_solve(lambda rows, xx, jac: residual_and_jacobian(
        W, c if rows is None else c[rows], act, xx, jac), x, cfg.max_iter, tol)


def lm_solve(residual, x: torch.Tensor, max_iter: int, tol: float):
    """Levenberg–Marquardt on F from every row of x: ``residual(rows, x_rows,
    jacobian)`` gives F [B, H] and J [B, H, H] (or None) of those rows (``rows``
    None: all of them).

    Adaptive damping per row; a row stops when ||F||_inf < tol, or when it
    stalls (||F||² falls by less than 0.1% over 4 iterations: a local minimum
    that is not a root; near a root Newton steps gain digits every iteration).
    Works in the dtype of x.  Returns x and ||F(x)||_inf."""
    B, H = x.shape
    x = x.clone()
    lam = torch.full((B,), 1e-2, dtype=x.dtype)
    F, _ = residual(None, x, False)
    q = 0.5 * (F * F).sum(1)
    q_mark = q.clone()
    active = F.abs().amax(1) >= tol
    for it in range(max_iter):
        idx = torch.nonzero(active).squeeze(1)
        if idx.numel() == 0:
            break
        xa, la = x[idx], lam[idx]
        Fa, step, bad = _lm_steps(residual, idx, xa, la)
        xn = xa + step
        Fn, _ = residual(idx, xn, False)
        qn = 0.5 * (Fn * Fn).sum(1)
        acc = (qn < q[idx]) & ~bad
        x[idx] = torch.where(acc[:, None], xn, xa)
        qi = torch.where(acc, qn, q[idx])
        q[idx] = qi
        lam[idx] = torch.where(acc, (la / 3.0).clamp_min(1e-12), la * 4.0)
        res = torch.where(acc, Fn.abs().amax(1), Fa.abs().amax(1))
        done = (res < tol) | (lam[idx] > 1e10)
        if it % 4 == 3:
            done |= qi > 0.999 * q_mark[idx]
            q_mark[idx] = qi
        active[idx[done]] = False
    F, _ = residual(None, x, False)
    return x, F.abs().amax(1)


LM_CHUNK_FLOATS = 2 ** 20     # numbers per [c, H, H] stack of one chunk of rows (8 MB)


def _lm_steps(residual, idx: torch.Tensor, xa: torch.Tensor, la: torch.Tensor):
    """F [B, H] at the rows ``idx`` (states xa, damping la), their damped
    Gauss–Newton steps −(JᵀJ + λI)⁻¹JᵀF [B, H], and which rows' systems failed
    (their step 0).  The [B, H, H] stacks are built ``LM_CHUNK_FLOATS`` at a
    time: rows are independent, and whole stacks (670 MB each for an LSTM's
    8400 starts) were mapped afresh by the allocator at every operation, each
    page zeroed by the kernel — a third of an LSTM's fixed-point time."""
    B, H = xa.shape
    c = max(1, LM_CHUNK_FLOATS // (H * H))
    F, step = torch.empty_like(xa), torch.empty_like(xa)
    bad = torch.zeros(B, dtype=torch.bool)
    for k in range(0, B, c):
        sl = slice(k, k + c)
        Fc, J = residual(idx[sl], xa[sl], True)
        JT = J.transpose(1, 2)
        A = torch.bmm(JT, J)
        A.diagonal(dim1=1, dim2=2).add_(la[sl, None])
        L, info = torch.linalg.cholesky_ex(A)
        step[sl] = torch.cholesky_solve(torch.bmm(JT, Fc.unsqueeze(2)), L).squeeze(2).neg_()
        F[sl], bad[sl] = Fc, info != 0
    if bad.any():
        step[bad] = 0.0
    return F, step, bad


def merge_points(x: np.ndarray, res: np.ndarray, groups: np.ndarray, tol: float) -> np.ndarray:
    """Indices of unique points per group (smallest residual kept)."""
    keep = []
    for gval in np.unique(groups):
        idx = np.flatnonzero(groups == gval)
        idx = idx[np.argsort(res[idx], kind="stable")]
        kept: list[int] = []
        for i in idx:
            if kept:
                d = np.abs(x[kept] - x[i]).max(1)
                if d.min() < tol * max(1.0, np.abs(x[i]).max()):
                    continue
            kept.append(i)
        keep.extend(kept)
    return np.array(sorted(keep), dtype=np.int64)


@torch.no_grad()
def trajectory_starts(model: RateRNN, inputs: np.ndarray, n: int, noise: float,
                      rng: np.random.Generator, steps: int = 750) -> torch.Tensor:
    """States visited by the (reduced) network under each static input: [K, n, H]."""
    K = inputs.shape[0]
    H = model.hidden
    n_init = max(1, min(n, 10))
    x0 = torch.as_tensor(rng.normal(0.0, 1.0, (K, n_init, H)))
    x0[:, n_init // 2:] *= 3.0          # some starts further out
    u = torch.as_tensor(inputs, dtype=torch.float64)[None, :, None, :].expand(
        steps, K, n_init, inputs.shape[1])
    m = model.to(dtype=torch.float64)
    # every input is its own "network" copy, so states are [T', K, n_init, H]
    stack = RateRNN.stack([m] * K)
    sim = stack.simulate(u, x0, keep=max(1, steps // 30))
    states = sim.states.permute(1, 0, 2, 3).reshape(K, -1, H)        # [K, T'*n_init, H]
    pick = rng.integers(0, states.shape[1], size=(K, n))
    out = states[torch.arange(K)[:, None], torch.as_tensor(pick)]
    return out + noise * torch.as_tensor(rng.normal(0.0, 1.0, out.shape))


@torch.no_grad()
def visited_starts(model, task, n: int, noise: float, seed: int) -> np.ndarray | None:
    """``n`` states [n, H] the network (P = 1; a rate network's free units) visits
    on its task's own trials (``task.start_trials(rng)``: inputs [T, 1, trials, I]),
    picked at random, with noise of sd ``noise``; None for a task without them
    (a decision task: its points are sought from its static inputs)."""
    make = getattr(task, "start_trials", None)
    if make is None or n <= 0:
        return None
    from rnn.protocol import X0_SCALE
    from rnn.rng import PROBE, Streams
    net = model.reduced() if hasattr(model, "clamp_idx") else model
    net = net.to(device="cpu", dtype=torch.float64)
    rng = Streams([seed], PROBE)
    inputs = make(rng).to(torch.float64)
    x0 = X0_SCALE * rng.normal(inputs.shape[2], net.hidden).to(torch.float64)
    states = net.simulate(inputs, x0, keep="all").states[:, 0].reshape(-1, net.hidden)
    g = np.random.default_rng(seed)
    pick = states.numpy()[g.integers(0, states.shape[0], size=n)]
    return pick + noise * g.normal(0.0, 1.0, pick.shape)


def task_fixed_points(model, task, kind: str = "small", cfg: SolverConfig = SolverConfig()
                      ) -> "FixedPoints":
    """The fixed points of one network on its task under the static set ``kind``
    ('large', 'small', 'sparse'): the one place every analysis solves them
    (the task's static inputs, and its own trials' states as starts where it has them)."""
    st = task.static_inputs(kind)
    extra = visited_starts(model, task, cfg.n_traj, cfg.traj_noise, cfg.seed)
    return find_fixed_points(model, st.values, st.evidence, st.context, cfg, extra)


def expected_task_starts(task, cfg: SolverConfig = SolverConfig()) -> int:
    """The task starts :func:`task_fixed_points` uses (a cache must match)."""
    return cfg.n_traj if getattr(task, "start_trials", None) is not None else 0


@torch.no_grad()
def find_fixed_points(model: RateRNN, inputs: np.ndarray, evidence: np.ndarray | None = None,
                      context: np.ndarray | None = None, cfg: SolverConfig = SolverConfig(),
                      extra_starts: np.ndarray | None = None) -> FixedPoints:
    """Fixed points of a single network (P = 1) under the static inputs [K, I]
    (a discrete-time network's by rnn.analysis.step_fixed_points).
    ``extra_starts`` [S', H]: more starts, the same for every input (a rate
    network's over its free units), e.g. from :func:`visited_starts`."""
    if model.n_networks != 1:
        raise ValueError("find_fixed_points takes one network")
    if hasattr(model, "arch"):
        from rnn.analysis.step_fixed_points import find_network_fixed_points
        return find_network_fixed_points(model, inputs, evidence, context, cfg, extra_starts)
    inputs = np.asarray(inputs, dtype=np.float64)
    K = inputs.shape[0]
    evidence = np.zeros(K) if evidence is None else np.asarray(evidence, dtype=np.float64)
    context = np.zeros(K, dtype=np.int64) if context is None else np.asarray(context)
    red = model.reduced().to(device="cpu", dtype=torch.float64)   # small: CPU, any model
    act = red.activation
    W = red.W_rec[0]
    H = red.hidden
    c = torch.as_tensor(inputs) @ red.W_in[0].T + red.b[0]           # [K, H]
    rng = np.random.default_rng(cfg.seed)

    traj = trajectory_starts(red, inputs, max(cfg.n_traj, 1), cfg.traj_noise, rng)
    if cfg.box is not None:
        lo = torch.full((K, H), -float(cfg.box), dtype=torch.float64)
        hi = -lo
    elif act == "relu":
        lo = traj.amin(1) - 1.0
        hi = traj.amax(1) + 1.0
    else:
        lo, hi = fixed_point_box(W, c, act)
    u = torch.as_tensor(rng.random((K, cfg.n_box, H)))
    box = lo[:, None, :] + u * (hi - lo)[:, None, :]
    starts = [box, traj[:, :cfg.n_traj]]
    if extra_starts is not None:
        extra_starts = torch.as_tensor(np.asarray(extra_starts, dtype=np.float64))
        starts.append(extra_starts[None].expand(K, *extra_starts.shape))
    starts = torch.cat(starts, dim=1)                                 # [K, S, H]
    S = starts.shape[1]
    x0 = starts.reshape(K * S, H)
    which = np.repeat(np.arange(K), S)
    cc = c.repeat_interleave(S, dim=0)
    # phase 1 (float32): every start, to ||F||inf < 1e-5 or a stall
    x1, r1 = levenberg_marquardt(W, cc, act, x0.float(), cfg, tol=1e-5)
    x1, r1 = x1.double().numpy(), r1.double().numpy()
    # starts that reached the same point (per input) are one candidate
    cand = np.flatnonzero(r1 < cfg.slow_tol)
    cand = cand[merge_points(x1[cand], r1[cand], which[cand], 1e-4)]
    # phase 2 (float64): polish the distinct candidates far below the acceptance tolerance
    x2, r2 = levenberg_marquardt(W, cc[cand], act, torch.as_tensor(x1[cand]), cfg,
                                 tol=cfg.root_tol * 1e-3)
    xs, res, which = x2.numpy(), r2.numpy(), which[cand]

    is_root = res < cfg.root_tol
    ri = np.flatnonzero(is_root)
    uniq = ri[merge_points(xs[ri], res[ri], which[ri], cfg.merge_tol)]
    # stability over the free units
    xr = torch.as_tensor(xs[uniq])
    _, J = residual_and_jacobian(W, c[torch.as_tensor(which[uniq])], act, xr)
    eig = torch.linalg.eigvals(J).numpy() if len(uniq) else np.zeros((0, H), complex)
    n_unst = (eig.real > 0).sum(1)
    stable = (eig.real < 0).all(1) if len(uniq) else np.zeros(0, bool)

    si = np.flatnonzero(~is_root & (res < cfg.slow_tol))
    slow = si[merge_points(xs[si], res[si], which[si], 1e-3)] if len(si) else si

    def full(x):
        return model.expand_states(torch.as_tensor(x)).numpy() if model.clamp_idx else x

    return FixedPoints(
        xstar=full(xs[uniq]), inputs=inputs[which[uniq]], input_index=which[uniq],
        evidence=evidence[which[uniq]], context=context[which[uniq]], residual=res[uniq],
        eigvals=eig, is_stable=stable, n_unstable=n_unst,
        slow_xstar=full(xs[slow]).reshape(-1, model.hidden), slow_inputs=inputs[which[slow]],
        slow_input_index=which[slow], slow_evidence=evidence[which[slow]],
        slow_context=context[which[slow]], slow_residual=res[slow],
        n_starts=np.array(S), weights_hash=np.array(weights_hash(model)),
        task_starts=np.array(0 if extra_starts is None else len(extra_starts)))
