"""full-FORCE (DePasquale, Cueva, Rajan, Escola & Abbott 2018).

A target-generating ("teacher") network of the same size, with random
recurrence J_D ~ (g/√H)·N(0, 1), g = 1, receives the task input through the
learner's own input weights plus the trial's target y = ±1 through two random
vectors (the target input u_out and the hint u_hint, both carrying the
constant y).  The learner (tanh rates, output z = tanh(W_out·tanh x)) starts
from W_rec = 0, W_out = 0 and is trained online by recursive least squares so
that

    W_rec·r(t) ≈ J_D·r_D(t) + (u_out + u_hint)·y      (the teacher's currents)
    W_out·r(t) ≈ f(t),   f = 0 at step 0, f = y from step 200 on

with one shared inverse-correlation matrix P (P₀ = I/α, α = 50,000 for RDM,
10,000 for CDI/N-CDI).  Updates happen at step 0 and at every step from 200
on; one trial per update round.  W_out is fitted to the target before the
output tanh (atanh(±1) is infinite); the tanh leaves the sign, and so the
decision, unchanged.  After 5,000 trials without meeting the stop rule, the
learner and the teacher restart from new random weights; attempts are
counted.

RLS runs in float64.  Several networks (one RLS state each) run as a batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rnn.model import RateRNN
from rnn.protocol import CLEAN, Protocol
from rnn.rng import TEACHER, TRAIN, WEIGHTS, Streams
from rnn.training import Trainer
from tasks import DecisionTask


@dataclass(frozen=True)
class FFConfig:
    alpha: float = 10000.0           # RLS regulariser, P0 = I/alpha (spec: 50,000 RDM, 10,000 CDI)
    teacher_g: float = 1.0           # teacher recurrence J_D ~ (g/sqrt(H))·N(0, 1)
    target_scale: float = 0.5        # target and hint input vectors ~ target_scale·N(0, 1)
                                     # (the original's input-weight scale)
    update_from: int = 200           # RLS updates at step 0 and at every step from this one
    trials_per_attempt: int = 5000   # restart from scratch after this many trials
    max_steps: int = 25000           # budget of trials over all attempts (5 attempts)

    @staticmethod
    def for_task(task: DecisionTask) -> "FFConfig":
        return FFConfig(alpha=10000.0 if task.cued else 50000.0)


class FFTrainer(Trainer):
    rule = "ff"
    trainable = ("W_rec", "W_out")

    def __init__(self, cfg: FFConfig, task: DecisionTask, seeds: list[int], device,
                 activation: str = "tanh", protocol: Protocol = CLEAN):
        self.cfg, self.task = cfg, task
        self.device = torch.device(device)
        self.activation = activation
        self.n = len(seeds)
        self.w_rng = Streams(seeds, WEIGHTS, device)
        self.t_rng = Streams(seeds, TEACHER, device)
        self.data = Streams(seeds, TRAIN, device)
        self.attempts = [1] * self.n
        self.trials_in_attempt = [0] * self.n
        self._restarted: list[int] = []
        self.protocol = protocol
        self.model = RateRNN.init(self.w_rng, task.n_inputs, hidden=protocol.hidden,
                                  activation=activation, readout="tanh_rates")
        self.model = self.model.replace(W_rec=torch.zeros_like(self.model.W_rec),
                                        W_out=torch.zeros_like(self.model.W_out))
        H = self.model.hidden
        self.J_D = torch.empty(self.n, H, H, device=self.device)
        self.u_y = torch.empty(self.n, H, device=self.device)
        self.P = torch.empty(self.n, H, H, device=self.device, dtype=torch.float64)
        self._new_teacher(torch.arange(self.n, device=self.device))

    # ---- (re)initialisation -----------------------------------------------
    def _new_teacher(self, idx: torch.Tensor) -> None:
        """Draw teacher weights and reset the RLS state for networks ``idx``."""
        H = self.model.hidden
        rng = self.t_rng.subset(idx.tolist())
        J = (self.cfg.teacher_g / math.sqrt(H)) * rng.normal(H, H)
        u = self.cfg.target_scale * (rng.normal(H) + rng.normal(H))   # u_out + u_hint
        self.t_rng.counter = rng.counter
        self.J_D[idx] = J.to(self.device)
        self.u_y[idx] = u.to(self.device)
        eye = torch.eye(H, dtype=torch.float64, device=self.device)
        self.P[idx] = eye / self.cfg.alpha

    def _restart(self, idx: torch.Tensor) -> None:
        rng = self.w_rng.subset(idx.tolist())
        fresh = RateRNN.init(rng, self.task.n_inputs, hidden=self.protocol.hidden,
                             activation=self.activation, readout="tanh_rates")
        self.w_rng.counter = rng.counter
        W_in = self.model.W_in.clone()
        W_in[idx] = fresh.W_in
        W_rec = self.model.W_rec.clone()
        W_rec[idx] = 0.0
        W_out = self.model.W_out.clone()
        W_out[idx] = 0.0
        self.model = self.model.replace(W_in=W_in, W_rec=W_rec, W_out=W_out)
        self._new_teacher(idx)

    def pop_restarts(self) -> list[int]:
        out, self._restarted = self._restarted, []
        return out

    # ---- one trial ------------------------------------------------------------
    def teacher_targets(self, idx: torch.Tensor, inputs: torch.Tensor, x0: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
        """The teacher's recurrent currents J_D·r_D(t) + (u_out + u_hint)·y for
        t = 0..T-1, shape [T, Pa, n, H] (float64)."""
        m = self.model.select(idx)
        Pa = m.n_networks
        teacher = RateRNN(torch.cat([m.W_in, self.u_y[idx][:, :, None]], dim=2), self.J_D[idx],
                          m.W_out, m.b, m.activation, m.readout, m.dt)
        T, _, n, _ = inputs.shape
        y_in = y[None, :, :, None].to(inputs.dtype).expand(T, Pa, n, 1)
        sim = teacher.simulate(torch.cat([inputs, y_in], dim=-1), x0, keep="all")
        xD = torch.cat([x0[None].to(sim.states.dtype), sim.states[:-1]], dim=0)   # x_D(0..T-1)
        rD = teacher.phi(xD).to(torch.float64)
        cur = torch.matmul(rD, self.J_D[idx].transpose(1, 2)[None].to(torch.float64))
        return cur + (self.u_y[idx].to(torch.float64)[None, :, None, :] *
                      y.to(torch.float64)[None, :, :, None])

    def train_trial(self, idx: torch.Tensor, inputs, x0, y) -> torch.Tensor:
        """One trial of online RLS for networks ``idx``; one trial per network
        (n = 1).  Returns the mean squared output error before each update."""
        cfg = self.cfg
        m = self.model.select(idx)
        dt = m.dt
        f64 = torch.float64
        target_rec = self.teacher_targets(idx, inputs, x0, y)[:, :, 0]       # [T, Pa, H]
        W = m.W_rec.to(f64)                       # [Pa, H, H]
        Wo = m.W_out[:, 0].to(f64)                # [Pa, H]
        Win = m.W_in.to(f64)
        Pm = self.P[idx].clone()
        x = x0[:, 0].to(f64).clone()              # [Pa, H]
        yv = y[:, 0].to(f64)                      # [Pa]
        u = inputs[:, :, 0].to(f64)               # [T, Pa, I]
        drive = torch.einsum("tpi,phi->tph", u, Win) + m.b.to(f64)[None]
        err_sum = torch.zeros_like(yv)
        n_upd = 0
        T = inputs.shape[0]
        for t in range(T):
            r = m.phi(x)
            if t == 0 or t >= cfg.update_from:
                f = torch.zeros_like(yv) if t == 0 else yv
                Pr = torch.bmm(Pm, r[:, :, None])[:, :, 0]               # [Pa, H]
                k = Pr / (1.0 + (r * Pr).sum(-1, keepdim=True))          # gain
                Pm.sub_(k[:, :, None] * Pr[:, None, :])
                e_rec = torch.bmm(W, r[:, :, None])[:, :, 0] - target_rec[t]   # [Pa, H]
                e_out = (Wo * r).sum(-1) - f                              # [Pa]
                W.sub_(e_rec[:, :, None] * k[:, None, :])
                Wo.sub_(e_out[:, None] * k)
                err_sum += e_out ** 2
                n_upd += 1
            x = x + dt * (-x + torch.bmm(W, r[:, :, None])[:, :, 0] + drive[t])
        self.P[idx] = Pm
        W_rec = self.model.W_rec.clone()
        W_rec[idx] = W.to(W_rec.dtype)
        W_out = self.model.W_out.clone()
        W_out[idx] = Wo[:, None, :].to(W_out.dtype)
        self.model = self.model.replace(W_rec=W_rec, W_out=W_out)
        return err_sum / n_upd

    def step(self, active: torch.Tensor) -> torch.Tensor:
        act = active.tolist()
        due = [p for p in act if self.trials_in_attempt[p] >= self.cfg.trials_per_attempt]
        if due:
            self._restart(torch.tensor(due, device=self.device))
            for p in due:
                self.attempts[p] += 1
                self.trials_in_attempt[p] = 0
            self._restarted += due
        trials, x0 = self.draw_batch(act, 1, self.model.hidden)
        loss = self.train_trial(active, trials.inputs.to(self.device), x0.to(self.device),
                                trials.targets.to(self.device))
        for p in act:
            self.trials_in_attempt[p] += 1
        return loss

    def extra_meta(self, p: int) -> dict:
        return {"full_force": {"attempts": self.attempts[p],
                               "trials_in_last_attempt": self.trials_in_attempt[p]}}
