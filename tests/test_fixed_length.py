"""train_models.py --updates K --snapshots ...: the fixed-length experiment's runs."""
import json

import pytest
import torch

from rnn.grid.format import Cell, read_grid
from rnn.io import load_model
from test_cli_train import run_main

TINY = ["--rdm", "-v", "0.5", "--hidden", "8", "--seed", "21", "--quiet"]


def weights(name, folder):
    return load_model(name, folder).model.W_rec.clone()


def test_trains_exactly_k_updates_keeps_snapshots_and_validates_every_10(models_tmp, capsys):
    code, out, _ = run_main(["bptt_k", *TINY, "--updates", "23", "--snapshots", "12", "5"],
                            capsys)
    assert code == 0, out
    assert "trained exactly 23 steps (--updates)" in out
    meta = json.loads((models_tmp / "bptt_k.json").read_text())
    assert meta["steps"] == 23 and meta["status"] == "budget" and meta["fixed_updates"] == 23
    assert meta["snapshots"] == [5, 12] and meta["stop_rule"]["until_budget"] is True
    assert meta["stop_rule"]["stall_window"] == 0
    lm = load_model("bptt_k", models_tmp)
    assert lm.history["val_step"].tolist() == [10, 20]      # accuracy along the way
    assert lm.history["loss"].shape == (23,)
    for u in (5, 12):
        snap = json.loads((models_tmp / f"bptt_k_u{u:04d}.json").read_text())
        assert snap["steps"] == u and snap["snapshot"] == {"of": "bptt_k", "update": u}
        assert 0 <= snap["final_accuracy"] <= 1 and snap["seed"] == 21
        assert f"wrote {models_tmp / f'bptt_k_u{u:04d}.pt'}" in out
    # a snapshot is the network a run of exactly that many updates ends with
    code, _, _ = run_main(["bptt_k5", *TINY, "--updates", "5"], capsys)
    assert code == 0
    assert torch.equal(weights("bptt_k_u0005", models_tmp), weights("bptt_k5", models_tmp))
    assert not torch.equal(weights("bptt_k_u0005", models_tmp), weights("bptt_k", models_tmp))


def test_a_fixed_length_run_follows_the_ordinary_run_of_its_seed(models_tmp, capsys):
    """The stop rule decides nothing about the training data: until the ordinary
    run ends, the fixed-length run of the same seed is the same run."""
    assert run_main(["bptt_o", *TINY, "--max-steps", "7"], capsys)[0] == 0
    assert run_main(["bptt_f", *TINY, "--updates", "9"], capsys)[0] == 0
    lo = load_model("bptt_o", models_tmp).history["loss"]
    lf = load_model("bptt_f", models_tmp).history["loss"]
    assert torch.equal(lo, lf[:7])
    assert "fixed_updates" not in json.loads((models_tmp / "bptt_o.json").read_text())
    assert "until_budget" not in json.loads((models_tmp / "bptt_o.json").read_text())["stop_rule"]


@pytest.mark.parametrize("extra, message", [
    (["--snapshots", "3"], "--snapshots needs --updates"),
    (["--updates", "5", "--max-steps", "9"], "not both"),
    (["--updates", "0"], "--updates must be an integer in 1…"),
    (["--updates", "5", "--snapshots", "5"], "must lie in 1..4"),
    (["--updates", "5", "--snapshots", "2", "2"], "twice"),
])
def test_bad_fixed_length_arguments_are_refused(extra, message, models_tmp, capsys):
    code, _, err = run_main(["bptt_x", *TINY, *extra], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert list(models_tmp.iterdir()) == []


def test_an_existing_snapshot_is_not_overwritten_without_force(models_tmp, capsys):
    (models_tmp / "bptt_s_u0002.pt").write_bytes(b"old")
    code, _, err = run_main(["bptt_s", *TINY, "--updates", "4", "--snapshots", "2"], capsys)
    assert code == 2 and "--force" in err
    assert (models_tmp / "bptt_s_u0002.pt").read_bytes() == b"old"


def test_grid_cells_with_updates_and_snapshots(tmp_path):
    g = tmp_path / "g.toml"
    g.write_text('[grid]\nupdates = 30\nsnapshots = [20, 10]\n[[cells]]\ntask = "rdm"\n'
                 'rule = "bptt"\nnoise = [0.1, 1.0]\n')
    cells = read_grid(g).cells
    assert [c.name for c in cells] == ["rdm-bptt-v010-clean-u30", "rdm-bptt-v100-clean-u30"]
    assert cells[0].snapshots == (10, 20)
    a = cells[0].train_args()
    assert a[a.index("--updates") + 1] == "30"
    assert a[a.index("--snapshots") + 1:a.index("--snapshots") + 3] == ["10", "20"]
    for bad, message in (({"snapshots": (5,)}, "snapshots needs updates"),
                         ({"updates": 5, "snapshots": (5,)}, "snapshots must be"),
                         ({"updates": 5, "max_steps": 9}, "not both")):
        with pytest.raises(Exception, match=message):
            Cell(task="rdm", rule="bptt", **bad)


def test_the_grid_runner_trains_a_fixed_length_cell_and_finds_it_again(tmp_path):
    from helpers import run_script
    g, models = tmp_path / "fl.toml", tmp_path / "models"
    g.write_text('[grid]\nname = "fl"\nhidden = 8\nnetworks = 2\nfirst_seed = 5\nchunk = 2\n'
                 'updates = 4\nsnapshots = [2]\n[[cells]]\ntask = "rdm"\nrule = "bptt"\n')
    r = run_script("run_grid.py", str(g), "--models-dir", str(models), "--workers", "1",
                   "--no-compare", timeout=600)
    assert r.returncode == 0, r.stderr
    assert "2/2 trained 4 updates" in r.stdout
    cell = "rdm-bptt-v050-clean-h8-u4"
    for k in range(2):
        assert json.loads((models / f"{cell}_s5_{k:03d}.json").read_text())["steps"] == 4
        assert json.loads((models / f"{cell}_s5_{k:03d}_u0002.json").read_text())["steps"] == 2
    # the snapshots are not taken for networks of the cell: nothing is left to train
    again = run_script("run_grid.py", str(g), "--models-dir", str(models), "--list")
    assert "2/2 trained" in again.stdout and "0 jobs to run" in again.stdout
