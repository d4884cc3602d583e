"""Perceptual decision tasks: RDM, CDI and N-CDI.

Both tasks are the same generator with different channel layouts:

* RDM (random-dot motion, one input): ``u_t = s·μ + v·ε_t``; target ``s``.
* N-CDI (context-dependent integration, 2N inputs): N sensory channels carry
  ``s_k·μ + v·ε_{k,t}`` with one strength μ shared by the channels and an
  independent sign ``s_k`` per channel; channels N..2N-1 are a one-hot cue for
  the context c, constant over the trial.  Target: ``s_c``.  CDI is N = 2.

μ ~ U(0, mean).  ε ~ N(0, 1) at every step, so ``noise`` (the CLI's ``-v``)
is a standard deviation, as in the original code.

Array layouts (P = networks, each drawing from its own random stream;
n = trials; T = steps; I = inputs):

    inputs   [T, P, n, I]  float32
    targets  [P, n]        ±1
    strength [P, n]        μ ≥ 0
    signs    [P, n, C]     ±1 per sensory channel (C = 1 for RDM, N for N-CDI)
    context  [P, n]        cued channel index (0 for RDM)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnn.rng import Streams

TRIAL_STEPS = 750
VALIDATION_TRIALS = 2000
VALIDATION_MAX_STRENGTH = 0.1875
VALIDATION_LEVELS = 20
DEFAULT_MEAN = 0.1857


@dataclass(frozen=True)
class Trials:
    """A batch of trials; see the module docstring for layouts."""
    inputs: torch.Tensor
    targets: torch.Tensor
    strength: torch.Tensor
    signs: torch.Tensor
    context: torch.Tensor

    @property
    def n_trials(self) -> int:
        return self.targets.shape[1]

    def select(self, idx: torch.Tensor) -> "Trials":
        """The trials of networks ``idx`` (network axis)."""
        return Trials(self.inputs[:, idx], self.targets[idx], self.strength[idx],
                      self.signs[idx], self.context[idx])


@dataclass(frozen=True)
class StaticInputs:
    """Constant inputs for fixed-point and SVCCA analyses.

    values   [K, I]  the input vector
    evidence [K]     the signed evidence of the cued channel (the colour key)
    context  [K]     the cued channel (0 for RDM)
    """
    values: np.ndarray
    evidence: np.ndarray
    context: np.ndarray


@dataclass(frozen=True)
class DecisionTask:
    """One decision task.  Build it with :func:`rdm` or :func:`ncdi`."""
    n_channels: int          # sensory channels (1 for RDM, N for N-CDI)
    cued: bool               # one-hot context cue channels present
    noise: float = 0.5       # standard deviation of the per-step input noise (-v)
    mean: float = DEFAULT_MEAN  # largest evidence strength (-m)
    steps: int = TRIAL_STEPS

    # ---- description -------------------------------------------------
    @property
    def name(self) -> str:
        """rdm | cdi | ncdiN: the task's one spelling (:mod:`tasks.table`)."""
        from tasks.table import TaskName
        return TaskName("ncdi", self.n_channels).spelling if self.cued else "rdm"

    @property
    def n_inputs(self) -> int:
        return self.n_channels * (2 if self.cued else 1)

    @property
    def n_contexts(self) -> int:
        return self.n_channels if self.cued else 1

    def describe(self) -> str:
        if not self.cued:
            return f"RDM (1 input), noise sd {self.noise:g}, mean {self.mean:g}"
        return (f"{'CDI' if self.n_channels == 2 else 'N-CDI'} (N={self.n_channels}, "
                f"{self.n_inputs} inputs), noise sd {self.noise:g}, mean {self.mean:g}")

    def to_dict(self) -> dict:
        return {"name": self.name, "N": self.n_channels if self.cued else None,
                "n_inputs": self.n_inputs, "noise": self.noise, "mean": self.mean,
                "steps": self.steps}

    @staticmethod
    def from_dict(d: dict) -> "DecisionTask":
        """The task of a model file's ``meta.task`` (checked on load)."""
        from tasks.table import parse
        return parse(d["name"], d.get("N")).make(d["noise"], d["mean"],
                                                  d.get("steps", TRIAL_STEPS))

    # ---- trial generation -------------------------------------------
    def build(self, strength: torch.Tensor, signs: torch.Tensor, context: torch.Tensor,
              rng: Streams | None) -> Trials:
        """Trials with given strengths [P, n], signs [P, n, C] and contexts [P, n].

        Noise is drawn from ``rng`` (one draw per call); ``rng=None`` gives
        noise-free inputs.
        """
        P, n = strength.shape
        C = self.n_channels
        from rnn.sizing import require_floats
        require_floats(2 * self.steps * P * n * self.n_inputs,
                       f"{P * n} trials of {self.steps} steps", strength.device)
        mean_in = signs * strength[..., None]                       # [P, n, C]
        if rng is None:
            sensory = mean_in.unsqueeze(0).expand(self.steps, P, n, C)
        else:
            eps = rng.normal(self.steps, n, C).to(strength.device)   # [P, T, n, C]
            sensory = eps.permute(1, 0, 2, 3).mul_(self.noise).add_(mean_in)
        if self.cued:
            cue = torch.nn.functional.one_hot(context, C).to(sensory.dtype)  # [P, n, C]
            inputs = torch.cat([sensory, cue.unsqueeze(0).expand(self.steps, P, n, C)], dim=-1)
        else:
            inputs = sensory.contiguous()
        targets = torch.gather(signs, 2, context[..., None])[..., 0]
        return Trials(inputs, targets, strength, signs, context)

    def sample(self, n: int, rng: Streams) -> Trials:
        """A training batch of ``n`` trials per network, all drawn from ``rng``."""
        strength = rng.uniform(n).mul_(self.mean)
        signs = rng.signs(n, self.n_channels)
        context = rng.integers(self.n_contexts, n)
        return self.build(strength, signs, context, rng)

    def validation_set(self, rng: Streams, n: int = VALIDATION_TRIALS) -> Trials:
        """The fixed validation set: strengths cycle through
        linspace(0, 0.1875, 20); signs, contexts and noise drawn from ``rng``."""
        levels = torch.linspace(0.0, VALIDATION_MAX_STRENGTH, VALIDATION_LEVELS)
        strength = levels[torch.arange(n) % VALIDATION_LEVELS].expand(rng.n, n)
        strength = strength.to(rng.device).contiguous()
        signs = rng.signs(n, self.n_channels)
        context = rng.integers(self.n_contexts, n)
        return self.build(strength, signs, context, rng)

    # ---- probes for the analyses ------------------------------------
    def static_inputs(self, kind: str) -> StaticInputs:
        """The static input sets of the fixed-point analysis.

        RDM: large {0.5, 0.2, 0, -0.2, -0.5}; small 0.03·{0, ±0.1, ..., ±1}
        (21 values); sparse 0.03·{0, ±0.2, ..., ±1} (11 values).
        N-CDI, for each context k (cue k on, cued channel k set to the value,
        the other sensory channels 0): large linspace(-0.4, 0.4, 5); small
        linspace(-0.02, 0.02, 21); sparse linspace(-0.02, 0.02, 11).
        """
        if kind not in ("large", "small", "sparse"):
            raise ValueError(f"unknown static input set {kind!r}: use large, small or sparse")
        if not self.cued:
            if kind == "large":
                vals = np.array([0.5, 0.2, 0.0, -0.2, -0.5])
            elif kind == "small":
                vals = 0.03 * np.round(np.linspace(-1.0, 1.0, 21), 10)
            else:
                vals = 0.03 * np.round(np.linspace(-1.0, 1.0, 11), 10)
            return self._static(vals, [0])
        vals = {"large": np.linspace(-0.4, 0.4, 5), "small": np.linspace(-0.02, 0.02, 21),
                "sparse": np.linspace(-0.02, 0.02, 11)}[kind]
        return self._static(vals, list(range(self.n_channels)))

    def svcca_inputs(self, levels: int = 10) -> StaticInputs:
        """``levels`` noise-free static inputs evenly spaced in [-mean, mean] per context."""
        vals = np.linspace(-self.mean, self.mean, levels)
        return self._static(vals, list(range(self.n_contexts)))

    def _static(self, vals: np.ndarray, contexts: list[int]) -> StaticInputs:
        rows, ev, ctx = [], [], []
        for k in contexts:
            for v in vals:
                u = np.zeros(self.n_inputs)
                u[k] = v
                if self.cued:
                    u[self.n_channels + k] = 1.0
                rows.append(u)
                ev.append(v)
                ctx.append(k)
        return StaticInputs(np.array(rows), np.array(ev), np.array(ctx, dtype=np.int64))

    def static_trials(self, static: StaticInputs, steps: int | None = None) -> torch.Tensor:
        """Constant input sequences ``[T, K, I]`` for the rows of ``static``."""
        T = steps or self.steps
        from rnn.sizing import require_floats
        require_floats(T * static.values.size, f"{len(static.values)} static inputs of {T} steps")
        u = torch.as_tensor(static.values, dtype=torch.float32)
        return u.unsqueeze(0).expand(T, *u.shape).contiguous()

    def psychometric_levels(self, count: int = 21) -> np.ndarray:
        """Signed evidence levels for psychometric curves, spanning the range in
        which a perfect integrator of the whole trial goes from chance to
        certain (±6 noise sd of the trial mean), at least ±0.02, at most ±mean."""
        half = min(self.mean, max(0.02, 6.0 * self.noise / np.sqrt(self.steps)))
        return np.linspace(-half, half, count)

    def psychometric_trials(self, levels: np.ndarray, per_level: int, context: int,
                            rng: Streams) -> Trials:
        """``per_level`` noisy trials for each signed evidence level of the cued
        channel ``context``; the other sensory channels get the same strength
        with random signs, as in training.  Network axis of size 1."""
        lv = torch.as_tensor(np.repeat(levels, per_level), dtype=torch.float32)[None]
        n = lv.shape[1]
        signs = rng.signs(n, self.n_channels)
        signs[:, :, context] = torch.where(lv >= 0, 1.0, -1.0)
        ctx = torch.full((1, n), context, dtype=torch.long)
        return self.build(lv.abs(), signs, ctx, rng)


def rdm(noise: float = 0.5, mean: float = DEFAULT_MEAN, steps: int = TRIAL_STEPS) -> DecisionTask:
    """The random-dot-motion task: one noisy input."""
    return DecisionTask(1, False, float(noise), float(mean), int(steps))


def ncdi(N: int, noise: float = 0.5, mean: float = DEFAULT_MEAN,
         steps: int = TRIAL_STEPS) -> DecisionTask:
    """The N-context integration task (CDI for N = 2)."""
    if N < 1:
        raise ValueError(f"N must be at least 1, got {N}")
    return DecisionTask(int(N), True, float(noise), float(mean), int(steps))
