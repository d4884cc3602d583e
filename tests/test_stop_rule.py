"""experiments/stop_rule.py: STOP_RULE.md from tiny flip-flop networks trained
past the stop rule with a snapshot, beside the network of the same seed that
stopped at it."""
import dataclasses
import json

import pytest

from experiments import stop_rule as S
from rnn.errors import UserError
from tests.helpers import run_script


def test_the_report_follows_each_seed_from_the_stop_rule_to_the_end(tmp_path):
    from rnn import api
    ref, models = tmp_path / "ref", tmp_path / "m"
    net = api.train("bptt", api.task("flipflop"), seeds=[40003], max_steps=1, hidden=6,
                    arch="gru")[0]
    api.save(dataclasses.replace(net, name="bptt-gru_s40003", status="converged"), ref)
    r = run_script("train_models.py", "bptt-gru-u4_s40003", "--rule", "bptt", "--task", "flipflop", "--arch", "gru",
                   "--hidden", "6", "--updates", "4", "--snapshots", "2", "--seed", "40003",
                   "--quiet", models_dir=models)
    assert r.returncode == 0, r.stderr
    with pytest.raises(UserError, match="no flip-flop network trained with --updates"):
        S.main(["--models-dir", str(ref), "--reference-dir", str(ref), "--out",
                str(tmp_path / "o"), "--quiet"])
    assert S.main(["--models-dir", str(models), "--reference-dir", str(ref), "--out",
                   str(tmp_path / "o"), "--quiet"]) == 0
    rows = json.loads((tmp_path / "o" / "stop_rule.json").read_text())["networks"]
    assert [(r["arch"], r["seed"]) for r in rows] == [("gru", 40003)]
    pts = rows[0]["points"]
    assert [(p["when"], p["update"]) for p in pts] == [("stop rule", 1), ("snapshot", 2),
                                                       ("end", 4)]
    lm = api.load("bptt-gru-u4_s40003", models)
    assert pts[-1]["held"] == lm.task.memories_held(lm.model)
    assert all(0 <= p["held"] <= 8 and 0 <= p["corners"] <= p["stable"] for p in pts)
    md = (tmp_path / "o" / "STOP_RULE.md").read_text()
    assert "| gru | 40003 | 1 (stop rule) |" in md and "| gru | 40003 | 4 |" in md
    assert "Holding all 8 at the end: " in md
