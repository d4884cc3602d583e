"""rnn/run.py, the library side of a training run: the plan (budgets, the
stop rule, --updates), the files (names, what is refused), and a run trained
in process equal to the same run of train_models.py."""
import dataclasses

import pytest
import torch

from rnn.errors import UserError
from rnn.io import load_model
from rnn.io.store import NameLock
from rnn.protocol import Protocol
from rnn.rules import RULES, get
from rnn.run import RunFiles, RunPlan, member_names, snapshot_names, train_run
from tasks import ncdi

import train_models


def plan(rule="bptt", protocol="clean", **kw):
    return RunPlan.make(rule, ncdi(2, 0.5), dataclasses.replace(Protocol.named(protocol),
                                                                hidden=8), **kw)


@pytest.mark.parametrize("rule", RULES)
def test_the_plan_takes_each_rule_s_budget_under_the_protocol(rule):
    p = plan(rule, "original")
    rs = get(rule)
    assert p.cfg.max_steps == Protocol.named("original").budget(rule, rs.make_config(
        p.task, None).max_steps)
    assert p.activation == rs.activation and p.unit == rs.unit
    assert plan(rule, max_steps=7).cfg.max_steps == 7
    assert plan(rule, relu=True).activation == "relu"


def test_updates_trains_exactly_k_updates_with_the_stop_and_stall_rules_off():
    p = plan(updates=30)
    assert p.cfg.max_steps == 30 and p.stop.until_budget and p.stop.stall_window == 0
    assert plan().stop.stall_window == 500 and not plan().stop.until_budget
    # the original budgets switch the stall rule off (the original trained to its budgets)
    assert plan(protocol="original").stop.stall_window == 0


def test_names_of_a_run_and_of_its_snapshots():
    assert member_names("a", 1) == ["a"]
    assert member_names("a", 3) == ["a_000", "a_001", "a_002"]
    assert member_names("a", 1001)[-1] == "a_1000"
    assert snapshot_names("a", [50, 800]) == ["a_u0050", "a_u0800"]
    assert snapshot_names("a", None) == []
    f = RunFiles("p", None, 0, count=2, snapshots=[5])
    assert f.own == ["p_000", "p_000_u0005", "p_001", "p_001_u0005"]


def test_a_run_in_process_equals_train_models_and_refuses_to_start_over(tmp_path):
    args = ["r", "--N", "2", "--rule", "bptt", "--count", "2", "--seed", "11", "--hidden", "8",
            "--max-steps", "12", "--quiet"]
    assert train_models.main(args + ["--models-dir", str(tmp_path / "cli")]) == 0
    folder = tmp_path / "lib"
    folder.mkdir()
    files = RunFiles("r", folder, 11, count=2)
    with NameLock(folder, files.own, what="test") as lock:
        run = train_run(plan(max_steps=12), files, torch.device("cpu"), lock)
    assert [n for n, _, _ in run.outcomes] == ["r_000", "r_001"] and not run.interrupted
    assert sorted(p.name for p in run.written) == ["r.txt", "r_000.json", "r_000.pt",
                                                   "r_001.json", "r_001.pt"]
    for n in ("r_000", "r_001"):
        a, b = load_model(n, tmp_path / "cli"), load_model(n, folder)
        for w in ("W_in", "W_rec", "W_out", "b"):
            assert torch.equal(getattr(a.model, w), getattr(b.model, w)), (n, w)
        assert a.meta["steps"] == b.meta["steps"] and a.meta["seed"] == b.meta["seed"]
    with pytest.raises(UserError, match="already exists"):
        files.refuse_existing()
    RunFiles("r", folder, 11, count=2, force=True).refuse_existing()
    assert files.all_finished(["r_000", "r_001"])
