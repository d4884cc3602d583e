"""e-prop (Bellec et al. 2020, Nature Communications 11:3625) for this tool's rate network.

The network (rnn/model.py), for one trial, with r = φ(x) and a linear readout:

    x_t = (1 − dt)·x_{t−1} + dt·(W r_{t−1} + W_in u_t + b),    t = 1 … T
    z_t = w · x_t                     (w = W_out, one output)
    ℓ   = (z_T − y)² + z_1²           (the loss of every gradient rule here)

**The exact gradient.**  ℓ reads the states only at steps 1 and T, so
dℓ/dW_ij = Σ_{t ∈ {1, T}} (∂ℓ/∂x_{i,t}) · dx_{i,t}/dW_ij, where the total
derivative d_t = dx_t/dW_ij obeys

    d_t = (1 − dt)·d_{t−1} + dt·(e_i r_{j,t−1} + W diag φ'(x_{t−1}) d_{t−1}).

BPTT (rnn/rules/bptt.py) keeps all of it.

**The eligibility trace.**  e-prop and RFLO drop the last term -- the effect
of the synapse on unit i that returns through the other units' (and unit
i's own) rates -- and keep the synapse's direct effect on its unit, which
leaks with the unit's time constant:

    ε_{ij,t} = (1 − dt)·ε_{ij,t−1} + dt·r_{j,t−1},    ε_{ij,0} = 0.

For this network the trace does not depend on the postsynaptic unit i (its
readout reads x, not φ(x), so no φ'(x_i) factor appears, unlike Murray's
network where the readout reads the rates): it is the presynaptic rate
filtered at the unit's leak, ε_t = dt·Σ_{s=1}^{t} (1 − dt)^{t−s} r_{s−1}.
The loss needs it at t = 1 (ε_1 = dt·r_0) and t = T.

**The learning signal.**  L_{i,t} = ∂ℓ/∂x_{i,t} with the readout weights
replaced by a feedback vector f: L_T = 2(z_T − y)·f, L_1 = 2 z_1·f.  e-prop
(symmetric) uses f = w, the current readout; RFLO (rnn/rules/rflo.py, and
"random e-prop") uses a fixed random f = B.

**The update.**  Averaged over the batch's n trials,

    Ĝ_rec = f ⊗ v,   v = mean_trials( 2(z_T − y)·ε_T + 2 z_1·ε_1 )
    G_out = mean_trials( 2(z_T − y)·x_T + 2 z_1·x_1 )        (exact, and local)

so the estimate of W_rec's gradient is rank one, f vᵀ (Adam's elementwise
scaling makes the step itself full rank).  With W_rec = 0 the dropped term
vanishes and Ĝ_rec (with f = w) is the exact gradient; tests/test_eprop.py
checks that against autograd and the traces against their recursion.

**What learns, and how.**  W_rec and W_out (``train_readout``), by BPTT's
optimiser, learning rate and batch (Adam, 5e-4, 500 trials; the same
initial weights and training batches as a BPTT network of the same seed),
so that beside BPTT the gradient of W_rec is what differs.  The readout
learns because random feedback needs it: RFLO learns by feedback alignment,
W_out turning towards B; with W_out fixed, an RFLO update moves the output
in the direction of the sign of B·W_out, which for half the seeds is
uphill.  Both papers train the readout by this same local rule.  W_in and
b stay fixed, as in BPTT.

**Computing the traces.**  The forward pass keeps each step's rate (as
BPTT's does), and ε_T is their sum weighted by (1 − dt)^{T−t}: one product
instead of T in-place updates of a running trace, the same numbers up to
rounding.  A network trained online would run the recursion; the traces
and the update are the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rnn.rules.bptt import BPTTConfig, BPTTTrainer
from rnn.model import RateRNN
from rnn.protocol import CLEAN, Protocol
from tasks import DecisionTask


@dataclass(frozen=True)
class EpropConfig(BPTTConfig):
    max_steps: int = 5000        # budget of training steps
    train_readout: bool = True   # W_out learns by its (local, exact) gradient


# φ(x) = a·g(x) + c, with g the stored rate of rnn.model.RateRNN.recurrence
_FROM_G = {"one_plus_tanh": (2.0, 0.0), "tanh": (2.0, -1.0), "relu": (1.0, 0.0)}


@dataclass(frozen=True)
class Traces:
    """Eligibility traces (presynaptic, [P, n, H]) and states at steps 1 and T."""
    eps_first: torch.Tensor
    eps_last: torch.Tensor
    x_first: torch.Tensor
    x_last: torch.Tensor


def traces(model: RateRNN, inputs: torch.Tensor, x0: torch.Tensor) -> Traces:
    """Run the networks and return ε_1, ε_T (see the module doc) and x_1, x_T.

    inputs [T, P, n, I] (or [T, n, I]); x0 [P, n, H]."""
    if model.clamp_idx:
        raise ValueError("e-prop does not support clamped units")
    P, H, dt = model.n_networks, model.hidden, model.dt
    T, n = inputs.shape[0], inputs.shape[-2]
    G = torch.empty(P, T, n, H, device=model.device, dtype=model.dtype)
    sim = model.simulate(inputs, x0, rate_buffer=G)        # G[:, t-1] = g(x_{t-1})
    a, c = _FROM_G[model.activation]
    decay = (1.0 - dt) ** torch.arange(T - 1, -1, -1, device=model.device, dtype=torch.float64)
    S = torch.matmul(decay.to(model.dtype), G.view(P, T, n * H)).view(P, n, H)
    eps_last = S.mul_(dt * a).add_(dt * c * float(decay.sum()))
    eps_first = G[:, 0].mul(dt * a).add_(dt * c)
    return Traces(eps_first, eps_last, sim.x_first, sim.x_last)


def loss_and_updates(model: RateRNN, inputs: torch.Tensor, x0: torch.Tensor,
                     targets: torch.Tensor, feedback: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss [P], the eligibility-trace estimate of dℓ/dW_rec [P, H, H] and the
    gradient dℓ/dW_out [P, 1, H], both averaged over trials; ``feedback`` [P, H]."""
    if model.readout != "linear":
        raise ValueError("e-prop here needs the linear readout")
    tr = traces(model, inputs, x0)
    y = targets.to(model.dtype)
    zT, z1 = model.output(tr.x_last), model.output(tr.x_first)          # [P, n]
    n = zT.shape[-1]
    cT = (2.0 / n) * (zT - y)
    c1 = (2.0 / n) * z1
    v = (torch.bmm(cT[:, None], tr.eps_last) + torch.bmm(c1[:, None], tr.eps_first))[:, 0]
    g_rec = feedback[:, :, None] * v[:, None, :]
    g_out = torch.bmm(cT[:, None], tr.x_last) + torch.bmm(c1[:, None], tr.x_first)
    loss = ((zT - y) ** 2 + z1 ** 2).mean(-1)
    return loss, g_rec, g_out


class EpropTrainer(BPTTTrainer):
    """BPTT's optimiser and batches, the gradient of W_rec by eligibility traces."""
    rule = "eprop"

    def __init__(self, cfg: EpropConfig, task: DecisionTask, seeds: list[int], device,
                 activation: str = "one_plus_tanh", protocol: Protocol = CLEAN):
        self.trainable = ("W_rec", "W_out") if cfg.train_readout else ("W_rec",)
        super().__init__(cfg, task, seeds, device, activation, protocol)

    def feedback(self, sub: RateRNN, active: torch.Tensor) -> torch.Tensor:
        """The vector f [len(active), H] that carries the output error to the units."""
        return sub.W_out[:, 0, :]

    def gradients(self, sub, active, inputs, x0, targets):
        f = self.feedback(sub, active)
        loss, g_rec, g_out = loss_and_updates(sub, inputs, x0, targets, f)
        grads = {"W_rec": g_rec}
        if "W_out" in self.trainable:
            grads["W_out"] = g_out
        return loss, grads
