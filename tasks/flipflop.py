"""The 3-bit flip-flop (Sussillo & Barak 2013; Maheswaranathan et al. 2019).

Three input channels carry brief pulses of height ±A (``mean``, default 1)
at random times; output b must hold the sign of the last pulse of channel b.
A pulse lasts ``PULSE_STEPS`` steps (half a time constant of the rate
network); a new pulse of a channel starts with probability ``ONSET`` per step,
and every channel pulses at step 0, so every target is defined from the first
step.  ``noise`` (the CLI's -v, default 0) adds v·N(0, 1) to every input at
every step.

Unlike a decision task, every step has a target: the loss is the mean squared
error of the three outputs against the held signs over all steps (masked
where a mask says so), and a trial's score is the fraction of (step, bit)
pairs outside the pulses whose output lies within 0.5 of the held sign — the
stop rule's accuracy (0.9, as for the decision tasks).  The sign alone is not
enough: a network whose outputs decay towards 0 keeps their sign for a while
(one trained to 0.90 by sign alone had one stable fixed point, not eight).

Layouts (P networks, n trials, T steps, B = 3 bits):

    inputs   [T, P, n, B]   targets [T, P, n, B] (±1)   mask [T, P, n, B] (1, 0)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnn.rng import Streams
from tasks.decision import StaticInputs

BITS = 3
FLIPFLOP_STEPS = 200
PULSE_STEPS = 5
ONSET = 0.02          # probability per step and channel that a pulse starts (4 a trial)
TOLERANCE = 0.5       # a held output counts as right within this of its target
START_TRIALS = 32     # trials whose states seed the fixed-point search (start_trials)


@dataclass(frozen=True)
class SequenceTrials:
    """Trials whose every step has a target; ``hold`` marks the (step, bit)
    pairs outside the pulses (what the score counts)."""
    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    hold: torch.Tensor

    @property
    def n_trials(self) -> int:
        return self.inputs.shape[2]

    def select(self, idx: torch.Tensor) -> "SequenceTrials":
        """The trials of networks ``idx`` (network axis)."""
        return SequenceTrials(self.inputs[:, idx], self.targets[:, idx], self.mask[:, idx],
                              self.hold[:, idx])

    def repeat_networks(self, k: int) -> "SequenceTrials":
        """Each network's trials ``k`` times over (a GA run's members share them)."""
        return SequenceTrials(*(t.repeat_interleave(k, dim=1) for t in
                                (self.inputs, self.targets, self.mask, self.hold)))


@dataclass(frozen=True)
class FlipFlopTask:
    noise: float = 0.0           # input noise sd (-v)
    mean: float = 1.0            # pulse height (-m)
    steps: int = FLIPFLOP_STEPS

    sequence = True              # every step has a target (rnn.training reads this)
    cued = False
    n_channels = BITS
    n_contexts = 1
    n_inputs = BITS
    n_outputs = BITS
    name = "flipflop"

    def describe(self) -> str:
        return (f"3-bit flip-flop ({BITS} inputs, {BITS} outputs), pulses ±{self.mean:g}, "
                f"noise sd {self.noise:g}, {self.steps} steps")

    def to_dict(self) -> dict:
        return {"name": self.name, "N": None, "n_inputs": BITS, "noise": self.noise,
                "mean": self.mean, "steps": self.steps}

    # ---- trials ----------------------------------------------------------------
    def sample(self, n: int, rng: Streams) -> SequenceTrials:
        """``n`` trials per network from ``rng``."""
        T, B = self.steps, BITS
        from rnn.sizing import require_floats
        require_floats(5 * T * rng.n * n * B, f"{rng.n * n} flip-flop trials of {T} steps",
                       rng.device)
        onset = rng.uniform(T, n, B) < ONSET                      # [P, T, n, B]
        onset[:, 0] = True
        signs = rng.signs(T, n, B)
        steps = torch.arange(T, device=onset.device).view(1, T, 1, 1)
        last = torch.cummax(torch.where(onset, steps, torch.zeros_like(steps)), dim=1).values
        held = torch.gather(signs, 1, last)                        # sign of the last onset
        pulsing = (steps - last) < PULSE_STEPS
        inputs = torch.where(pulsing, held * self.mean, torch.zeros_like(held))
        if self.noise > 0:
            inputs = inputs + self.noise * rng.normal(T, n, B).to(inputs.device)
        perm = (1, 0, 2, 3)
        return SequenceTrials(inputs.permute(perm).contiguous(), held.permute(perm).contiguous(),
                              torch.ones_like(held).permute(perm).contiguous(),
                              (~pulsing).to(held.dtype).permute(perm).contiguous())

    def validation_set(self, rng: Streams, n: int = 2000) -> SequenceTrials:
        return self.sample(n, rng)

    # ---- loss and score ----------------------------------------------------------
    keep = "all"                 # the states the loss reads: every step
    validation_note = "random pulses, as in training"     # NAME.json's validation.strengths
    # the stall rule's line: a network that holds nothing scores about 0, not the
    # decision tasks' 0.5 (a rate network scored 0.47 after 460 updates and rising)
    stall_below = 0.1

    def loss(self, model, sim, trials: SequenceTrials) -> torch.Tensor:
        """Masked mean squared error of every output at every step, per network [P]."""
        z = model.outputs(sim.states)                              # [T, P, n, B]
        err = (z - trials.targets.to(z.dtype)) ** 2 * trials.mask.to(z.dtype)
        return err.sum((0, 2, 3)) / trials.mask.sum((0, 2, 3)).clamp_min(1).to(z.dtype)

    def score(self, model, sim, trials: SequenceTrials) -> torch.Tensor:
        """Fraction of held (step, bit) pairs whose output lies within ``TOLERANCE``
        of the held sign, per network [P]."""
        z = model.outputs(sim.states)
        ok = ((z - trials.targets.to(z.dtype)).abs() < TOLERANCE).to(torch.float64)
        hold = trials.hold.to(torch.float64)
        return (ok * hold).sum((0, 2, 3)) / hold.sum((0, 2, 3)).clamp_min(1)

    # ---- probes for the analyses ----------------------------------------------------
    def static_inputs(self, kind: str) -> StaticInputs:
        """The fixed points that hold the bits are those of the zero input: every
        set (large, small, sparse) is that one input."""
        if kind not in ("large", "small", "sparse"):
            raise ValueError(f"unknown static input set {kind!r}: use large, small or sparse")
        return StaticInputs(np.zeros((1, BITS)), np.zeros(1), np.zeros(1, dtype=np.int64))

    def start_trials(self, rng: Streams) -> torch.Tensor:
        """Inputs [T, 1, n, B] of trials whose visited states seed the fixed-point
        search (rnn.analysis.fixed_points.visited_starts): the memories are
        entered by pulses, and under the zero input a random state reaches only
        a few of the 8 (a GRU that held all 8 for 2000 steps showed 6 from
        random starts alone)."""
        return self.sample(START_TRIALS, rng).inputs

    @torch.no_grad()
    def memories_held(self, model, steps: int = 10 * FLIPFLOP_STEPS) -> int:
        """How many of the 2³ bit patterns the network (P = 1) holds from behaviour:
        each pulsed once (``PULSE_STEPS`` steps of ±``mean`` from the zero state),
        then ``steps`` steps of zero input, and held when the sign of every
        output at the end is the pattern's.  The ground truth the fixed points
        are checked against (a held memory is an attractor, or a point slow on
        this time scale)."""
        pats = torch.tensor([[(k >> b) & 1 for b in range(BITS)] for k in range(2 ** BITS)],
                            dtype=model.dtype) * 2.0 - 1.0
        u = torch.zeros(PULSE_STEPS + steps, 1, 2 ** BITS, BITS, dtype=model.dtype)
        u[:PULSE_STEPS] = self.mean * pats
        x0 = torch.zeros(1, 2 ** BITS, model.hidden, dtype=model.dtype)
        z = model.outputs(model.simulate(u.to(model.device), x0.to(model.device)).x_last)[0]
        return int((torch.sign(z).cpu() == pats).all(-1).sum())

    def svcca_inputs(self, levels: int = 10) -> StaticInputs:
        """The 2³ sign patterns of the pulses, held: each drives the network to the
        memory of that pattern (``levels`` is the decision tasks' and unused)."""
        pats = np.array([[(k >> b) & 1 for b in range(BITS)] for k in range(2 ** BITS)])
        vals = self.mean * (2.0 * pats - 1.0)
        return StaticInputs(vals, np.arange(2 ** BITS, dtype=np.float64),
                            np.zeros(2 ** BITS, dtype=np.int64))

    def static_trials(self, static: StaticInputs, steps: int | None = None) -> torch.Tensor:
        T = steps or self.steps
        u = torch.as_tensor(static.values, dtype=torch.float32)
        return u.unsqueeze(0).expand(T, *u.shape).contiguous()


def flipflop(noise: float = 0.0, mean: float = 1.0, steps: int = FLIPFLOP_STEPS) -> FlipFlopTask:
    """The 3-bit flip-flop task."""
    return FlipFlopTask(float(noise), float(mean), int(steps))
