"""The rule registry: every rule's record is complete and is what the tool reads."""
import dataclasses

import pytest

from rnn import rules
from rnn.grid.format import Cell
from rnn.model import ACTIVATIONS, READOUTS
from rnn.protocol import Protocol
from rnn.sizing import bytes_per_network
from tasks import ncdi


@pytest.mark.parametrize("name", rules.RULES)
def test_each_record_is_complete_and_consistent(name):
    r = rules.get(name)
    assert r.name == name and r.trainer_cls().rule == name
    assert r.activation in ACTIVATIONS and r.readout in READOUTS
    assert r.on_stall in ("stop", "continue") and r.chunk >= 1 and r.label
    cfg = r.make_config(ncdi(2, 0.5), 7)
    assert dataclasses.is_dataclass(cfg) and cfg.max_steps == 7
    assert bytes_per_network(name, ncdi(2, 0.5), 50, r.make_config(ncdi(2, 0.5))) > 1e6
    for p in r.prefixes:
        assert rules.rule_from_name(f"{p.upper()}_x") == name
    # the original protocol's budget comes from the record, or the rule's own
    assert Protocol.named("original").budget(name, 123) == (r.original_budget or 123)
    assert Protocol.named("clean").budget(name, 123) == 123
    # a grid cell of the rule takes its chunk from the record
    assert Cell(task="rdm", rule=name).chunk_size() == r.chunk


def test_prefixes_are_unambiguous_and_longest_first():
    pairs = [(p, r.name) for r in rules.REGISTRY.values() for p in r.prefixes]
    assert len({p for p, _ in pairs}) == len(pairs)
    assert rules.rule_from_name("heb_a") == "heb" and rules.rule_from_name("hello") == "heb"
    assert rules.rule_from_name("bptt_a") == "bptt" and rules.rule_from_name("bp1") == "bptt"


def test_an_unknown_rule_is_a_user_error():
    with pytest.raises(rules.UserError, match="known rules: bptt, ga, ff, heb, eprop, rflo"):
        rules.get("nosuch")
    with pytest.raises(rules.UserError, match="rule must be one of"):
        Cell(task="rdm", rule="nosuch")


def test_the_help_lists_every_rule():
    text = rules.rules_help()
    for name in rules.RULES:
        assert f"  {name} " in text


def test_one_size_check_for_the_command_line_and_grid_files():
    with pytest.raises(rules.UserError, match="needs at least 12"):
        Cell(task="rdm", rule="heb", hidden=8)
    with pytest.raises(rules.UserError, match="between 2 and 4096, got 5000"):
        Cell(task="rdm", rule="bptt", hidden=5000)
    assert Cell(task="rdm", rule="bptt", hidden=2).hidden == 2
