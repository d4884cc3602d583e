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

from rnn.model import network_chunks
from rnn.rng import Streams
from tasks.decision import StaticInputs

BITS = 3
FLIPFLOP_STEPS = 200
PULSE_STEPS = 5
ONSET = 0.02          # probability per step and channel that a pulse starts (4 a trial)
TOLERANCE = 0.5       # a held output counts as right within this of its target
ORBIT_WINDOW = 64    # memory_orbits: the longest period looked for
ORBIT_TOL = 1e-4     # ... and how near the state must return (relative)
SETTLE_STEPS = 10000  # a moving memory followed this much further: at rest then, it was
                      # approaching a fixed point (a slow spiral), not on an orbit
START_TRIALS = 32     # trials whose states seed the fixed-point search (start_trials)
# score_by_lag's bins of the steps since a bit's last pulse ended (None: no end)
LAG_BINS = ((1, 5), (6, 10), (11, 20), (21, None))
CROSSTALK_STEPS = 10  # ... and, in its last bin, "another bit pulsed" within this many steps


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

    def window(self, t0: int, t1: int) -> "SequenceTrials":
        """Steps t0..t1−1 of every trial."""
        return SequenceTrials(self.inputs[t0:t1], self.targets[t0:t1], self.mask[t0:t1],
                              self.hold[t0:t1])

    def per_member(self) -> "SequenceTrials":
        """The targets, mask and hold with a member axis of size 1 after the network
        axis ([T, R, 1, n, ...]), to meet outputs viewed as [T, R, G, n, O]."""
        return SequenceTrials(self.inputs, self.targets.unsqueeze(2), self.mask.unsqueeze(2),
                              self.hold.unsqueeze(2))


SEQUENCE_WINDOW = 16     # steps simulated at a time by sequence_mean, at most ...
# ... and fewer where a window's states would pass this many floats (24 MB): glibc
# serves smaller blocks from its heap again and again, larger ones are mapped
# afresh each time and fault their pages in (the rate network's flip-flop GA,
# 2 x 50 members: a 16-step window 8.7 s a generation, a 2-step one 7.4 s)
SEQUENCE_FLOATS = 6 * 2 ** 20


def sequence_mean(model, trials: SequenceTrials, x0: torch.Tensor, terms, members: int = 1,
                  window: int | None = None) -> torch.Tensor:
    """A sequence task's loss or score, [P], from its two sums taken ``window``
    steps at a time, so that no [T, P, n, S] stack of every state is ever held.

    ``model`` holds P = R·``members`` networks: each run's ``members`` consecutive
    networks share that run's trials (a GA population; 1: one trial set per
    network).  ``trials`` [T, R, n, ...], ``x0`` [R or P, n, S]; ``terms(z,
    trials)`` is the task's (``loss_terms`` or ``score_terms``): outputs z
    [c, R, G, n, O] of c steps and those steps' trials (``per_member``) ->
    (numerator [R, G], denominator [R, 1]), each a plain sum over those steps.
    ``window``: steps at a time (default: ``SEQUENCE_WINDOW``, fewer for a large
    population, see ``SEQUENCE_FLOATS``).
    The same value as one pass over all the steps, up to the order in which
    floats are added (the GA's loss on the flip-flop: 1.7x faster,
    bench/bench_ga_eval.py).  A population of discrete-time networks is taken
    a chunk of networks at a time (``model.chunk``, rnn.arch.CHUNK_FLOATS), each
    chunk over all its steps, so that a window holds more steps of fewer networks."""
    T, R, n = trials.inputs.shape[:3]
    P = model.n_networks
    most = model.chunk(n)
    if most < P:
        return torch.cat([
            sequence_mean(model.select(torch.arange(a, e)), trials.select(slice(j0, j1)),
                          x0[j0:j1] if x0.shape[0] == R else x0[a:e], terms,
                          (e - a) // (j1 - j0), window)
            for a, e, j0, j1 in network_chunks(P, R, most)])
    if window is None:
        per_step = P * n * model.hidden
        window = max(1, min(SEQUENCE_WINDOW, SEQUENCE_FLOATS // per_step))
    num = den = 0.0
    x = x0
    for t0 in range(0, T, window):
        part = trials.window(t0, t0 + window)
        sim = model.simulate(part.inputs, x, keep="all")
        z = model.outputs(sim.states)                               # [c, P, n, O]
        z = z.view(z.shape[0], R, members, *z.shape[2:])
        a, b = terms(z, part.per_member())
        num, den = num + a, den + b
        x = sim.x_last
    return ratio(num, den).reshape(-1)


def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den of a sequence task's sums; 0 where nothing counts (den = 0, and
    then num = 0: every term is weighted by what den sums)."""
    return num / den.clamp_min(1e-12)


def member_sums(x: torch.Tensor) -> torch.Tensor:
    """Sum over every axis of [c, R, G, n, ...] but the run and member axes -> [R, G]."""
    return x.sum(dim=(0, *range(3, x.dim())))


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
        return whole_sequence(self.loss_terms, model, sim, trials)

    def score(self, model, sim, trials: SequenceTrials) -> torch.Tensor:
        """Fraction of held (step, bit) pairs whose output lies within ``TOLERANCE``
        of the held sign, per network [P]."""
        return whole_sequence(self.score_terms, model, sim, trials)

    @staticmethod
    def loss_terms(z, trials: SequenceTrials):
        """The loss's sums (:func:`sequence_mean`): squared errors where the mask is
        1, and the mask's count."""
        err = (z - trials.targets.to(z.dtype)) ** 2 * trials.mask.to(z.dtype)
        return member_sums(err), member_sums(trials.mask.to(z.dtype))

    @staticmethod
    def score_terms(z, trials: SequenceTrials):
        """The score's sums: held (step, bit) pairs within ``TOLERANCE``, and the held
        pairs, in float64."""
        ok = ((z - trials.targets.to(z.dtype)).abs() < TOLERANCE).to(torch.float64)
        hold = trials.hold.to(torch.float64)
        return member_sums(ok * hold), member_sums(hold)

    def score_by_lag(self, model, trials: SequenceTrials, x0: torch.Tensor,
                     bins=LAG_BINS, crosstalk: int = CROSSTALK_STEPS) -> dict:
        """Where a network's errors lie in time: the score (:meth:`score_terms`) of
        one network (P = 1) on ``trials`` [T, 1, n, B] from ``x0`` [1, n, S], over
        every held (step, bit) pair and per bin (lo, hi) of the steps since that
        bit's last pulse ended (:func:`steps_since_pulse`; hi None: no end).  A
        network that is slow to flip loses its score in the first steps after
        each pulse (half of the pulses repeat the held sign and cost nothing).
        Then, of the pairs in the last bin (long after their own pulse), the
        score where another bit pulsed within ``crosstalk`` steps (its pulse
        under way or ended at most that many steps before) and where none did:
        what a pulse on one channel costs the memories of the others.
        Returns {"score", "bins": [{"from", "to", "score", "share"}],
        "crosstalk": {"after", "within", "near": {"score", "share"}, "far": ...}},
        share the fraction of all held pairs, score None where nothing counts."""
        if model.n_networks != 1 or trials.inputs.shape[1] != 1:
            raise ValueError("score_by_lag takes one network and its one set of trials")
        since = steps_since_pulse(trials.hold)
        top = int(since.max())
        masks = [(since >= lo) & (since <= (hi if hi is not None else top)) for lo, hi in bins]
        B = since.shape[-1]                # the steps since any other bit's pulse ended
        other = torch.stack([since[..., [c for c in range(B) if c != b]].min(-1).values
                             for b in range(B)], -1)
        masks += [masks[-1] & (other <= crosstalk), masks[-1] & (other > crosstalk)]
        hold = trials.hold.cpu().to(torch.float64)
        ok_all, n_all = 0.0, hold.sum().item()
        good = [0.0] * len(masks)
        x = x0
        with torch.no_grad():
            for t0 in range(0, trials.inputs.shape[0], SEQUENCE_WINDOW):
                part = trials.window(t0, t0 + SEQUENCE_WINDOW)
                sim = model.simulate(part.inputs.to(model.device), x, keep="all")
                z = model.outputs(sim.states).cpu()                      # [c, 1, n, B]
                ok = ((z - part.targets.cpu().to(z.dtype)).abs() < TOLERANCE).to(torch.float64)
                ok = ok * hold[t0:t0 + SEQUENCE_WINDOW]
                ok_all += ok.sum().item()
                for i, m in enumerate(masks):
                    good[i] += ok[m[t0:t0 + SEQUENCE_WINDOW]].sum().item()
                x = sim.x_last
        sums = []
        for m, g in zip(masks, good):
            n = (hold * m).sum().item()
            sums.append({"score": g / n if n else None, "share": n / n_all if n_all else 0.0})
        return {"score": ok_all / n_all if n_all else None,
                "bins": [{"from": lo, "to": hi, **d} for (lo, hi), d in zip(bins, sums)],
                "crosstalk": {"after": bins[-1][0], "within": crosstalk, "near": sums[-2],
                              "far": sums[-1]}}

    def errors_by_lag(self, model, n: int = 2000, seed: int = 0) -> dict:
        """:meth:`score_by_lag` on ``n`` fresh trials, drawn with their initial
        states (0.3·N(0, 1)) from the PROBE stream of ``seed``: what
        analyze_dynamics.py prints and ``rnn.api.errors_by_lag`` returns."""
        from rnn.protocol import X0_SCALE
        from rnn.rng import PROBE
        from rnn.sizing import require_floats
        # the trials (5 floats a (step, trial, bit)), score_by_lag's masks and counts
        # (about 6 more), and one window's states
        require_floats(11 * self.steps * n * BITS + SEQUENCE_WINDOW * n * 4 * model.hidden,
                       f"{n} flip-flop trials of {self.steps} steps and their scores",
                       model.device)
        rng = Streams([seed], PROBE, model.device)
        trials = self.sample(n, rng)
        return self.score_by_lag(model, trials, X0_SCALE * rng.normal(n, model.hidden))

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

    def memories_held(self, model, steps: int = 10 * FLIPFLOP_STEPS) -> int:
        """How many of the 2³ bit patterns the network (P = 1) holds from behaviour:
        each pulsed once (``PULSE_STEPS`` steps of ±``mean`` from the zero state),
        then ``steps`` steps of zero input, and held when the sign of every
        output at the end is the pattern's.  The ground truth the fixed points
        are checked against (a held memory is an attractor, or a point slow on
        this time scale)."""
        return sum(self.memory_states(model, steps, window=0)[0])

    def memory_orbits(self, model, steps: int = 10 * FLIPFLOP_STEPS,
                      window: int = ORBIT_WINDOW, tol: float = ORBIT_TOL) -> list[int]:
        """Where each of the 2³ bit patterns is held (the protocol of
        :meth:`memories_held`), one number per pattern: 0 when it is not held;
        else the period of the orbit the state is on after the ``steps``: 1 at a
        fixed point, p > 1 on a cycle of p steps (the state returns within
        ``tol`` · (1 + |h|) after p steps of zero input), −1 on an orbit with no
        period up to ``window`` steps (a longer cycle, a torus or chaos).  A
        memory held away from a fixed point has no stable point to explain it."""
        return self.orbits_and_states(model, steps, window, tol)[0]

    def orbits_and_states(self, model, steps: int = 10 * FLIPFLOP_STEPS,
                          window: int = ORBIT_WINDOW, tol: float = ORBIT_TOL,
                          settle: int = SETTLE_STEPS) -> tuple[list[int], torch.Tensor]:
        """:meth:`memory_orbits` and the states it read, [window + 1, 8, S] (those of
        :meth:`memory_states`).  A pattern that seems to move in the window
        (:func:`orbit_periods`) is followed ``settle`` steps further: if its
        state is at rest then (one step moves it within ``tol`` · (1 + |h|)), it
        was spiralling slowly into a fixed point — a stable focus whose
        eigenvalues' angle is near 2π/p can look like a p-cycle for a while —
        and its period is 1."""
        held, x = self.memory_states(model, steps, window)
        periods = orbit_periods(held, x, tol)
        moving = [k for k, p in enumerate(periods) if p not in (0, 1)]
        if moving and settle > 0:
            u = torch.zeros(settle + 1, 1, len(moving), BITS, dtype=model.dtype)
            with torch.no_grad():
                sim = model.simulate(u.to(model.device), x[-1:, moving].to(model.device),
                                     keep=settle)
            a, b = sim.states[-2, 0].cpu(), sim.states[-1, 0].cpu()
            rest = (b - a).norm(dim=-1) <= tol * (1 + a.norm(dim=-1))
            for k, r in zip(moving, rest.tolist()):
                if r:
                    periods[k] = 1
        return periods, x

    def memory_exponents(self, model, x: torch.Tensor, periods: list[int],
                         steps: int | None = None) -> list[float | None]:
        """The largest Lyapunov exponent per step (rnn.analysis.dynamics.
        largest_lyapunov) of each memory held away from a fixed point, from its
        state ``x[0, k]`` (:meth:`memory_states`) on, under zero input; None for a
        pattern not held or held at a fixed point.  Negative on a stable cycle,
        0 on a quasi-periodic orbit, positive on a chaotic one."""
        from rnn.analysis.dynamics import (LYAPUNOV_STEPS, largest_lyapunov,
                                           zero_input_advance)
        moving = [k for k, p in enumerate(periods) if p not in (0, 1)]
        out: list[float | None] = [None] * len(periods)
        if moving:
            lam = largest_lyapunov(zero_input_advance(model), x[0, moving],
                                   steps=steps or LYAPUNOV_STEPS)
            for k, v in zip(moving, lam.tolist()):
                out[k] = v
        return out

    @torch.no_grad()
    def memory_states(self, model, steps: int = 10 * FLIPFLOP_STEPS,
                      window: int = ORBIT_WINDOW) -> tuple[list[bool], torch.Tensor]:
        """Each bit pattern k (bit b = (k >> b) & 1, + for 1) pulsed once from the
        zero state, then ``steps`` steps of zero input: whether the outputs' signs
        hold it then, and the states from then on, [window + 1, 8, H] (on the CPU)."""
        pats = torch.tensor([[(k >> b) & 1 for b in range(BITS)] for k in range(2 ** BITS)],
                            dtype=model.dtype) * 2.0 - 1.0
        u = torch.zeros(PULSE_STEPS + steps + window, 1, 2 ** BITS, BITS, dtype=model.dtype)
        u[:PULSE_STEPS] = self.mean * pats
        x0 = torch.zeros(1, 2 ** BITS, model.hidden, dtype=model.dtype)
        x = model.simulate(u.to(model.device), x0.to(model.device),
                           keep="all").states[PULSE_STEPS + steps - 1:, 0].cpu()
        held = (torch.sign(model.outputs(x[:1].to(model.device))[0].cpu()) == pats).all(-1)
        return held.tolist(), x

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


def pattern_signs(k: int) -> str:
    """Bit pattern k as the signs of bits 1, 2, 3 (bit b is + when (k >> b) & 1),
    the order of every per-pattern list here: 0 is −−−, 7 is +++."""
    return "".join("+" if (k >> b) & 1 else "−" for b in range(BITS))


def steps_since_pulse(hold: torch.Tensor) -> torch.Tensor:
    """Per (step, ..., bit) of ``hold`` [T, ...] (1 outside the pulses, 0 in them):
    the steps since that bit's last pulse ended — 0 during a pulse, 1 on the
    first held step after it; a held step before any pulse counts from step −1."""
    T = hold.shape[0]
    t = torch.arange(T).view(T, *([1] * (hold.dim() - 1)))
    last = torch.where(hold.cpu() == 0, t, torch.full_like(t, -1)).cummax(dim=0).values
    return t - last


def lag_label(lo: int, hi: int | None) -> str:
    """A bin of :data:`LAG_BINS` for a person: '1–5', '21+'."""
    return f"{lo}+" if hi is None else f"{lo}–{hi}"


def orbit_periods(held: list[bool], x: torch.Tensor, tol: float = ORBIT_TOL) -> list[int]:
    """:meth:`FlipFlopTask.memory_orbits`' numbers from what
    :meth:`FlipFlopTask.memory_states` returned (so a caller that needs the
    states too simulates once): per pattern 0 if not held, else the first p ≤
    window with |x_p − x_0| ≤ ``tol`` · (1 + |x_0|), or −1 if there is none."""
    gap = (x[1:] - x[:1]).norm(dim=-1) <= tol * (1 + x[0].norm(dim=-1))      # [window, 8]
    return [0 if not h else (int(g.nonzero()[0, 0]) + 1 if g.any() else -1)
            for h, g in zip(held, gap.T)]


def whole_sequence(terms, model, sim, trials: SequenceTrials) -> torch.Tensor:
    """A sequence task's loss or score from a simulation that kept every state
    (one trial set per network): numerator / denominator of ``terms``, [P]."""
    z = model.outputs(sim.states).unsqueeze(2)                    # [T, P, 1, n, O]
    num, den = terms(z, trials.per_member())
    return ratio(num, den)[:, 0]


def flipflop(noise: float = 0.0, mean: float = 1.0, steps: int = FLIPFLOP_STEPS) -> FlipFlopTask:
    """The 3-bit flip-flop task."""
    return FlipFlopTask(float(noise), float(mean), int(steps))
