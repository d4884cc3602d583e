"""Genetic algorithm: truncation selection with elitism, Gaussian mutation.

Each generation every member of a run's population runs the same fresh batch
of 500 trials; the 5 members with the lowest mean loss are the parents; the
best is kept unchanged (elitism) and every other child is a uniformly chosen
parent plus 0.005·N(0, 1) on W_in, W_rec and W_out (on every weight and
bias of a discrete-time architecture, rnn.arch).  The candidate that the
stop rule validates (and that is saved) is the best member of the latest
generation.

The population is one stack of independent networks (batched matrix
products over the member axis), not a block-diagonal network.  Several runs
(one per seed) stack the same way: R runs × G members networks, each run's
members sharing that run's batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rnn.arch import PARAMS, CellRNN, init_network
from rnn.model import RateRNN, trial_loss
from rnn.protocol import CLEAN, Protocol
from rnn.rng import MUTATE, TRAIN, WEIGHTS, Streams
from rnn.training import Trainer
from tasks import DecisionTask
from tasks.flipflop import sequence_mean


@dataclass(frozen=True)
class GAConfig:
    population: int = 20         # members per run (spec: 50 for RDM, 20 for CDI/N-CDI)
    parents: int = 5             # truncation selection: the best 5 breed
    mutation: float = 0.005      # std of the Gaussian mutation on W_in, W_rec, W_out
    batch: int = 500             # trials per generation, shared by all members
    max_steps: int = 2000        # budget of generations

    @staticmethod
    def for_task(task: DecisionTask) -> "GAConfig":
        return GAConfig(population=20 if task.cued else 50)


class GATrainer(Trainer):
    rule = "ga"
    trainable = ("W_in", "W_rec", "W_out")

    def __init__(self, cfg: GAConfig, task: DecisionTask, seeds: list[int], device,
                 activation: str = "one_plus_tanh", protocol: Protocol = CLEAN,
                 arch: str = "rate"):
        if not 1 <= cfg.parents <= cfg.population:
            raise ValueError("parents must be between 1 and the population size")
        self.cfg, self.task = cfg, task
        self.protocol = protocol
        self.R, self.G = len(seeds), cfg.population
        self.pop = init_network(arch, Streams(seeds, WEIGHTS, device), task.n_inputs,
                                per_stream=self.G, hidden=protocol.hidden,
                                activation=activation, readout="linear",
                                n_outputs=getattr(task, "n_outputs", 1))
        if arch != "rate":
            self.trainable = PARAMS          # a discrete-time architecture: every weight
        self.data = Streams(seeds, TRAIN, device)
        self.mut = Streams(seeds, MUTATE, device)
        self.model = self.pop.select(torch.arange(self.R, device=device) * self.G)
        self.best_loss: list[list[float]] = [[] for _ in range(self.R)]

    def members(self, runs: torch.Tensor) -> torch.Tensor:
        """Indices into the population stack of all members of ``runs``."""
        g = torch.arange(self.G, device=runs.device)
        return (runs[:, None] * self.G + g[None, :]).reshape(-1)

    def evaluate(self, runs: torch.Tensor, inputs, x0, targets) -> torch.Tensor:
        """Mean loss of every member of ``runs`` on their run's batch: [len(runs), G].

        inputs [T, len(runs), n, I], x0 [len(runs), n, H], targets [len(runs), n]."""
        pop = self.pop.select(self.members(runs))
        if getattr(self.task, "sequence", False):      # targets: the runs' SequenceTrials
            return sequence_mean(pop, targets, x0, self.task.loss_terms, self.G).view(
                len(runs), self.G)
        sim = pop.simulate(inputs, x0)
        tg = targets.repeat_interleave(self.G, dim=0)
        return trial_loss(pop, sim, tg).view(len(runs), self.G)

    def generation(self, runs: torch.Tensor, inputs, x0, targets) -> torch.Tensor:
        """Evaluate, select, keep the elite, breed the next population.  Returns
        the best loss of each run [len(runs)]."""
        cfg, G = self.cfg, self.G
        Ra = len(runs)
        loss = self.evaluate(runs, inputs, x0, targets)
        order = torch.argsort(loss, dim=1, stable=True)
        parents = order[:, :cfg.parents]                                  # [Ra, K]
        base = runs[:, None] * G
        elite_idx = (base[:, 0] + order[:, 0])
        # the candidate of each run: its best member of this generation
        self.model = self._set(self.model, runs, self.pop.select(elite_idx))
        # children: slot 0 is the elite, slots 1.. a random parent plus mutation
        rng = self.mut.subset(runs.tolist())
        choice = rng.integers(cfg.parents, G - 1).to(runs.device)         # [Ra, G-1]
        src = torch.cat([order[:, :1], torch.gather(parents, 1, choice)], dim=1)
        new = self.pop.select((base + src).reshape(-1))
        noise = {k: rng.normal(G - 1, *getattr(self.pop, k).shape[1:]) for k in self.trainable}
        self.mut.counter = rng.counter
        changes = {}
        for k, z in noise.items():
            w = getattr(new, k).view(Ra, G, *z.shape[2:]).clone()
            w[:, 1:] += cfg.mutation * z.to(w.device, w.dtype)
            changes[k] = w.view(Ra * G, *z.shape[2:])
        self.pop = self._set(self.pop, self.members(runs), new.replace(**changes))
        best = loss.gather(1, order[:, :1])[:, 0]
        for r, b in zip(runs.tolist(), best.tolist()):
            self.best_loss[r].append(b)
        return best

    @staticmethod
    def _set(stack: RateRNN, idx: torch.Tensor, part: RateRNN) -> RateRNN:
        out = {}
        keys = PARAMS if isinstance(stack, CellRNN) else ("W_in", "W_rec", "W_out", "b")
        for k in keys:
            w = getattr(stack, k).clone()
            w[idx] = getattr(part, k)
            out[k] = w
        return stack.replace(**out)

    def step(self, active: torch.Tensor) -> torch.Tensor:
        trials, x0 = self.draw_batch(active, self.cfg.batch, self.pop.hidden)
        seq = getattr(self.task, "sequence", False)
        return self.generation(active, trials.inputs, x0, trials if seq else trials.targets)

    def extra_meta(self, p: int) -> dict:
        bl = self.best_loss[p]
        return {"ga": {"population": self.G, "parents": self.cfg.parents,
                       "mutation": self.cfg.mutation, "generations": len(bl),
                       "best_loss_per_generation": [round(v, 5) for v in bl]}}
