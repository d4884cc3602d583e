"""Discrete-time recurrent networks beside the paper's rate network: a vanilla
RNN, a GRU and an LSTM, with PyTorch's equations and parameter layout (so a
researcher's own ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` loads as one of these).

One step, input u and state h (H units; W·[u, h] stands for
W_ih·u + b_ih + W_hh·h + b_hh, each gate its block of rows):

    vanilla   h' = tanh(W·[u, h])                      (or ReLU)
    gru       r = σ(W_r·[u, h]),  z = σ(W_z·[u, h])
              n = tanh(W_in·u + b_in + r ⊙ (W_hn·h + b_hn))
              h' = (1 − z) ⊙ n + z ⊙ h
    lstm      i, f, o = σ(W_i·[u, h]), σ(W_f·[u, h]), σ(W_o·[u, h]),  g = tanh(W_g·[u, h])
              c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')

An LSTM's state is x = [h, c] (2H numbers): its fixed points are those of
both, and its trials start from a state of that size.  The readout is linear,
z = W_out·h + b_out, read as the rate network's (trial convention: u_1..u_T
drive x_0 → x_1 → … → x_T; the loss reads z_1 and z_T).

:class:`CellRNN` holds a stack of P networks along a leading axis, like
:class:`rnn.model.RateRNN`, and answers the same calls the trainers and the
analyses make of a network (``simulate``, ``output``, ``select``, ``stack``,
``to_state``/``from_state``, ``hidden``: the state size); ``step_map`` gives
the step h ← f(h, u) of one network for the fixed-point solver
(rnn.analysis.step_fixed_points).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Sequence

import torch

from rnn.model import HIDDEN, Simulation, fit_inputs, network_chunks, unrolled
from rnn.sizing import require_floats

ARCHS = ("rate", "vanilla", "gru", "lstm")       # --arch; 'rate' is rnn.model.RateRNN
CELLS = ARCHS[1:]
GATES = {"vanilla": 1, "gru": 3, "lstm": 4}       # blocks of rows in W_ih, W_hh
NONLINEARITIES = ("tanh", "relu")                 # a vanilla RNN's (PyTorch's choices)
PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "W_out", "b_out")
# gate values (networks x trials x gate rows) of one chunk of networks simulated
# together on a CPU without gradients (1 MiB; rnn.model._CPU_CHUNK_FLOATS is the
# rate network's): a chunk's step stays in a core's cache instead of streaming
# the whole population's gates through memory at every one of the step's
# elementwise passes (bench/bench_ga_eval.py)
CHUNK_FLOATS = 2 ** 18


@contextmanager
def flush_denormals():
    """Subnormal floats flushed to zero while the block runs (the CPU's FTZ/DAZ):
    a GRU's gradients through 750 steps decay into subnormals, on which the
    matrix products of its backward pass ran at ~1.4 GFLOP/s — one BPTT update
    took 3.4x as long (bench_arch.py).  Values below 1.2e-38 become 0; the rate
    network's own code never runs under it.  Blocks may nest (the outermost
    restores)."""
    _FLUSH[0] += 1
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        _FLUSH[0] -= 1
        if _FLUSH[0] == 0:
            torch.set_flush_denormal(False)


_FLUSH = [0]          # depth of nested flush_denormals blocks


@dataclass(frozen=True)
class CellRNN:
    arch: str
    weight_ih: torch.Tensor     # [P, G·H, I]
    weight_hh: torch.Tensor     # [P, G·H, H]
    bias_ih: torch.Tensor       # [P, G·H]
    bias_hh: torch.Tensor       # [P, G·H]
    W_out: torch.Tensor         # [P, O, H]   (O = 1 on a decision task)
    b_out: torch.Tensor         # [P, O]
    nonlinearity: str = "tanh"

    # what the rate network's callers read: no Euler step, no clamped units
    readout = "linear"
    dt = None
    clamp_idx = ()
    clamp_val = ()

    def __post_init__(self):
        if self.arch not in CELLS:
            raise ValueError(f"unknown architecture {self.arch!r}; known: {CELLS}")
        if self.nonlinearity not in NONLINEARITIES or (
                self.arch != "vanilla" and self.nonlinearity != "tanh"):
            raise ValueError(f"nonlinearity {self.nonlinearity!r} is not one a {self.arch} "
                             f"network has")
        P, GH, H = self.weight_hh.shape
        I, O = self.weight_ih.shape[-1], self.W_out.shape[1]
        want = {"weight_ih": (P, GH, I), "weight_hh": (P, GATES[self.arch] * H, H),
                "bias_ih": (P, GH), "bias_hh": (P, GH), "W_out": (P, O, H), "b_out": (P, O)}
        got = {k: tuple(getattr(self, k).shape) for k in want}
        if got != want:
            raise ValueError(f"inconsistent {self.arch} weight shapes: {got}")

    # ---- shapes ---------------------------------------------------------------
    @property
    def units(self) -> int:
        """H, the units (an LSTM's state has 2H numbers)."""
        return self.weight_hh.shape[-1]

    @property
    def hidden(self) -> int:
        """The state size: H, or 2H for an LSTM ([h, c])."""
        return 2 * self.units if self.arch == "lstm" else self.units

    @property
    def n_networks(self) -> int:
        return self.weight_hh.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.weight_ih.shape[-1]

    @property
    def device(self) -> torch.device:
        return self.weight_hh.device

    @property
    def dtype(self) -> torch.dtype:
        return self.weight_hh.dtype

    @property
    def activation(self) -> str:
        """What records call the nonlinearity (the gates' are fixed by the architecture)."""
        return self.nonlinearity

    def chunk(self, n: int) -> int:
        """Networks simulated together without gradients, on ``n`` trials each: on
        a CPU as many as keep a step's gates within CHUNK_FLOATS, at least 2 (a GA
        population of GRUs or LSTMs on 500 trials, 2-3 at a time: its evaluation
        1.3-1.8x faster, bench/results/ga_eval.md, section 3); on a GPU, all."""
        if self.device.type != "cpu":
            return self.n_networks
        return max(2, CHUNK_FLOATS // (max(1, n) * GATES[self.arch] * self.units))

    def reduced(self) -> "CellRNN":
        """Itself: no unit is clamped (the rate network's call)."""
        return self

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in PARAMS}

    # ---- construction ---------------------------------------------------------
    @staticmethod
    def init(arch: str, rng, n_inputs: int, per_stream: int = 1, hidden: int = HIDDEN,
             out_scale: float = 0.1, n_outputs: int = 1) -> "CellRNN":
        """Every input and recurrent weight ~ N(0, 1/H) (PyTorch's uniform ±1/√H has
        the same scale), biases 0 but an LSTM's forget gate's, 1 (it starts
        remembering), W_out ~ 0.1·N(0, 1) (the rate network's), b_out 0.
        ``per_stream`` networks from each stream of ``rng`` (a GA population)."""
        if arch not in CELLS:
            raise ValueError(f"unknown architecture {arch!r}; known: {CELLS}")
        k, H, I, G = per_stream, hidden, n_inputs, GATES[arch]
        P = rng.n * k
        s = H ** -0.5
        w_ih = s * rng.normal(k, G * H, I).reshape(P, G * H, I)
        w_hh = s * rng.normal(k, G * H, H).reshape(P, G * H, H)
        w_out = out_scale * rng.normal(k, n_outputs, H).reshape(P, n_outputs, H)
        b_ih = torch.zeros(P, G * H, device=rng.device)
        if arch == "lstm":
            b_ih[:, H:2 * H] = 1.0
        return CellRNN(arch, w_ih, w_hh, b_ih, torch.zeros_like(b_ih), w_out,
                       torch.zeros(P, n_outputs, device=rng.device))

    def replace(self, **changes) -> "CellRNN":
        return replace(self, **changes)

    def select(self, idx) -> "CellRNN":
        if isinstance(idx, int):
            idx = [idx]
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.device)
        return self.replace(**{k: v[idx] for k, v in self.tensors().items()})

    @staticmethod
    def stack(models: Sequence["CellRNN"]) -> "CellRNN":
        first = models[0]
        for m in models[1:]:
            if (m.arch, m.nonlinearity) != (first.arch, first.nonlinearity):
                raise ValueError("cannot stack networks of different architectures")
        return first.replace(**{k: torch.cat([getattr(m, k) for m in models]) for k in PARAMS})

    def to(self, device=None, dtype=None) -> "CellRNN":
        return self.replace(**{k: v.to(device=device, dtype=dtype)
                               for k, v in self.tensors().items()})

    # ---- persistence (one network) --------------------------------------------
    def to_state(self, p: int = 0) -> dict:
        out = {"arch": self.arch, "nonlinearity": self.nonlinearity}
        out.update({k: v[p].detach().cpu().clone() for k, v in self.tensors().items()})
        return out

    @staticmethod
    def from_state(s: dict) -> "CellRNN":
        t = {k: torch.as_tensor(s[k], dtype=torch.float32).unsqueeze(0) for k in PARAMS}
        return CellRNN(str(s["arch"]), nonlinearity=str(s.get("nonlinearity", "tanh")), **t)

    # ---- the dynamics -----------------------------------------------------------
    def _prepared(self) -> tuple[torch.Tensor, ...]:
        """The weights as :meth:`_step` reads them, each [P, ...] (a chunk of
        networks is a slice of each), transposed to [P, in, out], with biases
        [P, 1, out]:

        * vanilla, lstm: (w_ih, w_hh, b_ih + b_hh).  An LSTM's cell-input (g)
          block is doubled, so that one sigmoid over all four gates gives
          tanh(g) as 2σ(2g) − 1 (one pass over contiguous memory instead of
          four over strided blocks: 1.4–2× faster steps, equal to 3e-7).
        * gru: (w_ih, w_hh, b_ih + b_hh) of the r and z rows, then the n rows'
          w_ih, b_ih, w_hh, b_hh apart (n = tanh(W_in·u + b_in + r ⊙ (W_hn·h +
          b_hn)) keeps its two sums apart).

        Each step then accumulates its products into one fresh buffer per
        block and applies its nonlinearity in place (bench/bench_ga_eval.py)."""
        w_ih, w_hh = self.weight_ih.transpose(1, 2), self.weight_hh.transpose(1, 2)
        b_ih, b_hh = self.bias_ih[:, None, :], self.bias_hh[:, None, :]
        H = self.units
        if self.arch == "gru":
            rz, n = slice(0, 2 * H), slice(2 * H, 3 * H)
            return tuple(t.contiguous() for t in (
                w_ih[..., rz], w_hh[..., rz], b_ih[..., rz] + b_hh[..., rz],
                w_ih[..., n], b_ih[..., n], w_hh[..., n], b_hh[..., n]))
        if self.arch == "vanilla":
            return w_ih, w_hh, b_ih + b_hh
        scale = torch.ones(4 * H, dtype=w_ih.dtype, device=w_ih.device)
        scale[2 * H:3 * H] = 2.0
        return w_ih * scale, w_hh * scale, (b_ih + b_hh) * scale

    def _step(self, x: torch.Tensor, u: torch.Tensor, w: tuple[torch.Tensor, ...]
              ) -> torch.Tensor:
        """One step of every network: x [P, n, S], u [P, n, I] -> [P, n, S], with
        the weights ``w`` of :meth:`_prepared`.  The operations done in place
        touch only buffers made in this step whose old values no backward pass
        needs, so BPTT differentiates through it as through the plain formulas."""
        H = self.units
        h = x[..., :H]
        if self.arch == "gru":      # PyTorch's gate order r, z, n
            w_ir, w_hr, b_r, w_in, b_in, w_hn, b_hn = w
            r, z = torch.baddbmm(b_r, u, w_ir).baddbmm_(h, w_hr).sigmoid_().split(H, dim=-1)
            n = torch.baddbmm(b_in, u, w_in).addcmul_(r, torch.baddbmm(b_hn, h, w_hn)).tanh_()
            return torch.lerp(n, h, z)                       # n + z ⊙ (h − n)
        w_ih, w_hh, b = w
        s = torch.baddbmm(b, u, w_ih).baddbmm_(h, w_hh)
        if self.arch == "vanilla":
            return s.tanh_() if self.nonlinearity == "tanh" else s.relu_()
        # lstm: PyTorch's gate order i, f, g, o; g's block doubled
        i, f, gg, o = s.sigmoid_().split(H, dim=-1)
        if torch.is_grad_enabled():     # sigmoid's backward reads s: g made apart
            c = torch.addcmul(f * x[..., H:], i, gg.mul(2.0).sub_(1.0))
            return torch.cat([o * torch.tanh(c), c], dim=-1)
        out = x.new_empty((*s.shape[:-1], 2 * H))     # [h, c], written in place
        c = torch.mul(f, x[..., H:], out=out[..., H:]).addcmul_(i, gg.mul_(2.0).sub_(1.0))
        torch.tanh(c, out=out[..., :H]).mul_(o)
        return out

    def simulate(self, inputs: torch.Tensor, x0: torch.Tensor, keep: str | int | None = None,
                 rate_buffer=None) -> Simulation:
        """Run the networks for T steps (the conventions of RateRNN.simulate).
        Without gradients, unless called under ``torch.enable_grad()`` on weights
        that require them (BPTT by autograd, rnn.rules.bptt.CellBPTTTrainer)."""
        if rate_buffer is not None:
            raise ValueError("rate_buffer is the rate network's (its hand-written BPTT)")
        grad = torch.is_grad_enabled() and any(v.requires_grad for v in self.tensors().values())
        with torch.set_grad_enabled(grad), flush_denormals():
            return self._run(inputs, x0, keep)

    def _run(self, inputs, x0, keep) -> Simulation:
        inputs, x0 = fit_inputs(self, inputs, x0)
        P, S_ = self.n_networks, self.hidden
        T, S, n, I = inputs.shape
        if x0.shape[-1] != S_:
            raise ValueError(f"initial states of size {x0.shape[-1]} do not fit a {self.arch} "
                             f"state of {S_}")
        kept_n = 2 if keep is None else (T if keep == "all" else -(-T // int(keep)))
        require_floats((kept_n + 4 * GATES[self.arch]) * P * n * S_,
                       f"simulating {n} trials of {T} steps for {P} {self.arch} network(s) of "
                       f"{self.units} units", self.device)
        w = self._prepared()
        x0 = x0.expand(P, n, S_)
        most = P if torch.is_grad_enabled() else self.chunk(n)
        if most >= P:
            return unrolled(lambda x, u: self._step(x, u, w), inputs, x0, keep)
        # without gradients, a chunk of networks at a time, every step of it
        parts = []
        for a, e, j0, j1 in network_chunks(P, S, most):
            wc = tuple(v[a:e] for v in w)
            parts.append(unrolled(lambda x, u: self._step(x, u, wc),
                                  inputs[:, j0:j1], x0[a:e], keep))
        return Simulation.cat(parts)

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """Readout z = W_out·h + b_out for states x [..., P, n, S] -> [..., P, n]."""
        h = x[..., :self.units]
        w = self.W_out[:, 0, :].to(x.dtype)
        return (h * w[:, None, :]).sum(-1) + self.b_out[:, :1].to(x.dtype)

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Every output, W_out·h + b_out: [..., P, n, S] -> [..., P, n, O] (one
        batched product over the leading axes: twice einsum's speed on a
        window of states, which einsum permutes and copies first)."""
        h = x[..., :self.units]
        return torch.matmul(h, self.W_out.transpose(1, 2).to(x.dtype)) + \
            self.b_out[:, None, :].to(x.dtype)

    def unroll(self, inputs: torch.Tensor, x0: torch.Tensor, keep: str | int | None = None
               ) -> Simulation:
        """The steps with autograd through them (as RateRNN.unroll)."""
        with torch.enable_grad():
            return self._run(inputs, x0, keep)

    def step_map(self, p: int = 0) -> "StepMap":
        """The step of network ``p`` in float64 for the fixed-point solver:
        ``step(h [B, S], u [B, I]) -> [B, S]`` (torch operations, differentiable),
        with its Jacobian in closed form, ``step.jacobian(h, u) -> [B, S, S]``."""
        return StepMap(self.select(p).to(dtype=torch.float64))


class StepMap:
    """The step h ← f(h, u) of one discrete-time network (float64) and its
    Jacobian ∂f/∂h in closed form, so that the fixed-point solver need not
    build it by automatic differentiation (one reverse pass per state
    coordinate).  With a = W_ih·u + b_ih + W_hh·h + b_hh, each gate's block of
    rows written W_x, and φ' the derivative of the nonlinearity:

        vanilla  J = diag(φ'(a)) W_hh
        gru      ∂r = diag(r(1−r)) W_hr,  ∂z = diag(z(1−z)) W_hz,
                 ∂n = diag(1−n²) (diag(W_hn·h + b_hn) ∂r + diag(r) W_hn)
                 J = diag(1−z) ∂n + diag(h−n) ∂z + diag(z)
        lstm     state [h, c]; c' = f⊙c + i⊙g, h' = o⊙tanh(c'):
                 ∂c'/∂h = diag(c f(1−f)) W_hf + diag(g i(1−i)) W_hi + diag(i(1−g²)) W_hg
                 ∂c'/∂c = diag(f)
                 ∂h'/∂h = diag(tanh(c') o(1−o)) W_ho + diag(o(1−tanh²c')) ∂c'/∂h
                 ∂h'/∂c = diag(o(1−tanh²c') f)

    (tests/test_arch.py checks each against autograd.)"""

    def __init__(self, one: CellRNN):
        self.net = one
        self._w = one._prepared()
        self.W_ih, self.W_hh = one.weight_ih[0], one.weight_hh[0]
        self.b_ih, self.b_hh = one.bias_ih[0], one.bias_hh[0]

    def __call__(self, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.net._step(h.unsqueeze(0), u.to(h.dtype).unsqueeze(0), self._w)[0]

    def jacobian(self, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """∂f/∂h [B, S, S] at each row of h [B, S] under u [B, I]."""
        net, H = self.net, self.net.units
        hh = h[:, :H]
        gi = u.to(h.dtype) @ self.W_ih.T + self.b_ih
        gh = hh @ self.W_hh.T + self.b_hh
        W = self.W_hh.view(-1, H, H)                     # [gates, H, H]

        if net.arch == "vanilla":
            a = gi + gh
            if net.nonlinearity == "tanh":
                d = 1.0 - torch.tanh(a) ** 2
            else:
                d = (a > 0).to(a.dtype)
            return _row_scaled([d], [W[0]])
        if net.arch == "gru":      # the formulas above, multiplied out: diag(·) W_x terms
            r = torch.sigmoid(gi[:, :H] + gh[:, :H])
            z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            hn = gh[:, 2 * H:]
            n = torch.tanh(gi[:, 2 * H:] + r * hn)
            dn = (1 - z) * (1 - n ** 2)
            J = _row_scaled([dn * hn * r * (1 - r), dn * r, (hh - n) * z * (1 - z)],
                            [W[0], W[2], W[1]])
            J.diagonal(dim1=1, dim2=2).add_(z)
            return J
        a = gi + gh                                      # lstm: gates i, f, g, o
        i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H])
        g, o = torch.tanh(a[:, 2 * H:3 * H]), torch.sigmoid(a[:, 3 * H:])
        c = h[:, H:]
        tc = torch.tanh(f * c + i * g)
        k = o * (1 - tc ** 2)
        cf, ci, cg = c * f * (1 - f), g * i * (1 - i), i * (1 - g ** 2)   # dc'/dh's rows
        J = h.new_zeros(h.shape[0], 2 * H, 2 * H)
        _row_scaled([cf, ci, cg], [W[1], W[0], W[2]], out=J[:, H:, :H])
        _row_scaled([k * cf, k * ci, k * cg, tc * o * (1 - o)], [W[1], W[0], W[2], W[3]],
                    out=J[:, :H, :H])
        J[:, :H, H:].diagonal(dim1=1, dim2=2).copy_(k * f)
        J[:, H:, H:].diagonal(dim1=1, dim2=2).copy_(f)
        return J


def _row_scaled(coefs: list[torch.Tensor], mats: list[torch.Tensor],
                out: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_k diag(coefs[k][b]) mats[k] for each row b: coefs [B, H], mats [H, H]
    -> [B, H, H], into one buffer (``out`` where given): the closed-form
    Jacobians are sums of such terms, and one product per term with no
    temporaries is what keeps their float64 [B, H, H] stacks cheap (each
    fresh one is memory the kernel must zero)."""
    if out is None:
        out = coefs[0][:, :, None] * mats[0]
    else:
        torch.mul(coefs[0][:, :, None], mats[0], out=out)
    for d, W in zip(coefs[1:], mats[1:]):
        out.addcmul_(d[:, :, None], W)
    return out


def init_network(arch: str, rng, n_inputs: int, per_stream: int = 1, hidden: int = HIDDEN,
                 activation: str = "one_plus_tanh", readout: str = "linear", n_outputs: int = 1):
    """The initial stack of a trainer of any architecture: the rate network's
    initialisation for 'rate' (with ``activation`` and ``readout``), else
    :meth:`CellRNN.init` (a vanilla RNN's nonlinearity: ReLU if ``activation`` is)."""
    from rnn.model import RateRNN
    if arch == "rate":
        return RateRNN.init(rng, n_inputs, per_stream=per_stream, hidden=hidden,
                            activation=activation, readout=readout, n_outputs=n_outputs)
    net = CellRNN.init(arch, rng, n_inputs, per_stream=per_stream, hidden=hidden,
                       n_outputs=n_outputs)
    return net.replace(nonlinearity="relu") if arch == "vanilla" and activation == "relu" else net
