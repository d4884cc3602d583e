"""Backpropagation through time: Adam on W_rec only (the rate network), on
every weight (the discrete-time architectures of rnn.arch, by autograd).

The gradient is computed by a hand-written backward pass over the 750 steps
(one forward that stores the rates, one reverse sweep, one large matrix
product for dL/dW_rec), which is several times faster on a CPU than autograd
over 750 small steps.  ``tests/test_bptt.py`` checks it against autograd.

Each of the P networks draws its own batch from its own seed and keeps its own
Adam state and step count, so a network trained inside a population follows
exactly the path it would follow alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rnn.arch import PARAMS, CellRNN, flush_denormals, init_network
from rnn.model import RateRNN, trial_loss
from rnn.protocol import CLEAN, Protocol
from rnn.rng import TRAIN, WEIGHTS, Streams
from rnn.training import Trainer
from tasks import DecisionTask

_BLOCK = 50   # backward steps per gradient-accumulation block
# The gradients by autograd (the discrete-time architectures, and every network on a
# sequence task) are clipped to this norm per network, the usual guard of gated and
# vanilla RNNs against exploding gradients: without it a GRU on CDI that had reached
# 0.90 validation accuracy at step 359 jumped back to chance (loss 0.29 -> 1.12) by
# step 384.  The rate network's hand-written BPTT on the decision tasks is not
# clipped (the paper's).
CLIP_NORM = 1.0


@dataclass(frozen=True)
class BPTTConfig:
    batch: int = 500             # trials per training step
    lr: float = 5e-4             # Adam learning rate (W_rec only)
    beta1: float = 0.9           # Adam first-moment decay (torch default)
    beta2: float = 0.999         # Adam second-moment decay (torch default)
    eps: float = 1e-8            # Adam epsilon (torch default)
    max_steps: int = 20000       # budget of training steps


def loss_and_grad(model: RateRNN, inputs: torch.Tensor, x0: torch.Tensor,
                  targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss (z_T − y)² + z_1², mean over trials, and its gradient w.r.t. W_rec.

    inputs [T, P, n, I] (or [T, n, I]); x0 [P, n, H]; targets [P, n].
    Returns loss [P] and dL/dW_rec [P, H, H].  No clamped units.
    """
    if model.clamp_idx:
        raise ValueError("BPTT does not support clamped units")
    P, H, dt = model.n_networks, model.hidden, model.dt
    dev, dtype = model.device, model.dtype
    T, n = inputs.shape[0], inputs.shape[-2]
    mode, M, _ = model.recurrence()

    # forward, storing g(x_{t-1}) for t = 1..T
    G = torch.empty(P, T, n, H, device=dev, dtype=dtype)
    sim = model.simulate(inputs, x0, rate_buffer=G)
    x, x_first = sim.x_last, sim.x_first

    # loss and its gradient at x_1 and x_T (readouts are cheap: use autograd)
    xT = x.detach().requires_grad_(True)
    x1 = x_first.detach().requires_grad_(True)
    with torch.enable_grad():
        zT = model.output(xT)
        z1 = model.output(x1)
        per = ((zT - targets.to(dtype)) ** 2 + z1 ** 2).mean(-1)     # [P]
        gT, g1 = torch.autograd.grad(per.sum(), (xT, x1))

    # backward sweep
    with torch.no_grad():
        gradM = torch.zeros(P, H, H, device=dev, dtype=dtype)
        delta_sum = torch.zeros(P, H, device=dev, dtype=dtype)   # Σ_t Σ_n delta_t
        Mt = M.transpose(1, 2)
        D = torch.empty(P, min(_BLOCK, T), n, H, device=dev, dtype=dtype)
        delta = gT.clone()
        tmp = torch.empty_like(delta)
        deriv = torch.empty_like(delta)
        hi = T          # the block covers steps (lo, hi]; D[:, t - lo - 1] holds delta_t
        lo = max(0, hi - _BLOCK)
        for t in range(T, 0, -1):
            D[:, t - lo - 1] = delta
            if t - 1 == lo:
                k = hi - lo
                Gb = G[:, lo:hi].reshape(P, k * n, H)
                Db = D[:, :k].reshape(P, k * n, H)
                gradM.baddbmm_(Gb.transpose(1, 2), Db)
                delta_sum.add_(Db.sum(1))
                hi, lo = lo, max(0, lo - _BLOCK)
            if t == 1:
                break
            # delta_{t-1} = (1-dt) delta_t + dt (delta_t M^T) * g'(x_{t-1}) [+ g1 at t-1 = 1]
            s = G[:, t - 1]
            torch.bmm(delta, Mt, out=tmp)
            delta.mul_(1.0 - dt)
            if mode == "sigmoid":              # g = σ(2x): g' = 2 (g − g²)
                torch.addcmul(s, s, s, value=-1.0, out=deriv)
                delta.addcmul_(tmp, deriv, value=2.0 * dt)
            else:                              # relu: g' = [g > 0]
                torch.gt(s, 0, out=deriv)
                delta.addcmul_(tmp, deriv, value=dt)
            if t - 1 == 1:
                delta.add_(g1)
        # dL/dM = dt Σ_t g_{t-1}^T delta_t, with M = 2 W^T (sigmoid modes) or W^T (relu)
        gradW = gradM.transpose(1, 2).mul(dt * (2.0 if mode == "sigmoid" else 1.0))
        if model.activation == "tanh":          # c = b − W·1 depends on W too
            gradW.sub_(dt * delta_sum[:, :, None])
    return per.detach(), gradW.contiguous()


def cell_loss_and_grads(model: CellRNN, inputs: torch.Tensor, x0: torch.Tensor,
                            targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of :func:`loss_and_grad` and its gradient with respect to every
    weight of a discrete-time network (rnn.arch), by autograd through the T steps.
    The P networks are independent, so the gradient of the summed loss is each
    network's own."""
    leaves = {k: v.detach().requires_grad_(True) for k, v in model.tensors().items()}
    net = model.replace(**leaves)
    with torch.enable_grad(), flush_denormals():
        per = trial_loss(net, net.simulate(inputs, x0), targets)
        grads = torch.autograd.grad(per.sum(), list(leaves.values()))
    return per.detach(), dict(zip(leaves, grads))


def sequence_loss_and_grads(model, trainable: tuple[str, ...], task, inputs: torch.Tensor,
                            x0: torch.Tensor, trials) -> tuple[torch.Tensor, dict]:
    """A sequence task's loss (every step has a target: tasks.flipflop) and its
    gradient with respect to the ``trainable`` weights, by autograd through the
    steps (``unroll``) of any architecture."""
    leaves = {k: getattr(model, k).detach().requires_grad_(True) for k in trainable}
    net = model.replace(**leaves)
    with torch.enable_grad(), flush_denormals():
        per = task.loss(net, net.unroll(inputs, x0, keep=task.keep), trials)
        grads = torch.autograd.grad(per.sum(), list(leaves.values()))
    return per.detach(), dict(zip(leaves, grads))


def clip_per_network(grads: dict[str, torch.Tensor], max_norm: float) -> dict:
    """Each network's gradients (every tensor together, network axis first) scaled
    down to norm ``max_norm`` where larger."""
    sq = sum(g.flatten(1).pow(2).sum(1) for g in grads.values())
    scale = (max_norm / sq.sqrt().clamp_min(1e-12)).clamp(max=1.0)
    return {k: g * scale.view(-1, *([1] * (g.dim() - 1))).to(g.dtype) for k, g in grads.items()}


class BatchedAdam:
    """Adam (torch's formula) with one state and step count per network."""

    def __init__(self, like: torch.Tensor, cfg: BPTTConfig):
        self.cfg = cfg
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)
        self.t = torch.zeros(like.shape[0], dtype=torch.long)

    def update(self, param: torch.Tensor, grad: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """New values of ``param[idx]`` after one step with ``grad`` (for idx)."""
        c = self.cfg
        ic = idx.cpu()
        self.t[ic] += 1
        t = self.t[ic].to(param.dtype)
        m = self.m[idx].mul_(c.beta1).add_(grad, alpha=1 - c.beta1)
        v = self.v[idx].mul_(c.beta2).addcmul_(grad, grad, value=1 - c.beta2)
        self.m[idx] = m
        self.v[idx] = v
        shape = (-1,) + (1,) * (param.dim() - 1)
        bc1 = (1 - c.beta1 ** t).view(shape).to(param.device)
        bc2 = (1 - c.beta2 ** t).view(shape).to(param.device)
        denom = (v.sqrt() / bc2.sqrt()).add_(c.eps)
        return param[idx] - (c.lr / bc1) * m / denom


class BPTTTrainer(Trainer):
    """Adam on the ``trainable`` weights of P networks, each from its own batch.

    Subclasses that estimate the gradient another way (rnn/rules/eprop.py) replace
    :meth:`gradients` and ``trainable``; the batch, the initial states and
    the optimiser stay BPTT's."""
    rule = "bptt"
    trainable = ("W_rec",)

    def __init__(self, cfg: BPTTConfig, task: DecisionTask, seeds: list[int], device,
                 activation: str = "one_plus_tanh", protocol: Protocol = CLEAN,
                 arch: str = "rate"):
        self.cfg = cfg
        self.task = task
        self.protocol = protocol
        self.weights_rng = Streams(seeds, WEIGHTS, device)
        self.model = init_network(arch, self.weights_rng, task.n_inputs, hidden=protocol.hidden,
                                  activation=activation, readout="linear",
                                  n_outputs=getattr(task, "n_outputs", 1))
        if arch != "rate":
            # a discrete-time architecture: every weight, its gradient by autograd
            self.trainable = PARAMS
        self.clip = CLIP_NORM if arch != "rate" or getattr(task, "sequence", False) else None
        self.data = Streams(seeds, TRAIN, device)
        self.adam = {k: BatchedAdam(getattr(self.model, k), cfg) for k in self.trainable}

    def gradients(self, sub: RateRNN, active: torch.Tensor, inputs: torch.Tensor,
                  x0: torch.Tensor, targets: torch.Tensor
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and the gradient of each trainable weight of the networks ``sub``
        (networks ``active`` of the stack)."""
        if getattr(self.task, "sequence", False):     # targets: the SequenceTrials
            return sequence_loss_and_grads(sub, self.trainable, self.task, inputs, x0, targets)
        if isinstance(sub, CellRNN):
            return cell_loss_and_grads(sub, inputs, x0, targets)
        loss, grad = loss_and_grad(sub, inputs, x0, targets)
        return loss, {"W_rec": grad}

    def step(self, active: torch.Tensor) -> torch.Tensor:
        trials, x0 = self.draw_batch(active, self.cfg.batch, self.model.hidden)
        sub = self.model.select(active)
        seq = getattr(self.task, "sequence", False)
        loss, grads = self.gradients(sub, active, trials.inputs, x0,
                                     trials if seq else trials.targets)
        if self.clip is not None:
            grads = clip_per_network(grads, self.clip)
        new = {}
        for k, g in grads.items():
            W = getattr(self.model, k).clone()
            W[active] = self.adam[k].update(getattr(self.model, k), g, active)
            new[k] = W
        self.model = self.model.replace(**new)
        return loss

    def extra_meta(self, p: int) -> dict:
        out = {"adam_steps": int(self.adam[self.trainable[0]].t[p])}
        if getattr(self, "clip", None) is not None:
            out["gradient_clip_norm"] = self.clip
        return out
