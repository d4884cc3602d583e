"""Training protocols: this tool's clean one, and the original study's, switch by switch.

The original research code (McMahan et al., public repository, commit 4b4fb8a
that produced the paper's distance matrix) trained its networks with a few
behaviours that this tool does not copy by default.  Each is one field of
:class:`Protocol`, so an experiment can remove one at a time:

``shared_x0``
    one initial state x0 ~ 0.3·N(0, 1) per training batch, shared by all its
    trials (the original's ``_init_hidden()`` draws a single column); for the
    GA one state per generation shared by every trial and every member.  The
    clean protocol draws an independent state for every trial.
``lenient_stop``
    the original's stop-rule accuracy: validation trials of strength 0 have
    target sign(0) = 0, and an error counts only above its tolerance of 1, so
    they are always correct; and the validation initial states are redrawn at
    every check.  The clean protocol scores strength-0 trials against a random
    sign (chance) on fixed initial states.
``original_budgets``
    BPTT stops at 2000 updates (the original's effective budget) instead of
    20,000; the GA budget is 2000 generations in both.  Networks that reach the
    budget are saved with status ``budget`` either way; the original analysed
    them too — experiments say whether they include them.
``hidden``
    number of units (50; parts of the original's history used 100 for N-CDI).

``--N 1`` is the original's N = 1 task in both protocols (one evidence
channel plus a constant cue: two inputs; GA population 20).

The shared training loop and every trainer receive one Protocol; the
per-trial/shared initial state is drawn by :meth:`Protocol.initial_states`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from rnn.rng import Streams

X0_SCALE = 0.3     # each trial starts from x0 ~ 0.3·N(0, 1)
SWITCHES = ("shared_x0", "lenient_stop", "original_budgets")


@dataclass(frozen=True)
class Protocol:
    shared_x0: bool = False          # one x0 per batch/generation, shared by its trials
    lenient_stop: bool = False       # strength-0 validation trials correct; x0 redrawn per check
    original_budgets: bool = False   # BPTT at most 2000 updates
    hidden: int = 50                 # units

    @staticmethod
    def named(name: str) -> "Protocol":
        """``clean`` (this tool's defaults) or ``original`` (every switch on)."""
        if name == "clean":
            return Protocol()
        if name == "original":
            return Protocol(shared_x0=True, lenient_stop=True, original_budgets=True)
        raise ValueError(f"unknown protocol {name!r}: use clean or original")

    def without(self, switch: str) -> "Protocol":
        """This protocol with one switch turned off (for ablations)."""
        if switch not in SWITCHES:
            raise ValueError(f"unknown switch {switch!r}; known: {', '.join(SWITCHES)}")
        return dataclasses.replace(self, **{switch: False})

    def label(self) -> str:
        """'clean', 'original', or the switches that are on."""
        on = [s for s in SWITCHES if getattr(self, s)]
        base = ("original" if len(on) == len(SWITCHES) else
                "clean" if not on else "+".join(on))
        return base if self.hidden == 50 else f"{base}, {self.hidden} units"

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "label": self.label()}

    @staticmethod
    def from_dict(d) -> "Protocol":
        """The protocol a network's JSON records (``to_dict``); ValueError when
        it is not one."""
        fields = {f.name: f.type for f in dataclasses.fields(Protocol)}
        if not isinstance(d, dict) or not set(fields) <= set(d):
            raise ValueError("no complete protocol record")
        kw = {k: d[k] for k in fields}
        for k, v in kw.items():
            want = int if k == "hidden" else bool
            if type(v) is not want:
                raise ValueError(f"protocol field {k} is {v!r}")
        return Protocol(**kw)

    def budget(self, rule: str, default: int) -> int:
        """Updates of ``rule`` under this protocol (its record's original budget, if any,
        with ``original_budgets``)."""
        if not self.original_budgets:
            return default
        from rnn.rules import get
        return get(rule).original_budget or default

    def initial_states(self, rng: Streams, n: int, hidden: int) -> torch.Tensor:
        """Initial states of ``n`` trials per network [P, n, H]: independent
        per trial, or one state shared by all ``n`` (``shared_x0``)."""
        if self.shared_x0:
            return (X0_SCALE * rng.normal(1, hidden)).expand(rng.n, n, hidden).contiguous()
        return X0_SCALE * rng.normal(n, hidden)


CLEAN = Protocol()
