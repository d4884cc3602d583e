"""The learning rules, one record each: everything the rest of the tool knows about a rule.

Every script, the grid runner, the sizing of population batches, the
protocols, the importers and the experiments read a rule's facts from its
:class:`Rule` record in :data:`REGISTRY` and nowhere else.  Adding a rule
means writing its module (a config dataclass and a :class:`rnn.training.Trainer`)
and adding its record here.

This module imports no torch: ``run_grid.py --list`` and the help texts stay
fast.  The trainer and config classes are imported when first used.

The rules' modules, one each (a record's ``module`` names it; a test keeps
this list equal to the folder's modules):

    bptt       backpropagation through time (Adam)
    ga         the genetic algorithm, a population per network
    fullforce  full-FORCE: recursive least squares towards a target network
    hebbian    Miconi's node-perturbation Hebbian rule
    eprop      e-prop: eligibility traces and the readout's error feedback
    rflo       RFLO: e-prop's traces with a fixed random feedback vector
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Callable

from rnn.errors import UserError


@dataclass(frozen=True)
class Rule:
    name: str                 # what cells, files and --rule call it
    label: str                # its name in tables and figures
    long_name: str            # its name in messages and NAME.json's rule_name
    prefixes: tuple[str, ...]  # model names starting with these pick the rule
    module: str               # the module holding its config and trainer ...
    config: str               # ... the config dataclass (defaults; optional for_task(task))
    trainer: str              # ... and the Trainer subclass
    activation: str           # φ unless --relu (rnn.model.ACTIVATIONS)
    readout: str              # rnn.model.READOUTS
    unit: str                 # what one update is called (progress bars, messages)
    on_stall: str             # what the stall rule does unless --on-stall: stop | continue
    chunk: int                # networks per grid job on a CPU (rnn.grid)
    memory: Callable          # (task, hidden, cfg) -> floats one more network needs in an
                              # update (rnn.sizing; fitted by bench/bench_memory.py)
    help: str                 # its defaults, for train_models.py --help
    original_budget: int | None = None  # updates under --original-budgets (None: its own)
    min_hidden: int = 2       # fewest units it can train
    archs: tuple[str, ...] = ("rate",)  # the architectures it trains (rnn.arch.ARCHS)
    sequence_tasks: bool = False  # trains tasks whose every step has a target (flip-flop)

    def config_cls(self) -> type:
        return getattr(importlib.import_module(self.module), self.config)

    def trainer_cls(self) -> type:
        return getattr(importlib.import_module(self.module), self.trainer)

    def make_config(self, task, max_steps: int | None = None):
        """The rule's default config for ``task`` (some defaults depend on it)."""
        cls = self.config_cls()
        cfg = cls.for_task(task) if hasattr(cls, "for_task") else cls()
        if max_steps is not None:
            cfg = dataclasses.replace(cfg, max_steps=int(max_steps))
        return cfg

    def make(self, cfg, task, seeds: list[int], device, activation: str | None = None,
             protocol=None, arch: str = "rate"):
        """The rule's trainer of the networks ``seeds`` (the rule's activation unless given)."""
        self.check_arch(arch)
        kw = {} if protocol is None else {"protocol": protocol}
        if arch != "rate":
            kw["arch"] = arch
        return self.trainer_cls()(cfg, task, seeds, device, activation or self.activation, **kw)

    def check_task(self, task) -> None:
        """A UserError, in one line, unless the rule trains ``task``."""
        if getattr(task, "sequence", False) and not self.sequence_tasks:
            can = [r.name for r in REGISTRY.values() if r.sequence_tasks]
            raise UserError(f"the {self.long_name} rule trains the decision tasks (a target at "
                            f"the end of a trial) only; {task.name} has a target at every step "
                            f"and trains with {' or '.join(can)}")

    def check_arch(self, arch: str) -> None:
        """A UserError, in one line, unless the rule trains the architecture ``arch``."""
        from rnn.arch import ARCHS
        if arch not in ARCHS:
            raise UserError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
        if arch not in self.archs:
            can = [r.name for r in REGISTRY.values() if arch in r.archs]
            raise UserError(f"the {self.long_name} rule trains only the rate network (--arch "
                            f"rate): it is defined on that network's equations; {arch} "
                            f"networks train with {' or '.join(can)}")


_HEB_HELP = """\
Miconi (2017) node perturbation: bias units 1, 10, 11 clamped to +1, +1, -1;
kicks with probability 0.01 per unit and step, uniform in +-10 (+-1 in x
at dt 0.1); eligibility sum of (r_j(t-1) dx_i(t))^3, dx the fluctuation
around a running average (factor 0.05); dW = -0.05 (R - Rbar) e,
averaged over a batch of 100 parallel trials and clipped to +-1e-3; R the
mean |z - target| over the last 200 steps, Rbar a running average
(factor 0.75) per trial type (context x target sign x 5 strength bins);
W_rec starts at (1.5/sqrt(50)) N(0,1) as in Miconi's code; at most
3000 batches.  Why these values: rnn/rules/hebbian.py."""

_GRADIENT_LOCAL = """\
W_rec and W_out by Adam (lr 5e-4, 500 trials per step, as BPTT); the W_rec
gradient replaced by eligibility traces (each synapse's own effect on its
unit, leaking at dt) times the output error fed back through
{fb}; at most 5000 steps.  Derivation: rnn/rules/eprop.py."""

REGISTRY: dict[str, Rule] = {r.name: r for r in (
    Rule("bptt", "BPTT", "backpropagation through time", ("bptt", "bp"),
         "rnn.rules.bptt", "BPTTConfig", "BPTTTrainer",
         "one_plus_tanh", "linear", "step", "stop", 8,
         # each step's rates are kept for the backward pass (measured 86 MB)
         lambda task, H, cfg: 1.15 * task.steps * cfg.batch * H,
         "Adam (lr 5e-4) on W_rec only, 500 trials per step, at most 20000 steps\n"
         "(on every weight for --arch vanilla, gru, lstm, by autograd).",
         original_budget=2000, archs=("rate", "vanilla", "gru", "lstm"), sequence_tasks=True),
    Rule("ga", "GA", "genetic algorithm", ("ga", "ge"),
         "rnn.rules.ga", "GAConfig", "GATrainer",
         "one_plus_tanh", "linear", "generation", "stop", 2,
         # the batch's inputs, the members' states (measured 21 MB)
         lambda task, H, cfg: 2 * task.steps * cfg.batch * task.n_inputs
         + 5 * cfg.population * cfg.batch * H,
         "population 50 (RDM) or 20 (CDI/N-CDI), the best 5 breed, the best is kept,\n"
         "mutation 0.005*N(0,1) on W_in, W_rec, W_out; 500 shared trials per\n"
         "generation; at most 2000 generations (every weight and bias mutates\n"
         "for --arch vanilla, gru, lstm).",
         original_budget=2000, archs=("rate", "vanilla", "gru", "lstm"), sequence_tasks=True),
    Rule("ff", "FF", "full-FORCE", ("ff",),
         "rnn.rules.fullforce", "FFConfig", "FFTrainer", "tanh", "tanh_rates", "trial", "stop", 4,
         # trial records, teacher, RLS matrices (measured 20 MB)
         lambda task, H, cfg: 140 * task.steps * H,
         "full-FORCE: teacher network (g 1) driven by input + target + hint;\n"
         "RLS with P0 = I/alpha (alpha 50000 RDM, 10000 CDI) at step 0 and every\n"
         "step from 200; one trial per update; restart after 5000 trials; at most\n"
         "25000 trials (5 attempts)."),
    # Hebbian networks often sit at chance for a long time and then learn
    # (bench/bench_stall.py: RDM seed 7 at 0.498-0.500 until update 1400,
    # converged at 2272), so a stalled Hebbian network is reported and trains on.
    Rule("heb", "HEB", "reward-modulated Hebbian (Miconi 2017)", ("heb", "he"),
         "rnn.rules.hebbian", "HebbConfig", "HebbTrainer", "tanh", "unit0", "batch", "continue", 4,
         # the eligibility histories dx^3 and r^3, the perturbations, the inputs (66 MB)
         lambda task, H, cfg: 4 * task.steps * cfg.batch * H + task.steps * cfg.batch
         * task.n_inputs,
         _HEB_HELP, min_hidden=12),
    Rule("eprop", "EPROP", "e-prop (symmetric feedback; Bellec et al. 2020)", ("eprop",),
         "rnn.rules.eprop", "EpropConfig", "EpropTrainer",
         "one_plus_tanh", "linear", "step", "stop",
         8,
         # each step's rates are kept for the traces (as BPTT)
         lambda task, H, cfg: 1.15 * task.steps * cfg.batch * H,
         _GRADIENT_LOCAL.format(fb="the readout weights W_out")),
    Rule("rflo", "RFLO", "random feedback local online learning (Murray 2019)", ("rflo",),
         "rnn.rules.rflo", "RFLOConfig", "RFLOTrainer",
         "one_plus_tanh", "linear", "step", "stop", 8,
         lambda task, H, cfg: 1.15 * task.steps * cfg.batch * H,
         _GRADIENT_LOCAL.format(fb="a fixed random vector B")),
)}
RULES = tuple(REGISTRY)


MAX_HIDDEN = 4096


def check_hidden(rule: str, hidden: int) -> None:
    """The one check of a network size, for train_models.py and grid files alike."""
    low = get(rule).min_hidden
    if not low <= hidden <= MAX_HIDDEN:
        why = "" if low == 2 else f" (the {get(rule).long_name} rule needs at least {low} units)"
        raise UserError(f"hidden must be between {low} and {MAX_HIDDEN}{why}, got {hidden}")


def get(rule: str) -> Rule:
    """The record of ``rule``."""
    try:
        return REGISTRY[rule]
    except KeyError:
        raise UserError(f"unknown rule {rule!r}; known rules: {', '.join(RULES)}") from None


def _prefixes() -> list[tuple[str, str]]:
    """(prefix, rule), longest prefix first."""
    pairs = [(p, r.name) for r in REGISTRY.values() for p in r.prefixes]
    return sorted(pairs, key=lambda pr: -len(pr[0]))


def prefix_list() -> str:
    return ", ".join(f"{p}… → {r}" for p, r in _prefixes())


def prefix_summary() -> str:
    """'bptt/bp, ga/ge, …' (each rule's prefixes)."""
    return ", ".join("/".join(r.prefixes) for r in REGISTRY.values())


def rule_from_name(name: str) -> str:
    low = name.lower()
    for prefix, rule in _prefixes():
        if low.startswith(prefix):
            return rule
    raise UserError(f"cannot tell the learning rule from the name {name!r}: start it with a "
                    f"known prefix ({prefix_list()}) or pass --rule")


def rules_help() -> str:
    """Each rule's defaults, as train_models.py --help lists them."""
    out = []
    for r in REGISTRY.values():
        lines = r.help.splitlines()
        out.append(f"  {r.name:<6}" + lines[0])
        out += [" " * 8 + ln for ln in lines[1:]]
    return "\n".join(out)
