"""RFLO, random feedback local online learning (Murray 2019, eLife 8:e43299).

e-prop's eligibility traces and update (the derivation is in rnn/rules/eprop.py),
with the output error carried to the units by a fixed random vector B instead
of the readout weights: ΔW_rec ∝ B ⊗ mean_trials(2(z_T − y)·ε_T + 2 z_1·ε_1).
B ~ 0.1·N(0, 1) per unit, the scale of W_out's initialisation, is the next
draw of the network's weight stream after its initial weights, so it is fixed
for the whole run, the same on every device and in any population, and
independent of W_out.  W_out learns by its exact local gradient, as in
Murray's paper: that is what lets random feedback teach (feedback alignment).
The feedback vector is saved in the model file's history (``feedback``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rnn.rules.eprop import EpropConfig, EpropTrainer
from rnn.protocol import CLEAN, Protocol
from tasks import DecisionTask

FEEDBACK_SCALE = 0.1    # as W_out's initialisation (rnn.model.RateRNN.init)


@dataclass(frozen=True)
class RFLOConfig(EpropConfig):
    pass


class RFLOTrainer(EpropTrainer):
    rule = "rflo"

    def __init__(self, cfg: RFLOConfig, task: DecisionTask, seeds: list[int], device,
                 activation: str = "one_plus_tanh", protocol: Protocol = CLEAN):
        super().__init__(cfg, task, seeds, device, activation, protocol)
        self.B = FEEDBACK_SCALE * self.weights_rng.normal(self.model.hidden)     # [P, H]

    def feedback(self, sub, active: torch.Tensor) -> torch.Tensor:
        return self.B[active]

    def extra_history(self, p: int) -> dict[str, torch.Tensor]:
        return {"feedback": self.B[p].detach().cpu().clone()}
