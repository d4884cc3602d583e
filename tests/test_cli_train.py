import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import ROOT, run_script
from rnn.io import load_model

import train_models


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as e:
        from rnn.cli import run_cli
        run_cli(train_models.main, argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("argv, message", [
    (["bptt_a", "-v", "0.5"], "no task given"),
    (["bptt_a", "--rdm", "--N", "2"], "either --rdm or --N"),
    (["bptt_a", "--N", "0"], "--N must be an integer in 1…64"),
    (["bptt_a", "--N", "-3"], "--N must be an integer in 1…64"),
    (["bptt_a", "--rdm", "-v", "-0.5"], "non-negative"),
    (["xyz_a", "--rdm"], "known prefix"),
    (["sub/bptt_a", "--rdm"], "path separators"),
    (["bptt_a", "--rdm", "--count", "0"], "--count"),
    (["bptt_a", "--rdm", "--rule", "sgd"], "invalid choice"),
    (["bptt_a", "--rdm", "--device", "tpu"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(argv, message, models_tmp, capsys):
    code, out, err = run_main(argv + ["--quiet"], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert list(models_tmp.iterdir()) == []


def test_unknown_prefix_lists_the_prefixes(models_tmp, capsys):
    from rnn.rules import REGISTRY
    _, _, err = run_main(["model1", "--rdm"], capsys)
    for rec in REGISTRY.values():                # every rule's prefixes, from the registry
        assert all(prefix in err for prefix in rec.prefixes), rec.name


def test_refuses_to_overwrite_without_force(models_tmp, capsys):
    (models_tmp / "bptt_a.pt").write_bytes(b"old")
    code, _, err = run_main(["bptt_a", "--rdm", "--max-steps", "1", "--quiet"], capsys)
    assert code == 2 and "--force" in err
    assert (models_tmp / "bptt_a.pt").read_bytes() == b"old"


def test_train_end_to_end_in_subprocess(models_tmp):
    r = run_script("train_models.py", "bptt_e2e", "-v", "0.5", "--N", "2", "--max-steps", "3",
                   "--seed", "11", "--quiet", models_dir=models_tmp, fresh=True)
    assert r.returncode == 0, r.stderr
    assert f"wrote {models_tmp / 'bptt_e2e.pt'}" in r.stdout
    meta = json.loads((models_tmp / "bptt_e2e.json").read_text())
    assert meta["rule"] == "bptt" and meta["seed"] == 11 and meta["steps"] == 3
    assert meta["task"]["name"] == "cdi" and meta["task"]["noise"] == 0.5
    assert meta["status"] == "budget" and meta["converged"] is False
    assert 0 <= meta["final_accuracy"] <= 1
    for key in ("trainer", "versions", "wall_time_s", "command"):
        assert key in meta
    lm = load_model("bptt_e2e", models_tmp)
    assert lm.history["loss"].shape == (3,)
    # same seed, same model
    r2 = run_script("train_models.py", "bptt_e2e", "-v", "0.5", "--N", "2", "--max-steps", "3",
                    "--seed", "11", "--quiet", "--force", "--models-dir", models_tmp / "b")
    assert r2.returncode == 0, r2.stderr
    lm2 = load_model("bptt_e2e", models_tmp / "b")
    assert torch.equal(lm.model.W_rec, lm2.model.W_rec)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_saves_latest_state_marked_not_converged(models_tmp, sig):
    env = {"RNN_MODELS_DIR": str(models_tmp), "PYTHONPATH": str(ROOT)}
    import os
    proc = subprocess.Popen([sys.executable, "train_models.py", "bptt_int", "--rdm",
                             "--seed", "1"], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait until training has made progress (the bar reports steps on stderr)
    deadline = time.time() + 60
    buf = ""
    while time.time() < deadline:
        ch = proc.stderr.read(1)
        buf += ch
        if "3/20000" in buf:
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    meta = json.loads((models_tmp / "bptt_int.json").read_text())
    assert meta["status"] == "interrupted" and meta["converged"] is False
    assert meta["steps"] >= 3
    load_model("bptt_int", models_tmp)           # complete, loadable file
    assert not [p for p in models_tmp.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("rule, act, readout, clamps", [
    ("ga", "one_plus_tanh", "linear", ()),
    ("ff", "tanh", "tanh_rates", ()),
    ("heb", "tanh", "unit0", (1, 10, 11)),
])
def test_each_rule_saves_a_model_with_the_spec_dynamics(rule, act, readout, clamps,
                                                         models_tmp):
    from helpers import reference_simulate
    from tasks import ncdi
    r = run_script("train_models.py", f"{rule}_one", "-v", "0.5", "--N", "2", "--max-steps",
                   "1", "--seed", "3", "--quiet", models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    lm = load_model(f"{rule}_one", models_tmp)
    m = lm.model
    assert (m.activation, m.readout, m.clamp_idx) == (act, readout, clamps)
    assert lm.rule == rule and lm.task == ncdi(2, 0.5)
    u = 0.3 * torch.randn(40, 1, 5, 4, generator=torch.Generator().manual_seed(0))
    x0 = 0.3 * torch.randn(1, 5, 50, generator=torch.Generator().manual_seed(1))
    ref = reference_simulate(m, u, x0)
    sim = m.to(dtype=torch.float64).simulate(u, x0, keep="all")
    torch.testing.assert_close(sim.states, ref)
