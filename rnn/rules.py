"""The learning rules: which trainer a model name selects, and how to build it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from rnn.errors import UserError

# prefix -> rule, longest first (as in the original: bptt/bp, ga/ge, ff, heb/he)
PREFIXES = (("bptt", "bptt"), ("heb", "heb"), ("bp", "bptt"), ("ga", "ga"), ("ge", "ga"),
            ("ff", "ff"), ("he", "heb"))
RULES = ("bptt", "ga", "ff", "heb")
RULE_NAMES = {"bptt": "backpropagation through time", "ga": "genetic algorithm",
              "ff": "full-FORCE", "heb": "reward-modulated Hebbian (Miconi 2017)"}
# the activation each rule uses unless --relu is given
ACTIVATION = {"bptt": "one_plus_tanh", "ga": "one_plus_tanh", "ff": "tanh", "heb": "tanh"}
# what the stall rule (every validation of the last 500 updates below 0.6) does unless
# --on-stall is given.  Hebbian networks often sit at chance for a long time and then
# learn (bench/bench_stall.py: RDM seed 7 at 0.498-0.500 until update 1400, converged at 2272),
# so a stalled Hebbian network is reported and trains on; the other rules stop.
ON_STALL = {"bptt": "stop", "ga": "stop", "ff": "stop", "heb": "continue"}


def prefix_list() -> str:
    return ", ".join(f"{p}… → {r}" for p, r in PREFIXES)


def rule_from_name(name: str) -> str:
    low = name.lower()
    for prefix, rule in PREFIXES:
        if low.startswith(prefix):
            return rule
    raise UserError(f"cannot tell the learning rule from the name {name!r}: start it with a "
                    f"known prefix ({prefix_list()}) or pass --rule")


@dataclass(frozen=True)
class RuleSpec:
    config_cls: type
    make: Callable          # (cfg, task, seeds, device, activation, protocol) -> Trainer
    unit: str               # what one update is called (step, generation, trial, batch)


def spec(rule: str) -> RuleSpec:
    """The trainer of ``rule`` (imported lazily)."""
    if rule == "bptt":
        from rnn.bptt import BPTTConfig, BPTTTrainer
        return RuleSpec(BPTTConfig, BPTTTrainer, "step")
    if rule == "ga":
        from rnn.ga import GAConfig, GATrainer
        return RuleSpec(GAConfig, GATrainer, "generation")
    if rule == "ff":
        from rnn.fullforce import FFConfig, FFTrainer
        return RuleSpec(FFConfig, FFTrainer, "trial")
    if rule == "heb":
        from rnn.hebbian import HebbConfig, HebbTrainer
        return RuleSpec(HebbConfig, HebbTrainer, "batch")
    raise UserError(f"unknown rule {rule!r}; known rules: {', '.join(RULES)}")


def make_config(rule: str, task, max_steps: int | None):
    """The rule's default config for ``task`` (some defaults depend on it)."""
    s = spec(rule)
    cfg = s.config_cls.for_task(task) if hasattr(s.config_cls, "for_task") else s.config_cls()
    if max_steps is not None:
        cfg = dataclasses.replace(cfg, max_steps=int(max_steps))
    return cfg
