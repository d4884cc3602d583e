"""The continuous-time rate network every learning rule produces.

    x ← x + dt·(−x + W_rec·φ(x) + W_in·u + b)          (Euler, τ = 1, dt = 0.1)

One :class:`RateRNN` holds a *stack* of P independent networks along a leading
axis (P = 1 for a single network): the GA evaluates its population this way
and population training runs many networks as one batch.

Layouts:  W_in [P, H, I]   W_rec [P, H, H]   W_out [P, O, H]   b [P, H]
          states x [P, n, H] (n trials), inputs u [T, n, I] (shared by all
          networks) or [T, P, n, I] (one sequence per network).

Activations φ: ``one_plus_tanh`` (1 + tanh x; BPTT, GA), ``tanh`` (FF, HEB),
``relu`` (max(0, x), the ``--relu`` flag).
Readouts z: ``linear`` (W_out·x; BPTT, GA), ``tanh_rates`` (tanh(W_out·φ(x));
FF), ``unit0`` (tanh(x₀); HEB, where unit 0 is the output unit).

Trial convention: u_1..u_T drive the steps x_0 → x_1 → … → x_T; the loss and
the decision read z_1 (the first step) and z_T (the last).

Clamped units (the Hebbian rule's bias units, as in Miconi's code) hold their
state x at fixed values, so their rate is the constant φ(value).  They act on
the other units only through ``W_rec[:, clamped]·φ(value)``, so a clamped
network is simulated (and analysed) as the equivalent network of its free
units with that term added to the bias: see :meth:`RateRNN.reduced`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import torch

from rnn.rng import Streams
from rnn.sizing import require_floats

ACTIVATIONS = ("one_plus_tanh", "tanh", "relu")
READOUTS = ("linear", "tanh_rates", "unit0")
HIDDEN = 50
DT = 0.1
# On a CPU, a stack of networks simulated without gradients runs a chunk of
# networks at a time, each chunk through all its steps (network_chunks), so that
# what a step reads and writes stays in cache: the rate network's chunks are whole
# blocks of networks sharing an input sequence, as many as keep their states
# within this many floats; the discrete-time networks' are sized by their gates
# (rnn.arch.CHUNK_FLOATS)
_CPU_CHUNK_FLOATS = 1 << 20

@dataclass(frozen=True)
class Simulation:
    """Result of :meth:`RateRNN.simulate`.

    states  [T', P, n, H] the kept states (None unless asked for)
    steps   [T'] the step index (1..T) of each kept state
    x_first [P, n, H] state after step 1;  x_last [P, n, H] state after step T
    """
    x_first: torch.Tensor
    x_last: torch.Tensor
    states: torch.Tensor | None = None
    steps: torch.Tensor | None = None

    @staticmethod
    def cat(parts: Sequence["Simulation"]) -> "Simulation":
        """The simulations of consecutive chunks of networks as one."""
        states = None if parts[0].states is None else torch.cat([p.states for p in parts], 1)
        return Simulation(torch.cat([p.x_first for p in parts]),
                          torch.cat([p.x_last for p in parts]), states, parts[0].steps)


@dataclass(frozen=True)
class RateRNN:
    W_in: torch.Tensor
    W_rec: torch.Tensor
    W_out: torch.Tensor
    b: torch.Tensor
    activation: str = "one_plus_tanh"
    readout: str = "linear"
    dt: float = DT
    clamp_idx: tuple[int, ...] = field(default=())
    clamp_val: tuple[float, ...] = field(default=())

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {ACTIVATIONS}")
        if self.readout not in READOUTS:
            raise ValueError(f"unknown readout {self.readout!r}; known: {READOUTS}")
        P, H, _ = self.W_in.shape
        if self.W_rec.shape != (P, H, H) or self.W_out.shape[::2] != (P, H) or self.b.shape != (P, H):
            raise ValueError(
                f"inconsistent weight shapes: W_in {tuple(self.W_in.shape)}, W_rec "
                f"{tuple(self.W_rec.shape)}, W_out {tuple(self.W_out.shape)}, b {tuple(self.b.shape)}")
        if len(self.clamp_idx) != len(self.clamp_val):
            raise ValueError("clamp_idx and clamp_val differ in length")
        if self.readout == "unit0" and 0 in self.clamp_idx:
            raise ValueError("unit 0 is the output unit and cannot be clamped")

    # ---- shapes --------------------------------------------------------
    @property
    def n_networks(self) -> int:
        return self.W_rec.shape[0]

    @property
    def hidden(self) -> int:
        return self.W_rec.shape[1]

    @property
    def n_inputs(self) -> int:
        return self.W_in.shape[2]

    @property
    def device(self) -> torch.device:
        return self.W_rec.device

    @property
    def dtype(self) -> torch.dtype:
        return self.W_rec.dtype

    # ---- construction -------------------------------------------------
    @staticmethod
    def init(rng: Streams, n_inputs: int, per_stream: int = 1, hidden: int = HIDDEN,
             activation: str = "one_plus_tanh", readout: str = "linear", g: float = 1.0,
             in_scale: float = 0.5, out_scale: float = 0.1, dt: float = DT,
             n_outputs: int = 1) -> "RateRNN":
        """The original's initialisation: W_in ~ 0.5·N(0,1), W_rec ~ (g²/H)·N(0,1)
        (std 0.02 for H = 50, g = 1), W_out ~ 0.1·N(0,1), b = 0.

        Draws ``per_stream`` networks from each stream of ``rng`` (a GA run's
        whole initial population comes from its one seed), so the stack holds
        ``rng.n * per_stream`` networks, those of stream 0 first."""
        k, H, I = per_stream, hidden, n_inputs
        P = rng.n * k
        W_in = in_scale * rng.normal(k, H, I).reshape(P, H, I)
        W_rec = (g * g / H) * rng.normal(k, H, H).reshape(P, H, H)
        W_out = out_scale * rng.normal(k, n_outputs, H).reshape(P, n_outputs, H)
        return RateRNN(W_in, W_rec, W_out, torch.zeros(P, H, device=rng.device),
                       activation, readout, dt)

    def replace(self, **changes) -> "RateRNN":
        return replace(self, **changes)

    def select(self, idx) -> "RateRNN":
        """The networks ``idx`` (an int, a list or an index tensor)."""
        if isinstance(idx, int):
            idx = [idx]
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.device)
        return self.replace(W_in=self.W_in[idx], W_rec=self.W_rec[idx], W_out=self.W_out[idx],
                            b=self.b[idx])

    @staticmethod
    def stack(models: Sequence["RateRNN"]) -> "RateRNN":
        """Concatenate stacks of networks that share activation, readout, dt and clamps."""
        first = models[0]
        for m in models[1:]:
            if (m.activation, m.readout, m.dt, m.clamp_idx, m.clamp_val) != (
                    first.activation, first.readout, first.dt, first.clamp_idx, first.clamp_val):
                raise ValueError("cannot stack networks with different dynamics")
        return first.replace(W_in=torch.cat([m.W_in for m in models]),
                             W_rec=torch.cat([m.W_rec for m in models]),
                             W_out=torch.cat([m.W_out for m in models]),
                             b=torch.cat([m.b for m in models]))

    def to(self, device=None, dtype=None) -> "RateRNN":
        conv = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        return self.replace(W_in=conv(self.W_in), W_rec=conv(self.W_rec),
                            W_out=conv(self.W_out), b=conv(self.b))

    # ---- persistence (one network) ----------------------------------------
    def to_state(self, p: int = 0) -> dict:
        """Plain tensors and numbers for network ``p`` (loadable with weights_only)."""
        return {"W_in": self.W_in[p].detach().cpu().clone(),
                "W_rec": self.W_rec[p].detach().cpu().clone(),
                "W_out": self.W_out[p].detach().cpu().clone(),
                "b": self.b[p].detach().cpu().clone(),
                "activation": self.activation, "readout": self.readout, "dt": float(self.dt),
                "clamp_idx": [int(i) for i in self.clamp_idx],
                "clamp_val": [float(v) for v in self.clamp_val]}

    @staticmethod
    def from_state(s: dict) -> "RateRNN":
        f32 = lambda k: torch.as_tensor(s[k], dtype=torch.float32).unsqueeze(0)  # noqa: E731
        return RateRNN(f32("W_in"), f32("W_rec"), f32("W_out"), f32("b"), str(s["activation"]),
                       str(s["readout"]), float(s["dt"]), tuple(int(i) for i in s["clamp_idx"]),
                       tuple(float(v) for v in s["clamp_val"]))

    # ---- the dynamics -------------------------------------------------------
    def phi(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation == "one_plus_tanh":
            return 1.0 + torch.tanh(x)
        if self.activation == "tanh":
            return torch.tanh(x)
        return torch.relu(x)

    def rates(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x), with clamped units at φ(their value)."""
        if self.clamp_idx:
            x = x.clone()
            x[..., list(self.clamp_idx)] = torch.tensor(self.clamp_val, dtype=x.dtype,
                                                        device=x.device)
        return self.phi(x)

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """Readout z for states x [..., P, n, H] -> [..., P, n] (first output)."""
        if self.readout == "unit0":
            return torch.tanh(x[..., 0])
        src = x if self.readout == "linear" else self.rates(x)
        w = self.W_out[:, 0, :].to(x.dtype)                       # [P, H]
        z = (src * w[:, None, :]).sum(-1)
        return torch.tanh(z) if self.readout == "tanh_rates" else z

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Every output of a linear readout, W_out·x: [..., P, n, H] -> [..., P, n, O]
        (a sequence task's; a decision reads the first, :meth:`output`)."""
        if self.readout != "linear":
            raise ValueError(f"only a linear readout has several outputs, not {self.readout!r}")
        return torch.einsum("...pnh,poh->...pno", x, self.W_out.to(x.dtype))

    def unroll(self, inputs: torch.Tensor, x0: torch.Tensor, keep: str | int | None = None
               ) -> Simulation:
        """:meth:`simulate`'s differentiable twin: the same Euler steps written out
        plainly, so that autograd runs through them (BPTT on a sequence task, whose
        loss reads every step).  No clamped units."""
        if self.clamp_idx:
            raise ValueError("unroll: clamped units are not supported")
        inputs, x0 = fit_inputs(self, inputs, x0)
        W_t, Win_t, b = self.W_rec.transpose(1, 2), self.W_in.transpose(1, 2), self.b[:, None, :]

        def step(x, u):
            return x + self.dt * (torch.bmm(self.phi(x), W_t) + torch.bmm(u, Win_t) + b - x)
        return unrolled(step, inputs, x0.expand(self.n_networks, -1, self.hidden), keep)

    def free_units(self) -> list[int]:
        return [i for i in range(self.hidden) if i not in set(self.clamp_idx)]

    def chunk(self, n: int) -> int:
        """Networks that tasks.flipflop.sequence_mean takes at a time, each chunk
        through all its steps, on ``n`` trials each (CellRNN.chunk's rule, with
        a step's two tensors, the state and its rates, in place of the gates):
        on a CPU as many as keep them within rnn.arch.CHUNK_FLOATS, at least 2;
        on a GPU, all.  The GA's evaluation on the flip-flop (2 runs x 50
        members, 500 trials: 5 at a time) ran 1.4-1.7x faster than with the
        whole population in each window, which :meth:`simulate` cut into runs
        and joined again at every window (bench/results/ga_eval.md, section 3)."""
        import rnn.arch
        if self.device.type != "cpu":
            return self.n_networks
        return max(2, rnn.arch.CHUNK_FLOATS // (2 * max(1, n) * self.hidden))

    def reduced(self) -> "RateRNN":
        """The equivalent network of the free units (clamped units folded into b)."""
        if not self.clamp_idx:
            return self
        free = torch.tensor(self.free_units(), device=self.device)
        cidx = torch.tensor(self.clamp_idx, device=self.device)
        crate = self.phi(torch.tensor(self.clamp_val, dtype=self.dtype, device=self.device))
        b = self.b[:, free] + (self.W_rec[:, free][:, :, cidx] * crate).sum(-1)
        return RateRNN(self.W_in[:, free], self.W_rec[:, free][:, :, free],
                       self.W_out[:, :, free], b, self.activation, self.readout, self.dt)

    def expand_states(self, x_free: torch.Tensor) -> torch.Tensor:
        """Insert the clamped units' values into states of the free units."""
        if not self.clamp_idx:
            return x_free
        out = x_free.new_empty(*x_free.shape[:-1], self.hidden)
        out[..., self.free_units()] = x_free
        out[..., list(self.clamp_idx)] = torch.tensor(self.clamp_val, dtype=x_free.dtype,
                                                      device=x_free.device)
        return out

    def recurrence(self) -> tuple[str, torch.Tensor, torch.Tensor]:
        """The step in a form that is fast to evaluate.

        Returns (mode, M, c) such that W_rec·φ(x) + b = M·g(x) + c, with
        g(x) = σ(2x) for mode 'sigmoid' (1 + tanh x = 2σ(2x), tanh x = 2σ(2x) − 1)
        and g(x) = max(0, x) for mode 'relu'.  M is returned transposed
        ([P, H_in, H_out]) for ``baddbmm``.  σ is an order of magnitude faster
        than tanh on CPUs; the identity is exact (float32 error ≤ 2e-7).
        """
        Wt = self.W_rec.transpose(1, 2)
        if self.activation == "relu":
            return "relu", Wt, self.b
        if self.activation == "one_plus_tanh":
            return "sigmoid", 2.0 * Wt, self.b
        return "sigmoid", 2.0 * Wt, self.b - self.W_rec.sum(-1)

    @torch.no_grad()
    def simulate(self, inputs: torch.Tensor, x0: torch.Tensor, keep: str | int | None = None,
                 rate_buffer: torch.Tensor | None = None) -> Simulation:
        """Run the networks for T steps.

        inputs [T, n, I] (shared by all networks), [T, P, n, I] (one sequence
        per network) or [T, S, n, I] with S dividing P (networks are blocks of
        P/S consecutive networks sharing a sequence: a GA run's population).
        x0 [P, n, H], [S, n, H] (per block) or [n, H] (shared).
        ``keep``: None (only first and last states), 'all', or an int k
        (every k-th state, always including the last).
        ``rate_buffer`` [P, T, n, H]: if given, g(x_{t-1}) of step t (see
        :meth:`recurrence`) is stored in ``rate_buffer[:, t-1]`` (for BPTT).
        """
        if self.clamp_idx and rate_buffer is not None:
            raise ValueError("rate_buffer is not available for clamped networks")
        if self.clamp_idx:
            red = self.reduced()
            sim = red.simulate(inputs, x0[..., self.free_units()], keep)
            st = None if sim.states is None else self.expand_states(sim.states)
            return Simulation(self.expand_states(sim.x_first), self.expand_states(sim.x_last),
                              st, sim.steps)
        inputs, x0 = self._fit_inputs(inputs, x0)
        P, H = self.n_networks, self.hidden
        T, S, n, _ = inputs.shape
        block = P // S
        # the states kept (and a few working copies) must fit: refused in one line
        kept = 2 if keep is None else (T if keep == "all" else -(-T // int(keep)))
        require_floats((kept + 6) * P * n * H, f"simulating {n} trials of {T} steps for {P} "
                       f"network(s) of {H} units", self.device)
        per_chunk = max(1, _CPU_CHUNK_FLOATS // (max(1, n) * H) // block) * block
        if self.device.type == "cpu" and rate_buffer is None and P > per_chunk:
            return self._simulate_in_groups(inputs, x0, keep, per_chunk)
        return self._integrate(inputs, x0.expand(P, n, H), keep, rate_buffer)

    def _fit_inputs(self, inputs: torch.Tensor, x0: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        return fit_inputs(self, inputs, x0)

    def _simulate_in_groups(self, inputs, x0, keep, per_chunk: int) -> Simulation:
        """On a CPU, a large stack runs faster in cache-sized groups of networks
        (whole blocks: ``per_chunk`` is a multiple of the block)."""
        P, S = self.n_networks, inputs.shape[1]
        x0 = x0.expand(P, *x0.shape[1:])
        return Simulation.cat([self.select(list(range(a, e))).simulate(
            inputs[:, j0:j1], x0[a:e], keep) for a, e, j0, j1 in network_chunks(P, S, per_chunk)])

    def _integrate(self, inputs: torch.Tensor, x0: torch.Tensor, keep,
                   rate_buffer: torch.Tensor | None) -> Simulation:
        """The Euler steps themselves: inputs [T, S, n, I], x0 [P, n, H]."""
        P, dt, I = self.n_networks, self.dt, self.n_inputs
        T, S, n, _ = inputs.shape
        mode, M, c = self.recurrence()
        # sigmoid modes carry y = 2x, so that g = σ(y) needs no pass of its own:
        # scaling by 2 commutes with every rounding, so y/2 is x bit for bit
        # (tests/test_model.py; bench/bench_floor.py measures the gain)
        scale = 2.0 if mode == "sigmoid" else 1.0
        x = x0.mul(scale)
        # x ← (1−dt)·x + dt·g(x)·M + dt·[u_t, 1]·[W_inᵀ; c]: two batched products
        # per step, no precomputed input drive.  Networks are blocks of P/S
        # sharing input sequence s (a GA run's members share its batch).
        Min = torch.cat([self.W_in.transpose(1, 2), c[:, None, :]], dim=1)    # [P, I+1, H]
        a = dt * scale
        U = torch.empty(P, n, I + 1, device=self.device, dtype=self.dtype)
        U[..., I] = 1.0
        u_slot = U.view(S, P // S, n, I + 1)[..., :I]
        g_own = torch.empty_like(x)
        stride = None if keep is None else (1 if keep == "all" else int(keep))
        kept_steps = [] if stride is None else [t for t in range(1, T + 1)
                                                if t % stride == 0 or t == T]
        states = None if stride is None else x.new_empty(len(kept_steps), P, n, x.shape[-1])
        k = 0
        x_first = None
        for t in range(T):
            g = g_own if rate_buffer is None else rate_buffer[:, t]
            if mode == "sigmoid":
                torch.sigmoid(x, out=g)
            else:
                torch.clamp_min(x, 0.0, out=g)
            u_slot.copy_(inputs[t].unsqueeze(1))
            x.baddbmm_(g, M, beta=1.0 - dt, alpha=a)
            x.baddbmm_(U, Min, alpha=a)
            if t == 0:
                x_first = x.mul(1.0 / scale)
            if stride is not None and k < len(kept_steps) and kept_steps[k] == t + 1:
                torch.mul(x, 1.0 / scale, out=states[k])
                k += 1
        steps = None if stride is None else torch.tensor(kept_steps)
        return Simulation(x_first, x.mul_(1.0 / scale), states, steps)


def fit_inputs(model, inputs: torch.Tensor, x0: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """inputs as [T, S, n, I] (S dividing P, the networks of ``model``), x0 as
    [1 or P, n, H] on the networks' device and dtype; a shape that does not fit
    is a ValueError.  Shared by every architecture (rnn.arch)."""
    P = model.n_networks
    if inputs.dim() == 3:
        inputs = inputs.unsqueeze(1)
    S = inputs.shape[1]           # input sequences: 1 (shared), P, or one per block
    if S == 0 or P % S or inputs.shape[-1] != model.n_inputs:
        raise ValueError(f"inputs of shape {tuple(inputs.shape)} do not fit {P} networks "
                         f"with {model.n_inputs} inputs; expected [T, n, I] or [T, S, n, I] "
                         f"with S dividing {P}")
    if x0.dim() == 2:
        x0 = x0.unsqueeze(0)
    x0 = x0.to(device=model.device, dtype=model.dtype)
    if x0.shape[0] not in (1, P):
        x0 = x0.repeat_interleave(P // x0.shape[0], dim=0)
    return inputs, x0


def spans(total: int, most: int) -> list[tuple[int, int]]:
    """[0, total) cut into the fewest consecutive spans of at most ``most`` items
    (``most`` >= 1), their lengths differing by at most one."""
    k = -(-total // max(1, most))
    q, r = divmod(total, k)
    out, s = [], 0
    for i in range(k):
        e = s + q + (i < r)
        out.append((s, e))
        s = e
    return out


def network_chunks(P: int, S: int, most: int) -> list[tuple[int, int, int, int]]:
    """P networks of which each block of P // S consecutive ones shares one of S
    input sequences, cut into chunks of at most ``most`` networks (at least one),
    each inside one block or made of whole blocks, so that a chunk reads a slice
    of the sequences: (first network, end, first sequence, end) of each chunk,
    in order, as even in size as they can be."""
    B = P // S
    if B >= most:
        return [(j * B + a, j * B + b, j, j + 1) for j in range(S) for a, b in spans(B, most)]
    return [(a * B, b * B, a, b) for a, b in spans(S, max(1, most // B))]


def unrolled(step, inputs: torch.Tensor, x: torch.Tensor, keep: str | int | None
             ) -> Simulation:
    """The steps x_t = step(x_{t−1}, u_t) of P networks written out plainly, so that
    autograd runs through them: inputs [T, S, n, I] (S dividing P), x [P, n, S'];
    ``keep`` as :meth:`RateRNN.simulate`.  RateRNN.unroll's loop and every
    discrete-time architecture's (rnn.arch)."""
    P, n = x.shape[0], x.shape[1]
    T, S, _, I = inputs.shape
    stride = None if keep is None else (1 if keep == "all" else int(keep))
    states, steps, x_first = [], [], None
    for t in range(T):
        u = inputs[t]
        x = step(x, u.expand(P, n, I) if S == 1 else u.repeat_interleave(P // S, dim=0))
        if t == 0:
            x_first = x
        if stride is not None and ((t + 1) % stride == 0 or t + 1 == T):
            states.append(x)
            steps.append(t + 1)
    return Simulation(x_first, x, torch.stack(states) if states else None,
                      torch.tensor(steps) if states else None)


def accuracy(model: RateRNN, inputs: torch.Tensor, x0: torch.Tensor,
             targets: torch.Tensor, always_correct: torch.Tensor | None = None) -> torch.Tensor:
    """Fraction of trials with sign(z_T) equal to the target, per network [P];
    trials marked in ``always_correct`` [P, n] count as correct whatever the
    output (the original's strength-0 validation trials)."""
    sim = model.simulate(inputs, x0)
    z = model.output(sim.x_last)
    ok = torch.sign(z) == targets.to(z.dtype)
    if always_correct is not None:
        ok |= always_correct.to(ok.device)
    return ok.to(torch.float64).mean(-1)


def trial_loss(model: RateRNN, sim: Simulation, targets: torch.Tensor) -> torch.Tensor:
    """(z_T − target)² + (z_1 − 0)², averaged over trials, per network [P]."""
    zT = model.output(sim.x_last)
    z1 = model.output(sim.x_first)
    return ((zT - targets.to(zT.dtype)) ** 2 + z1 ** 2).mean(-1)
