"""Fixed points of any network given as its step map h ← f(h, u).

For each static input u we solve F(h) = f(h, u) − h = 0 from many starts at
once (every input × every start one batch), by the Levenberg–Marquardt
iterations of :func:`rnn.analysis.fixed_points.lm_solve` on the Jacobian of f
— in closed form where the map gives one (``step.jacobian``: this tool's
vanilla RNN, GRU and LSTM), else by automatic differentiation (``torch.func``:
one ``jacrev`` per row, batched with ``vmap``) — in float64.  A point is
accepted only if it is a root, ‖F‖∞ < ``root_tol``; duplicates (per input)
closer than ``merge_tol`` are merged.

Stability comes from the eigenvalues of the step map's Jacobian ∂f/∂h at the
root.  A discrete-time network (a vanilla RNN, a GRU, an LSTM's step) is
stable there when every |λ| < 1.  A continuous-time network integrated by
Euler steps, f(h) = h + dt·G(h) (the paper's rate network), has the roots of
G, and its stability is that of the flow: pass ``dt`` and the eigenvalues
reported are those of J = (∂f/∂h − I)/dt, stable when every real part is
negative — the same answer as rnn.analysis.fixed_points on the analytic J.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnn.analysis.fixed_points import lm_solve, merge_points


@dataclass(frozen=True)
class StepSolverConfig:
    max_iter: int = 200          # Levenberg–Marquardt iterations at most
    root_tol: float = 1e-8       # accept as a root when ||F||_inf < root_tol
    merge_tol: float = 1e-6      # roots closer than this (max-norm) are one root


@dataclass
class StepFixedPoints:
    """The roots of f(h, u) − h (NumPy arrays).

    xstar [K, H]     the roots; input_index [K] the row of each one's input
    residual [K]     ||f(xstar, u) − xstar||_inf
    eigvals [K, H]   eigenvalues (complex) of ∂f/∂h, or of J = (∂f/∂h − I)/dt
                     for a continuous-time network (``dt`` given)
    is_stable [K]    every |λ| < 1 (discrete), every Re λ < 0 (continuous)
    n_unstable [K]   the count of |λ| > 1 (discrete), of Re λ > 0 (continuous)
    """
    xstar: np.ndarray
    input_index: np.ndarray
    residual: np.ndarray
    eigvals: np.ndarray
    is_stable: np.ndarray
    n_unstable: np.ndarray

    def summary(self) -> str:
        n, s = len(self.residual), int(self.is_stable.sum())
        return f"{n} fixed points ({s} stable, {n - s} unstable)"


def step_jacobian(step, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """∂f/∂h [B, H, H] of the step map at each row of h [B, H] under u [B, I]:
    ``step.jacobian(h, u)`` where the map has one in closed form (this tool's
    networks, rnn.arch.StepMap), else by automatic differentiation."""
    closed = getattr(step, "jacobian", None)
    if closed is not None:
        return closed(h, u)
    from torch.func import jacrev, vmap

    def one(hh, uu):
        return step(hh.unsqueeze(0), uu.unsqueeze(0)).squeeze(0)
    return vmap(jacrev(one))(h, u)


@torch.no_grad()
def default_starts(step, inputs, hidden: int, n: int = 100, noise: float = 0.05,
                   steps: int = 300, seed: int = 0) -> np.ndarray:
    """Starts [K, 2n, H] per static input: n states the network visits, run
    ``steps`` steps from 10 random states (half of them three times further
    out), with a little noise — where the fixed points that matter lie — and
    n uniform in the box those states span, widened by 1 on each side (no
    bound on the fixed points is known for an arbitrary map)."""
    rng = np.random.default_rng(seed)
    u = torch.as_tensor(np.asarray(inputs, dtype=np.float64))
    K, n_init = u.shape[0], 10
    h = torch.as_tensor(rng.normal(0.0, 1.0, (K * n_init, hidden)))
    h[::2] *= 3.0
    uu = u.repeat_interleave(n_init, dim=0)
    seen = []
    for t in range(steps):
        h = step(h, uu)
        if t % 10 == 9:
            seen.append(h.reshape(K, n_init, hidden))
    states = torch.cat(seen, dim=1).numpy()                       # [K, T'*n_init, H]
    pick = rng.integers(0, states.shape[1], size=(K, n))
    traj = states[np.arange(K)[:, None], pick]
    traj = traj + noise * rng.normal(0.0, 1.0, traj.shape)
    lo, hi = states.min(1, keepdims=True) - 1.0, states.max(1, keepdims=True) + 1.0
    box = lo + rng.random((K, n, hidden)) * (hi - lo)
    return np.concatenate([box, traj], axis=1)


def find_step_fixed_points(step, inputs, starts=None, cfg: StepSolverConfig = StepSolverConfig(),
                           dt: float | None = None, hidden: int | None = None
                           ) -> StepFixedPoints:
    """Fixed points of the step map ``step(h [B, H], u [B, I]) -> h' [B, H]``
    (torch operations only, any dtype: it is called in float64) under each
    static input of ``inputs`` [K, I], from ``starts`` [K, S, H] (per input)
    or [S, H] (the same for every input); None: :func:`default_starts`
    (give ``hidden``, the state size).  ``dt``: the network is a
    continuous-time one integrated by Euler steps of this size (stability of
    the flow); None: a discrete-time network."""
    u_all = torch.as_tensor(np.asarray(inputs, dtype=np.float64))
    K = u_all.shape[0]
    if starts is None:
        if hidden is None:
            raise ValueError("without starts, give hidden (the state size)")
        starts = default_starts(step, inputs, hidden)
    s = torch.as_tensor(np.asarray(starts, dtype=np.float64))
    if s.dim() == 2:
        s = s.unsqueeze(0).expand(K, *s.shape)
    if s.dim() != 3 or s.shape[0] != K:
        raise ValueError("starts must be [S, H] or [K, S, H] for K inputs")
    S, H = s.shape[1], s.shape[2]
    x0 = s.reshape(K * S, H).clone()
    which = np.repeat(np.arange(K), S)
    uu = u_all.repeat_interleave(S, dim=0)
    eye = torch.eye(H, dtype=torch.float64)

    def residual(rows, x, jacobian):
        u = uu if rows is None else uu[rows]
        with torch.no_grad():
            F = step(x, u) - x
        if not jacobian:
            return F, None
        J = step_jacobian(step, x, u)
        J.diagonal(dim1=1, dim2=2).sub_(1.0)          # ∂F/∂h = J − I, in place
        return F, J

    xs, res = lm_solve(residual, x0, cfg.max_iter, cfg.root_tol * 1e-3)
    xs, res = xs.numpy(), res.numpy()
    ri = np.flatnonzero(res < cfg.root_tol)
    uniq = ri[merge_points(xs[ri], res[ri], which[ri], cfg.merge_tol)]
    if len(uniq):
        Jf = step_jacobian(step, torch.as_tensor(xs[uniq]), u_all[torch.as_tensor(which[uniq])])
        if dt is None:
            eig = torch.linalg.eigvals(Jf).numpy()
            mag = np.abs(eig)
            stable, n_unst = (mag < 1).all(1), (mag > 1).sum(1)
        else:
            eig = torch.linalg.eigvals((Jf - eye) / dt).numpy()
            stable, n_unst = (eig.real < 0).all(1), (eig.real > 0).sum(1)
    else:
        eig, stable, n_unst = np.zeros((0, H), complex), np.zeros(0, bool), np.zeros(0, int)
    return StepFixedPoints(xs[uniq], which[uniq], res[uniq], eig, stable, n_unst)


def torch_cell_step(cell: torch.nn.Module):
    """The step map of a PyTorch recurrent cell (``nn.RNNCell``, ``nn.GRUCell``,
    ``nn.LSTMCell``) or of a one-layer ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``
    (unidirectional, bias either way), in float64: ``step(h, u)`` for
    :func:`find_step_fixed_points`, and the state size.  An LSTM's state is
    [h, c] concatenated (its fixed points are those of both)."""
    import torch.nn as nn
    kind = {nn.RNNCell: "rnn", nn.GRUCell: "gru", nn.LSTMCell: "lstm",
            nn.RNN: "rnn", nn.GRU: "gru", nn.LSTM: "lstm"}.get(type(cell))
    if kind is None:
        raise TypeError(f"not a PyTorch RNN, GRU or LSTM (cell): {type(cell).__name__}")
    if isinstance(cell, (nn.RNN, nn.GRU, nn.LSTM)):
        if cell.num_layers != 1 or cell.bidirectional or getattr(cell, "proj_size", 0):
            raise TypeError("one layer, one direction, no projection")
        sfx = "_l0"
    else:
        sfx = ""
    p = {k: v.detach().to(torch.float64) for k, v in cell.named_parameters()}
    W_ih, W_hh = p[f"weight_ih{sfx}"], p[f"weight_hh{sfx}"]
    H = W_hh.shape[1]
    zero = torch.zeros(W_hh.shape[0], dtype=torch.float64)
    b_ih, b_hh = p.get(f"bias_ih{sfx}", zero), p.get(f"bias_hh{sfx}", zero)
    if kind == "rnn":
        act = torch.tanh if getattr(cell, "nonlinearity", "tanh") == "tanh" else torch.relu

        def step(h, u):
            return act(u @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        return step, H
    if kind == "gru":
        def step(h, u):
            gi, gh = u @ W_ih.T + b_ih, h @ W_hh.T + b_hh
            r = torch.sigmoid(gi[:, :H] + gh[:, :H])
            z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            return (1 - z) * n + z * h
        return step, H

    def step(hc, u):                                   # LSTM: the state is [h, c]
        h, c = hc[:, :H], hc[:, H:]
        g = u @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        i, f = torch.sigmoid(g[:, :H]), torch.sigmoid(g[:, H:2 * H])
        gg, o = torch.tanh(g[:, 2 * H:3 * H]), torch.sigmoid(g[:, 3 * H:])
        c2 = f * c + i * gg
        return torch.cat([o * torch.tanh(c2), c2], dim=1)
    return step, 2 * H


@torch.no_grad()
def find_network_fixed_points(model, inputs, evidence=None, context=None, cfg=None,
                              extra_starts=None):
    """The fixed points of one discrete-time network of this tool (rnn.arch.CellRNN)
    as :class:`rnn.analysis.fixed_points.FixedPoints` (``discrete`` set; no slow
    points: the step solver reports roots only), so that every analysis of the
    rate network's points (census, topology, figures) reads them unchanged.
    ``cfg``: the rate solver's SolverConfig (its start counts, tolerances, seed);
    ``extra_starts`` [S', H]: more starts, the same for every input."""
    from rnn.analysis.fixed_points import FixedPoints, SolverConfig, weights_hash
    cfg = cfg or SolverConfig()
    inputs = np.asarray(inputs, dtype=np.float64)
    K = inputs.shape[0]
    evidence = np.zeros(K) if evidence is None else np.asarray(evidence, dtype=np.float64)
    context = np.zeros(K, dtype=np.int64) if context is None else np.asarray(context)
    step = model.to("cpu").step_map(0)
    n = max(1, (cfg.n_box + cfg.n_traj) // 2)
    starts = default_starts(step, inputs, model.hidden, n=n, noise=cfg.traj_noise,
                            seed=cfg.seed)
    if extra_starts is not None:
        extra = np.asarray(extra_starts, dtype=np.float64)
        starts = np.concatenate([starts, np.broadcast_to(extra, (K, *extra.shape))], axis=1)
    fp = find_step_fixed_points(step, inputs, starts, StepSolverConfig(
        cfg.max_iter, cfg.root_tol, cfg.merge_tol))
    w = fp.input_index
    none = np.zeros(0, dtype=np.int64)
    return FixedPoints(
        xstar=fp.xstar, inputs=inputs[w], input_index=w, evidence=evidence[w],
        context=context[w], residual=fp.residual, eigvals=fp.eigvals, is_stable=fp.is_stable,
        n_unstable=fp.n_unstable, slow_xstar=np.zeros((0, model.hidden)),
        slow_inputs=np.zeros((0, inputs.shape[1])), slow_input_index=none,
        slow_evidence=np.zeros(0), slow_context=none, slow_residual=np.zeros(0),
        n_starts=np.array(starts.shape[1]), weights_hash=np.array(weights_hash(model)),
        discrete=np.array(True),
        task_starts=np.array(0 if extra_starts is None else len(extra_starts)))
