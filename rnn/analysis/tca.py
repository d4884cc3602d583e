"""A compact record of hidden activity during training, for tensor component
analysis (TCA; Williams et al. 2018, tensortools' ``cp_als``).

Every ``every`` updates, each network's current weights are run on a fixed
set of probe trials (4 per context: strong and weak evidence of each sign,
noise as in training, drawn once from the network's seed) and the rates of
every 10th time step are kept, as float16.  When more than ``max_records``
records pile up, every other one is dropped and the interval doubles, so the
record spans the whole run at bounded size (~4 MB per network at most).

Stored in NAME.pt's history: ``activity`` [records, probes, steps/10, H]
(float16), ``activity_updates`` [records], ``activity_evidence`` [probes],
``activity_context`` [probes].
"""
from __future__ import annotations

import numpy as np
import torch

from rnn.protocol import X0_SCALE
from rnn.rng import RECORD, Streams
from tasks import DecisionTask

TIME_STRIDE = 10


class ActivityRecorder:
    """An observer for :func:`rnn.training.fit`."""

    def __init__(self, task: DecisionTask, seeds: list[int], hidden: int, device,
                 every: int = 5, max_records: int = 200):
        self.every, self.max_records = int(every), int(max_records)
        levels = np.array([-1.0, -0.25, 0.25, 1.0]) * task.mean
        n_ctx = task.n_contexts
        self.evidence = np.tile(levels, n_ctx)
        self.context = np.repeat(np.arange(n_ctx), len(levels))
        rng = Streams(seeds, RECORD, device)
        n = len(self.evidence)
        strength = torch.as_tensor(np.abs(self.evidence), dtype=torch.float32,
                                   device=device).expand(len(seeds), n).contiguous()
        signs = rng.signs(n, task.n_channels)
        ctx = torch.as_tensor(self.context, device=device).expand(len(seeds), n).contiguous()
        signs[torch.arange(len(seeds))[:, None], torch.arange(n)[None], ctx] = torch.as_tensor(
            np.sign(self.evidence), dtype=torch.float32, device=device)
        self.trials = task.build(strength, signs, ctx, rng)
        self.x0 = X0_SCALE * rng.normal(n, hidden)
        self.records: list[torch.Tensor] = []      # each [P, n, T', H] float16
        self.updates: list[int] = []

    def __call__(self, step: int, trainer, active: list[int]) -> None:
        if step % self.every:
            return
        model = trainer.model
        sim = model.simulate(self.trials.inputs, self.x0, keep=TIME_STRIDE)
        rates = model.rates(sim.states)                        # [T', P, n, H]
        self.records.append(rates.permute(1, 2, 0, 3).to("cpu", torch.float16))
        self.updates.append(step)
        if len(self.records) > self.max_records:
            self.records = self.records[1::2]
            self.updates = self.updates[1::2]
            self.every *= 2

    def history(self, p: int, last_step: int) -> dict[str, torch.Tensor]:
        """Network p's record up to its last update (a stopped network's later
        records are of frozen weights and are left out)."""
        keep = [i for i, s in enumerate(self.updates) if s <= last_step]
        if not keep:
            act = torch.zeros(0, len(self.evidence), 0, 0, dtype=torch.float16)
        else:
            act = torch.stack([self.records[i][p] for i in keep])
        return {"activity": act,
                "activity_updates": torch.tensor([self.updates[i] for i in keep]),
                "activity_evidence": torch.as_tensor(self.evidence, dtype=torch.float32),
                "activity_context": torch.as_tensor(self.context)}


def activity_tensor(history: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The record as a 3-way tensor neurons × time-in-trial × (records·probes),
    with, for the last mode, the update index and the probe's signed evidence."""
    act = history["activity"].float().numpy()                 # [R, n, T', H]
    R, n, T, H = act.shape
    X = act.transpose(3, 2, 0, 1).reshape(H, T, R * n)
    upd = np.repeat(history["activity_updates"].numpy(), n)
    ev = np.tile(history["activity_evidence"].numpy(), R)
    return X, upd, ev
