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
    ga = api.train("ga", api.task("flipflop"), seeds=[40003], max_steps=1, hidden=6,
                   arch="vanilla")[0]         # the same seed under another rule
    api.save(dataclasses.replace(ga, name="ga-vanilla_s40003", status="converged"), ref)
    r = run_script("train_models.py", "bptt-gru-u4_s40003", "--rule", "bptt", "--task", "flipflop", "--arch", "gru",
                   "--hidden", "6", "--updates", "4", "--snapshots", "2", "--seed", "40003",
                   "--quiet", models_dir=models)
    assert r.returncode == 0, r.stderr
    r = run_script("train_models.py", "ga-vanilla-u3_s40003", "--rule", "ga", "--task", "flipflop",
                   "--arch", "vanilla", "--hidden", "6", "--updates", "3", "--seed", "40003",
                   "--quiet", models_dir=models)
    assert r.returncode == 0, r.stderr
    with pytest.raises(UserError, match="no flip-flop network trained with --updates"):
        S.main(["--models-dir", str(ref), "--reference-dir", str(ref), "--out",
                str(tmp_path / "o"), "--quiet"])
    assert S.main(["--models-dir", str(models), "--reference-dir", str(ref), "--out",
                   str(tmp_path / "o"), "--quiet"]) == 0
    rows = json.loads((tmp_path / "o" / "stop_rule.json").read_text())["networks"]
    assert [(r["arch"], r["rule"], r["seed"]) for r in rows] == [("gru", "bptt", 40003),
                                                                 ("vanilla", "ga", 40003)]
    assert [(p["when"], p["update"]) for p in rows[1]["points"]] == [("stop rule", 1),
                                                                      ("end", 3)]
    pts = rows[0]["points"]
    assert [(p["when"], p["update"]) for p in pts] == [("stop rule", 1), ("snapshot", 2),
                                                       ("end", 4)]
    lm = api.load("bptt-gru-u4_s40003", models)
    assert pts[-1]["held"] == lm.task.memories_held(lm.model)
    from rnn.analysis.compare import flipflop_descriptor
    from rnn.analysis.fixed_points import task_fixed_points
    for row in rows:                # each point's measures, against a fresh solve
        for p in row["points"]:
            assert 0 <= p["moving"] <= p["held"] <= 8 and 0 <= p["corners"] <= p["stable"]
            lm = api.load(p["name"], ref if p["when"] == "stop rule" else models)
            v, _ = flipflop_descriptor(task_fixed_points(lm.model, lm.task, "small"), lm.model)
            want = [0, 0, 0] if v is None else [int(x) for x in v[2:]]
            assert p["saddles"] == want and p["held"] == lm.task.memories_held(lm.model)
            assert p["weights"] == pytest.approx(float(lm.model.weight_hh[0].double().norm()))
            assert (p["outside"] is None) == (row["arch"] != "vanilla")
    md = (tmp_path / "o" / "STOP_RULE.md").read_text()
    assert "| gru | bptt | 40003 | 1 (stop rule) |" in md and "| gru | bptt | 40003 | 4 |" in md
    assert "| vanilla | ga | 40003 | 3 |" in md
    assert f"| {rows[1]['points'][-1]['weights']:.2f} ({rows[1]['points'][-1]['outside']}) |" in md
    assert "BPTT, holding all 8 at the end: " in md and "GA, holding all 8 at the end: " in md
