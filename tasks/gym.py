"""Tasks of neurogym (Molano-Mazón et al.), trained as supervised sequences.

neurogym describes a task as an environment whose trials are an observation
sequence ``ob`` [T, I] and a ground-truth action at every step ``gt`` [T]:
action 0 is *fixate*, actions 1… are the choices, and ``gt`` is 0 until the
decision period, then the correct choice.  This adapter turns an environment's
trials into :class:`~tasks.flipflop.SequenceTrials` and trains on them as
neurogym's own supervised examples do:

* the readout has one output per action (its logits); the loss is the
  cross-entropy of the softmax over the actions against ``gt`` at every step
  of the trial.  Each decision step weighs ``DECISION_WEIGHT`` (5) times a
  fixation step, as in Yang et al. (2019)'s cost mask, so that the few decision
  steps are not drowned by the many steps of fixation; steps after a trial's
  end (trials differ in length; a batch is padded to its longest) weigh 0;
* a trial's score is whether the most likely action at the last step of its
  decision period is the correct choice.  Trials whose stimulus carries no
  evidence (coherence 0: their ground truth is a coin flip) are not scored, so
  that the stop rule's 0.9 is reachable;
* ``-v`` sets the environment's input noise ``sigma`` (default: neurogym's, 1);
  neurogym's own stimulus strengths and timing are kept, at ``DT`` = 20 ms a
  step (the networks integrate over many steps, not neurogym's default 5);
* every network's trials come from the environment seeded from that network's
  own random stream, so a network's batches depend only on its seed and update.

Registered tasks (:data:`ENVS`; a family name of the task table each):

    ngpdm   PerceptualDecisionMaking-v0: 2 choices, 3 inputs (fixation, 2 stimuli)
    ngcdm   ContextDecisionMaking-v0: 2 modalities, a context cue; 7 inputs

Static inputs for the analyses: the stimulus period's input with the fixation
input on and the stimuli at signed coherence c (percent; positive favours
choice 1), the other modality at coherence 0 and the cue of the context on
(ngcdm): large c ∈ linspace(−max, max, 5), small and sparse
linspace(−min, min, 21 or 11) with max and min the environment's largest and
smallest nonzero coherence.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from rnn.errors import UserError
from tasks.decision import StaticInputs
from tasks.flipflop import SequenceTrials, whole_sequence, member_sums

DT = 20                  # ms per step
DECISION_WEIGHT = 5.0    # a decision step's weight in the loss (a fixation step's: 1)
SEED_RANGE = 2 ** 24     # environment seeds drawn per network (exact in float32)


def _pdm_static(c: float, k: int) -> np.ndarray:
    return np.array([1.0, 0.5 + c / 200.0, 0.5 - c / 200.0])


def _pdm_evidence(trial: dict) -> tuple[float, int]:
    return (float(trial["coh"]) * (1.0 if int(trial["ground_truth"]) == 0 else -1.0), 0)


def _cdm_static(c: float, k: int) -> np.ndarray:
    u = np.array([1.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0])
    u[1 + 2 * k], u[2 + 2 * k] = (1 + c / 100.0) / 2, (1 - c / 100.0) / 2
    u[5 + k] = 1.0
    return u


def _cdm_evidence(trial: dict) -> tuple[float, int]:
    k = int(trial["context"])
    coh = float(trial["coh_0"] if k == 0 else trial["coh_1"])
    return (coh * (1.0 if int(trial["ground_truth"]) == 1 else -1.0), k)


@dataclass(frozen=True)
class GymEnv:
    """One registered neurogym environment and what the analyses need of it."""
    env_id: str
    title: str
    contexts: int
    cohs: tuple[float, ...]                       # its coherence levels (percent)
    static: Callable[[float, int], np.ndarray]    # (signed coherence, context) -> input
    evidence: Callable[[dict], tuple[float, int]]  # trial info -> (signed coherence, context)


ENVS: dict[str, GymEnv] = {
    "ngpdm": GymEnv("PerceptualDecisionMaking-v0", "neurogym perceptual decision making", 1,
                    (0.0, 6.4, 12.8, 25.6, 51.2), _pdm_static, _pdm_evidence),
    "ngcdm": GymEnv("ContextDecisionMaking-v0", "neurogym context-dependent decision making",
                    2, (5.0, 15.0, 50.0), _cdm_static, _cdm_evidence),
}

_CACHE: dict = {}


def make_env(env_id: str, sigma: float):
    """A fresh neurogym environment (unwrapped), or a UserError if neurogym is absent."""
    import matplotlib
    try:
        with matplotlib.rc_context():        # neurogym sets global font settings on import
            import neurogym
    except ImportError:
        raise UserError("the neurogym tasks need neurogym: pip install neurogym==1.0.8") from None
    with warnings.catch_warnings():          # gymnasium's notes on render modes
        warnings.simplefilter("ignore")
        return neurogym.make(env_id, dt=DT, sigma=sigma).unwrapped


def _env(family: str, sigma: float):
    key = (family, sigma)
    if key not in _CACHE:
        _CACHE[key] = make_env(ENVS[family].env_id, sigma)
    return _CACHE[key]


def _max_steps(env) -> int:
    total = 0.0
    for v in env.timing.values():
        total += math.ceil(float(getattr(v, "vmax", v)) / DT)
    return int(total)


def _expand_members(targets: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Action targets [c, R, 1, n] spread over the member axis of z [c, R, G, n, A]."""
    return targets.expand(*z.shape[:-1])


@dataclass(frozen=True)
class GymTask:
    """A neurogym environment as a task of this tool (``noise`` is its sigma)."""
    family: str
    noise: float = 1.0
    mean: float = 0.0            # unused: neurogym sets its own stimulus strengths

    sequence = True              # every step has a target (rnn.training reads this)
    cued = False
    keep = "all"
    validation_note = "the environment's trials, as in training; coherence-0 trials unscored"
    # a network that never commits to a choice at the decision step scores 0
    stall_below = 0.1

    @property
    def spec(self) -> GymEnv:
        return ENVS[self.family]

    @property
    def env(self):
        return _env(self.family, self.noise)

    @property
    def name(self) -> str:
        return self.family

    @property
    def n_inputs(self) -> int:
        return int(self.env.observation_space.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.env.action_space.n)

    @property
    def n_channels(self) -> int:
        return self.spec.contexts

    @property
    def n_contexts(self) -> int:
        return self.spec.contexts

    @property
    def steps(self) -> int:
        """The longest trial, in steps (static-input runs last this long)."""
        return _max_steps(self.env)

    def describe(self) -> str:
        return (f"{self.spec.title} ({self.spec.env_id}; {self.n_inputs} inputs, "
                f"{self.n_outputs} actions), sigma {self.noise:g}, {DT} ms a step")

    def to_dict(self) -> dict:
        return {"name": self.name, "N": None, "n_inputs": self.n_inputs, "noise": self.noise,
                "mean": 0.0, "steps": self.steps, "env": self.spec.env_id, "dt_ms": DT}

    # ---- trials ----------------------------------------------------------------
    def _trials(self, seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray, int, bool]]:
        env = self.env
        env.seed(seed)
        out = []
        for _ in range(n):
            info = env.new_trial()
            c, _k = self.spec.evidence(info)
            end = int(env.end_ind["decision"])
            out.append((env.ob.astype(np.float32), env.gt.astype(np.int64), end - 1, c != 0))
        return out

    def sample(self, n: int, rng) -> SequenceTrials:
        """``n`` trials per network, from the environment seeded by each network's stream."""
        seeds = rng.integers(SEED_RANGE, 1)[:, 0].tolist()
        per = [self._trials(int(s), n) for s in seeds]
        P, T = len(per), max(len(ob) for net in per for ob, *_ in net)
        from rnn.sizing import require_floats
        require_floats(4 * T * P * n * self.n_inputs, f"{P * n} {self.family} trials of {T} "
                                                      f"steps", rng.device)
        inputs = np.zeros((T, P, n, self.n_inputs), np.float32)
        targets = np.zeros((T, P, n), np.int64)
        weight = np.zeros((T, P, n), np.float32)
        score = np.zeros((T, P, n), np.float32)
        for p, net in enumerate(per):
            for i, (ob, gt, last, scored) in enumerate(net):
                L = len(ob)
                inputs[:L, p, i], targets[:L, p, i] = ob, gt
                weight[:L, p, i] = np.where(gt > 0, DECISION_WEIGHT, 1.0)
                score[last, p, i] = float(scored)
        dev = rng.device
        return SequenceTrials(*(torch.from_numpy(a).to(dev) for a in
                                (inputs, targets, weight, score)))

    def validation_set(self, rng, n: int = 2000) -> SequenceTrials:
        return self.sample(n, rng)

    # ---- loss and score ----------------------------------------------------------
    def loss(self, model, sim, trials: SequenceTrials) -> torch.Tensor:
        """Weighted cross-entropy of the action logits at every step, per network [P]."""
        return whole_sequence(self.loss_terms, model, sim, trials)

    def score(self, model, sim, trials: SequenceTrials) -> torch.Tensor:
        """Fraction of scored trials whose most likely action at the last decision
        step is the correct choice, per network [P]."""
        return whole_sequence(self.score_terms, model, sim, trials)

    @staticmethod
    def loss_terms(z, trials: SequenceTrials):
        """The loss's sums (tasks.flipflop.sequence_mean): weighted negative
        log-likelihoods of the targets, and the weights' sum."""
        nll = -torch.log_softmax(z, -1).gather(-1, _expand_members(trials.targets, z)
                                               .unsqueeze(-1))[..., 0]
        w = trials.mask.to(z.dtype)
        return member_sums(nll * w), member_sums(w)

    @staticmethod
    def score_terms(z, trials: SequenceTrials):
        """The score's sums: scored trials with the right action, and scored trials."""
        ok = (z.argmax(-1) == trials.targets).to(torch.float64)
        hold = trials.hold.to(torch.float64)
        return member_sums(ok * hold), member_sums(hold)

    def decision_variable(self, model, x: torch.Tensor) -> torch.Tensor:
        """logit(choice 1) − logit(choice 2) at states ``x`` [P, m, S] -> [P, m]: the
        scalar the input-topology descriptor orders a static input's points by."""
        z = model.outputs(x.unsqueeze(0))[0]
        return z[..., 1] - z[..., 2]

    # ---- probes for the analyses ----------------------------------------------------
    def _levels(self, kind: str) -> np.ndarray:
        cohs = [c for c in self.spec.cohs if c > 0]
        if kind == "large":
            return np.linspace(-max(cohs), max(cohs), 5)
        if kind in ("small", "sparse"):
            return np.linspace(-min(cohs), min(cohs), 21 if kind == "small" else 11)
        raise ValueError(f"unknown static input set {kind!r}: use large, small or sparse")

    def _static(self, levels: np.ndarray) -> StaticInputs:
        rows, ev, ctx = [], [], []
        for k in range(self.n_contexts):
            for c in levels:
                rows.append(self.spec.static(float(c), k))
                ev.append(float(c) / 100.0)
                ctx.append(k)
        return StaticInputs(np.array(rows), np.array(ev), np.array(ctx, dtype=np.int64))

    def static_inputs(self, kind: str) -> StaticInputs:
        """The stimulus period's input at the set's signed coherences (percent;
        evidence in the result is coherence / 100), per context."""
        return self._static(self._levels(kind))

    def svcca_inputs(self, levels: int = 10) -> StaticInputs:
        """``levels`` signed coherences evenly spaced over ±the largest, per context."""
        top = max(self.spec.cohs)
        return self._static(np.linspace(-top, top, levels))

    def static_trials(self, static: StaticInputs, steps: int | None = None) -> torch.Tensor:
        T = steps or self.steps
        u = torch.as_tensor(static.values, dtype=torch.float32)
        return u.unsqueeze(0).expand(T, *u.shape).contiguous()


def gym_task(family: str, noise: float | None = None, mean: float | None = None) -> GymTask:
    """The neurogym task ``family`` (a key of :data:`ENVS`) at input noise ``noise``."""
    if mean not in (None, 0, 0.0):
        raise UserError(f"-m/--mean does not apply to {family}: neurogym sets its own stimulus "
                        f"strengths ({', '.join(f'{c:g}' for c in ENVS[family].cohs)} % "
                        f"coherence)")
    task = GymTask(family, 1.0 if noise is None else float(noise))
    task.env                     # neurogym present, the environment builds
    return task
