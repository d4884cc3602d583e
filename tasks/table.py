"""The task table: every task the tool trains, by name, parsed here and nowhere
else.

A task is a *family* (one record of :data:`TABLE`) and, for a family with
contexts, its number of contexts N.  Its one spelling (:attr:`TaskName.spelling`,
also :attr:`tasks.DecisionTask.name` and ``meta.task.name`` in model files) is

    rdm        random-dot motion (one input)
    cdi        context-dependent integration: N-CDI with N = 2
    ncdiN      N-CDI with N contexts (N = 1, 3, 4, ...; ncdi2 is spelt cdi)
    flipflop   the 3-bit flip-flop (tasks/flipflop.py; a target at every step)
    ngpdm      neurogym's PerceptualDecisionMaking-v0 (tasks/gym.py)
    ngcdm      neurogym's ContextDecisionMaking-v0 (tasks/gym.py)

:func:`parse` reads any of these, or a family and N given apart (``task =
"ncdi"``, ``N = 3`` in a grid file; ``api.task("ncdi", N=3)``; ``--N 3`` on the
command line).  Adding a decision task is its generator and its record here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from tasks.decision import DEFAULT_MEAN, TRIAL_STEPS, DecisionTask, ncdi, rdm
from tasks.flipflop import FLIPFLOP_STEPS, flipflop
from tasks.gym import ENVS, gym_task


@dataclass(frozen=True)
class TaskRecord:
    """One family of tasks."""
    family: str                  # the key of TABLE: rdm | ncdi
    title: str                   # for people: RDM | N-CDI
    has_contexts: bool           # needs N, its number of contexts
    make: Callable[..., DecisionTask]     # (N, noise, mean, steps) -> the task
    # train_models.py's flags for it (default: --task FAMILY, and --N N)
    flags: Callable[[int | None], list[str]] | None = None
    # noise (-v), mean (-m) and trial steps where none are given
    defaults: tuple = (0.5, DEFAULT_MEAN, TRIAL_STEPS)


TABLE: dict[str, TaskRecord] = {
    "rdm": TaskRecord("rdm", "RDM", False, lambda N, v, m, s: rdm(v, m, s),
                      lambda N: ["--rdm"]),
    "ncdi": TaskRecord("ncdi", "N-CDI", True, lambda N, v, m, s: ncdi(N, v, m, s),
                       lambda N: ["--N", str(N)]),
    # pulses of height 1 without noise, as Sussillo & Barak's
    "flipflop": TaskRecord("flipflop", "3-bit flip-flop", False,
                           lambda N, v, m, s: flipflop(v, m, s),
                           defaults=(0.0, 1.0, FLIPFLOP_STEPS)),
    # neurogym's environments at their own sigma (1), strengths and timing
    **{fam: TaskRecord(fam, env.title, False,
                       (lambda f: lambda N, v, m, s: gym_task(f, v, m))(fam),
                       defaults=(1.0, None, None))
       for fam, env in ENVS.items()},
}
ALIASES = {"cdi": ("ncdi", 2)}           # spellings that fix N
_SPELT = re.compile(r"(?P<family>[a-z]+?)(?P<N>[1-9][0-9]*)?")


@dataclass(frozen=True)
class TaskName:
    """A task without its noise and trial settings: family and N."""
    family: str
    N: int | None = None

    @property
    def record(self) -> TaskRecord:
        return TABLE[self.family]

    @property
    def spelling(self) -> str:
        """rdm | cdi | ncdiN: the one name of the task in files and cell names."""
        for alias, (family, N) in ALIASES.items():
            if (family, N) == (self.family, self.N):
                return alias
        return self.family if self.N is None else f"{self.family}{self.N}"

    @property
    def label(self) -> str:
        """RDM | N = 3: how tables and figures name the task."""
        return self.record.title if self.N is None else f"N = {self.N}"

    @property
    def order(self) -> int:
        """Sorts tasks by complexity: RDM first, then by N."""
        return 0 if self.N is None else self.N

    def flags(self) -> list[str]:
        if self.record.flags is not None:
            return self.record.flags(self.N)
        return ["--task", self.family] + ([] if self.N is None else ["--N", str(self.N)])

    def make(self, noise: float | None = None, mean: float | None = None,
             steps: int | None = None) -> DecisionTask:
        """The task at these settings; those not given are the family's defaults
        (decision tasks: -v 0.5, -m 0.1857, 750 steps)."""
        v, m, s = self.record.defaults
        return self.record.make(self.N, v if noise is None else noise,
                                m if mean is None else mean, s if steps is None else steps)


def parse(name, N=None, what: str = "task") -> TaskName:
    """The task spelt ``name`` (rdm, cdi, ncdiN, or a family with ``N`` apart);
    a UserError naming ``what`` for anything else or a contradiction."""
    from rnn import validate as V
    from rnn.errors import UserError
    known = ", ".join([*TABLE, *ALIASES, "ncdiN"])
    if not isinstance(name, str):
        raise UserError(f"{what} must be one of {known}, got {name!r}")
    if name in ALIASES:
        family, fixed = ALIASES[name]
        if N is not None and V.contexts(N, f"{what} {name}: N") != fixed:
            raise UserError(f"{what} {name} has N = {fixed}, not {N}")
        return TaskName(family, fixed)
    m = _SPELT.fullmatch(name)
    if m is None or m["family"] not in TABLE:
        raise UserError(f"{what} must be one of {known}, got {name!r}")
    rec = TABLE[m["family"]]
    spelt = int(m["N"]) if m["N"] else None
    if not rec.has_contexts:
        if spelt is not None or N is not None:
            raise UserError(f"{what} {rec.family} has no contexts: give no N")
        return TaskName(rec.family)
    if spelt is not None and N is not None and spelt != N:
        raise UserError(f"{what} {name} has N = {spelt}, not {N}")
    N = spelt if spelt is not None else N
    if N is None:
        raise UserError(f"{what} {rec.family} needs N, its number of contexts")
    return TaskName(rec.family, V.contexts(N, f"{what} {rec.family}: N"))


def family_of(spelling) -> str | None:
    """The family a spelling names (rdm, cdi, ncdiN, ...), N aside; None if none."""
    if not isinstance(spelling, str):
        return None
    if spelling in ALIASES:
        return ALIASES[spelling][0]
    m = _SPELT.fullmatch(spelling)
    return m["family"] if m and m["family"] in TABLE else None


def of(task: DecisionTask) -> TaskName:
    """The name of a built task."""
    return parse(task.name)
