"""Bad or unusual input: one line on stderr, exit status 2, nothing written;
no trained network lost; no debris left by a killed save."""
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import analyze_dynamics
import fixed_point_input_topology
import import_model
import svcca_analysis
import tca_analysis
import train_models
from helpers import ROOT, run_script
from rnn.errors import UserError
from rnn.cli import run_cli
from rnn.io import ensure_writable, load_model, remove_stale_temporaries, save_model
from rnn.model import RateRNN
from rnn.rng import Streams
from rnn.training import StopConfig, Trainer, fit

SAMPLES = ROOT / "models"


@pytest.fixture
def stocked(models_tmp):
    """A models folder with the shipped samples, a BOM groups file, broken files."""
    for f in SAMPLES.iterdir():
        if f.suffix in (".pt", ".json", ".txt"):
            shutil.copy(f, models_tmp / f.name)
    good = (SAMPLES / "bptt_0050.pt").read_bytes()
    (models_tmp / "trunc.pt").write_bytes(good[:len(good) // 2])
    (models_tmp / "noise.pt").write_bytes(bytes(random.Random(0).randrange(256)
                                                for _ in range(3000)))
    (models_tmp / "empty.pt").write_bytes(b"")
    (models_tmp / "bom.txt").write_text("\ufeff# groups\nBPTT bptt_s_000 bptt_s_001\n"
                                        "GA ga_s_000 ga_s_001\n", encoding="utf-8")
    (models_tmp / "bad.txt").write_text("BPTT bptt_s_000 bptt_s_001\nGA nosuch ga_s_000\n")
    return models_tmp


def snapshot(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def run_main(main, argv, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(main, argv)
    out = capsys.readouterr()
    return e.value.code, out.err


LONG = "bptt_" + "x" * 240
CASES = [
    # train_models.py
    (train_models, [LONG, "--rdm"], "characters long"),
    (train_models, ["bptt_" + "y" * 300, "--rdm"], "characters long"),
    (train_models, ["", "--rdm"], "name is empty"),
    (train_models, ["bptt..", "--rdm"], "not allowed"),
    (train_models, ["bptt a", "--rdm"], "not allowed"),
    (train_models, ["bptt_a", "--rdm", "-v", "inf"], "not a finite number"),
    (train_models, ["bptt_a", "--rdm", "-v", "nan"], "not a finite number"),
    (train_models, ["bptt_a", "--rdm", "-m", "1e999"], "not a finite number"),
    (train_models, ["bptt_a", "--rdm", "--seed", str(2**62 - 1), "--count", "2"], "--seed"),
    (train_models, ["bptt_a", "--rdm", "--seed", "-1"], "--seed"),
    (train_models, ["bptt_a", "--rdm", "--hidden", "0"], "--hidden"),
    (train_models, ["heb_a", "--rdm", "--hidden", "8"], "at least 12 units"),
    (train_models, ["bptt_a", "--rdm", "--stall-window", "-5"], "--stall-window"),
    (train_models, ["bptt_a", "--N", "1000000"], "--N must be an integer in 1…64"),
    (train_models, ["bptt_a", "--rdm", "--count", "1000000000"], "in 1…100000"),
    (train_models, ["bptt_a", "--rdm", "--protocol", "paper"], "invalid choice"),
    (train_models, ["bptt_a", "--rdm", "--models-dir", "{models}/bom.txt"], "not a folder"),
    (train_models, ["bptt_a", "--rdm", "--models-dir", "{models}/bom.txt/sub"],
     "cannot create the models folder"),
    # analyze_dynamics.py
    (analyze_dynamics, ["trunc", "large"], "truncated or damaged"),
    (analyze_dynamics, ["noise", "large"], "not a PyTorch file"),
    (analyze_dynamics, ["empty", "large"], "is empty"),
    (analyze_dynamics, ["nosuch", "large"], "no model 'nosuch'"),
    (analyze_dynamics, ["bptt_0050", "huge"], "unknown input set"),
    (analyze_dynamics, ["bptt..x", "large"], "not allowed"),
    (analyze_dynamics, ["bptt_0050", "large", "--N", "3"], "disagrees"),
    (analyze_dynamics, ["bptt_0050", "large", "--seed", "-1"], "--seed must be an integer in 0…"),
    (analyze_dynamics, ["bptt_0050", "large", "--trials", "1000000000"], "needs about"),
    # fixed_point_input_topology.py and svcca_analysis.py
    (fixed_point_input_topology, ["bad.txt"], "'nosuch' does not exist"),
    (fixed_point_input_topology, ["none.txt"], "none.txt"),
    (svcca_analysis, ["bad.txt"], "'nosuch' does not exist"),
    (svcca_analysis, ["bom.txt", "--keep", "nan"], "not a finite number"),
    (svcca_analysis, ["bom.txt", "--dims", "0"], "--dims"),
    (svcca_analysis, ["bom.txt", "--probe-seed", "-2"], "--probe-seed"),
    # tca_analysis.py and import_model.py
    (tca_analysis, ["bptt_0050"], "no activity record"),
    (tca_analysis, ["bptt_0050", "--seed", "-1"], "--seed must be an integer in 0…"),
    (tca_analysis, ["trunc"], "truncated or damaged"),
    (import_model, ["original", "noise"], "not a PyTorch file"),
    (import_model, ["original", "trunc"], "truncated or damaged"),
    (import_model, ["miconi", "w", "-v", "inf"], "not a finite number"),
    (import_model, ["original", ""], "name is empty"),
]


@pytest.mark.parametrize("script, argv, message", CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_one_line_exit_2_nothing_changed(script, argv, message, stocked, capsys):
    before = snapshot(stocked)
    argv = [a.replace("{models}", str(stocked)) for a in argv]
    if script in (train_models, analyze_dynamics, fixed_point_input_topology, svcca_analysis):
        argv = argv + ["--quiet"]
    if script is train_models:
        argv = argv + ["--max-steps", "1"]      # a case that slipped through stays short
    code, err = run_main(script.main, argv, capsys)
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert snapshot(stocked) == before


def test_bad_input_in_a_subprocess_has_no_traceback(stocked):
    """Every command, run as a shell runs it (a new Python): bad input is one
    line on stderr and exit status 2 (the other tests run scripts in process)."""
    bad_flag = ["fixed_point_input_topology.py", "similarity_analysis.py", "tca_analysis.py",
                "run_grid.py", "experiments/reproduce.py", "experiments/protocol.py",
                "experiments/paper.py", "experiments/svcca_variants.py",
                "experiments/pwcca_directions.py"]
    for args in (["train_models.py", LONG, "--rdm"], ["analyze_dynamics.py", "noise", "large"],
                 ["svcca_analysis.py", "bad.txt"], ["import_model.py", "original", "trunc"],
                 *[[script, "--no-such-flag"] for script in bad_flag]):
        r = run_script(*args, models_dir=stocked, fresh=True)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_malicious_pickle_names_the_global_and_trust(stocked, capsys):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    torch.save({"weights": Evil()}, stocked / "evil.pt")
    code, err = run_main(import_model.main, ["original", "evil"], capsys)
    assert code == 2 and "system" in err and "--trust" in err
    code, err = run_main(analyze_dynamics.main, ["evil", "large", "--quiet"], capsys)
    assert code == 2 and "system" in err and "import_model.py original evil" in err


def test_bom_groups_file_reads_its_first_label(stocked):
    from rnn.io.groups import read_groups
    g = read_groups(["bom.txt"], stocked)
    assert g.labels == ["BPTT", "GA"]


def test_read_only_models_folder_fails_before_any_work(stocked, monkeypatch, capsys):
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(UserError, match="cannot write into the models folder"):
        ensure_writable(stocked)
    called = []
    import rnn.analysis.dynamics
    monkeypatch.setattr(rnn.analysis.dynamics, "cached_fixed_points", lambda *a, **k: called.append(1))
    code, err = run_main(analyze_dynamics.main, ["bptt_0050", "large", "--quiet"], capsys)
    assert code == 2 and "cannot write into the models folder" in err and not called


def test_save_error_keeps_the_trained_network(models_tmp, monkeypatch, capsys):
    """A full disk makes torch.save raise a RuntimeError (not an OSError): the
    network is rescued all the same, and the models folder keeps no half pair."""
    import rnn.io.store
    real = rnn.io.store.torch.save
    rescued = []

    def failing(obj, f, *a, **k):
        where = Path(os.readlink(f"/proc/self/fd/{f.fileno()}")).parent
        if where == models_tmp:
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos "
                               "64 vs 0 (No space left on device)")
        rescued.append(where)
        return real(obj, f, *a, **k)
    monkeypatch.setattr(rnn.io.store.torch, "save", failing)
    code, err = run_main(train_models.main, ["bptt_s", "--rdm", "--max-steps", "2", "--quiet",
                                              "--seed", "3"], capsys)
    assert code == 2 and "No space left on device" in err and "saved in" in err
    assert len(err.strip().splitlines()) == 1
    rescue = rescued[-1]
    assert rescue != models_tmp and str(rescue) in err
    assert load_model("bptt_s", rescue).model.hidden == 50
    assert sorted(p.name for p in models_tmp.iterdir()) == []     # no .pt, .json, .tmp, .lock
    shutil.rmtree(rescue)


class _Fake(Trainer):
    """A one-network trainer for the loop's own rules."""
    rule = "fake"

    def __init__(self, bad_at=None):
        self.model = RateRNN.init(Streams([0], 1), 1)
        self.bad_at, self.t = bad_at, 0

    def step(self, active):
        self.t += 1
        if self.bad_at is not None and self.t >= self.bad_at:
            self.model = self.model.replace(W_rec=self.model.W_rec * math.inf)
            return torch.tensor([math.nan])
        self.model = self.model.replace(W_rec=self.model.W_rec + 0.001)
        return torch.tensor([1.0 / self.t])


class _ChanceVal:
    def accuracy(self, model, idx, step=0):
        return torch.full((len(idx),), 0.5, dtype=torch.float64)


def test_divergence_stops_at_once_and_keeps_the_last_finite_weights():
    tr = _Fake(bad_at=5)
    res = fit(tr, _ChanceVal(), 50, StopConfig(stall_window=0), quiet=True)
    assert res.status == ["diverged"] and res.steps_run == [5]
    assert torch.isfinite(tr.model.W_rec).all()
    expect = RateRNN.init(Streams([0], 1), 1).W_rec + 0.004   # after the 4 good updates
    assert torch.allclose(tr.model.W_rec, expect, atol=1e-6)


def test_a_network_at_chance_is_stopped_as_stalled():
    res = fit(_Fake(), _ChanceVal(), 2000, StopConfig(stall_window=200), quiet=True)
    assert res.status == ["stalled"] and 200 <= res.steps_run[0] <= 220
    assert res.history.stall_step == res.steps_run
    res = fit(_Fake(), _ChanceVal(), 300, StopConfig(stall_window=0), quiet=True)
    assert res.status == ["budget"] and res.steps_run == [300]
    assert res.history.stall_step == [-1]


def test_a_stall_can_be_noted_and_trained_through(capsys):
    res = fit(_Fake(), _ChanceVal(), 400, StopConfig(stall_window=200, stall_stop=False),
              names=["heb_z"])
    assert res.status == ["budget"] and res.steps_run == [400]
    assert 200 <= res.history.stall_step[0] <= 220
    out = capsys.readouterr().out
    assert out.count("heb_z: every validation of the last 200 steps below 0.6") == 1


def test_the_hebbian_rule_trains_on_through_a_stall_by_default(models_tmp, capsys,
                                                               monkeypatch):
    """Hebbian: noted in the JSON and the summary, not stopped; --on-stall stop stops it;
    the other rules stop by default.  (Whether a network stalls is the loop's rule, tested
    above; here every network counts as stalled from update 20.)"""
    import rnn.training
    from rnn.rules import REGISTRY
    assert {n: r.on_stall for n, r in REGISTRY.items()} == {
        "bptt": "stop", "ga": "stop", "ff": "stop", "heb": "continue", "eprop": "stop",
        "rflo": "stop"}
    monkeypatch.setattr(rnn.training, "_stalled", lambda hist, p, step, start, stop: step >= 20)
    args = ["--rdm", "--hidden", "12", "--max-steps", "30", "--seed", "7"]
    code, err = run_main(train_models.main, ["heb_on", *args], capsys)
    assert code == 0, err
    meta = json.loads((models_tmp / "heb_on.json").read_text())
    assert meta["status"] == "budget" and meta["steps"] == 30
    assert meta["stalled_at"] == 20 and meta["stop_rule"]["stall_stop"] is False
    code, err = run_main(train_models.main, ["heb_off", *args, "--on-stall", "stop"], capsys)
    meta = json.loads((models_tmp / "heb_off.json").read_text())
    assert code == 0 and meta["status"] == "stalled" and meta["steps"] == 20
    assert meta["stalled_at"] == 20 and meta["stop_rule"]["stall_stop"] is True
    code, err = run_main(train_models.main, ["bptt_st", *args[:-4], "--quiet"], capsys)
    meta = json.loads((models_tmp / "bptt_st.json").read_text())
    assert code == 0 and meta["status"] == "stalled" and meta["stalled_at"] == 20


class _Signals(_Fake):
    """Sends itself ``signals`` during update ``at``; with ``in_finaliser`` from
    inside an object's __del__, where an asynchronous KeyboardInterrupt is lost
    ("Exception ignored in ...") -- what made a CI run's Ctrl-C test time out."""

    def __init__(self, at, signals, in_finaliser=False):
        super().__init__()
        self.at, self.signals, self.in_finaliser = at, signals, in_finaliser

    def step(self, active):
        loss = super().step(active)
        if self.t == self.at:
            signals = self.signals

            class Dying:
                def __del__(self):
                    for s in signals:
                        os.kill(os.getpid(), s)
            if self.in_finaliser:
                Dying()                   # collected at once: __del__ runs here
            else:
                for s in signals:
                    os.kill(os.getpid(), s)
        return loss


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("in_finaliser", [False, True], ids=["in-step", "in-finaliser"])
def test_a_stop_signal_ends_training_after_the_update_under_way(sig, in_finaliser):
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    res = fit(_Signals(7, [sig], in_finaliser), _ChanceVal(), 50, StopConfig(stall_window=0),
              quiet=True)
    assert res.status == ["interrupted"] and res.steps_run == [7]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_second_stop_signal_interrupts_at_once():
    res = fit(_Signals(7, [signal.SIGINT, signal.SIGINT]), _ChanceVal(), 50,
              StopConfig(stall_window=0), quiet=True)
    assert res.status == ["interrupted"] and res.steps_run == [6]   # update 7 abandoned


def test_json_is_strict_even_with_non_finite_values(models_tmp):
    m = RateRNN.init(Streams([0], 1), 1)
    save_model("bptt_j", m, {"a": math.inf, "b": [math.nan, 1.0]}, {}, models_tmp)
    text = (models_tmp / "bptt_j.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"a": None, "b": [None, 1.0]}


def test_stale_temporaries_are_removed_but_live_ones_kept(models_tmp):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = models_tmp / f".bptt_t.pt.{dead.pid}-abc123.tmp"
    live = models_tmp / f".bptt_t.pt.{os.getpid()}-def456.tmp"
    old = models_tmp / ".bptt_t.pt.zzzz.tmp"
    for f in (stale, live, old):
        f.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    removed = remove_stale_temporaries(models_tmp / "bptt_t.pt")
    assert set(removed) == {stale, old} and live.exists()


KILL_DURING_SAVE = """
import os, sys, time
real = os.replace
def slow(src, dst):
    time.sleep(0.5)          # the temporary file is complete but not yet renamed
    return real(src, dst)
os.replace = slow
import train_models
from rnn.cli import run_cli
run_cli(train_models.main, sys.argv[1:])
"""


def test_sigkill_during_saving_leaves_no_debris_after_the_next_run(models_tmp):
    script = models_tmp.parent / "slow_save.py"
    script.write_text(KILL_DURING_SAVE.format(root=str(ROOT)))
    env = {**os.environ, "RNN_MODELS_DIR": str(models_tmp), "PYTHONPATH": str(ROOT)}
    rng = random.Random(1)
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, str(script), "bptt_k", "--rdm", "--max-steps",
                                 "2", "--quiet", "--force", "--seed", "4"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_end = time.time() + 120
        while time.time() < t_end and not list(models_tmp.glob(".*.tmp")):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert list(models_tmp.glob(".*.tmp")), "the kills should have left temporary files"
    for f in models_tmp.glob("*.pt"):
        load_model(f.stem, models_tmp)          # whatever is there loads
    r = run_script("train_models.py", "bptt_k", "--rdm", "--max-steps", "2", "--quiet",
                   "--force", "--seed", "4", models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    assert not list(models_tmp.glob(".*.tmp"))
    assert load_model("bptt_k", models_tmp).meta["status"] == "budget"


def test_reproduce_refuses_bad_arguments_before_any_work(tmp_path):
    ro = tmp_path / "a_file"          # not a folder (a read-only one does not stop root)
    ro.write_text("x")
    for args, msg in ((["-v", "nan"], "not a finite number"),
                      (["--metrics", "nosuch"], "unknown metric 'nosuch'"),
                      (["--protocol", "x"], "--protocol must be clean or original"),
                      (["--out", str(ro / "sub"), "--tasks", "rdm"], "the --out folder")):
        r = run_script("experiments/reproduce.py", *args, models_dir=tmp_path / "m", timeout=120)
        assert r.returncode == 2, (args, r.stderr)
        assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "m").exists()


def test_an_unanticipated_error_is_one_line_with_a_hint_and_debug_shows_it(capsys,
                                                                             monkeypatch):
    from rnn.cli import run_cli

    def broken(argv):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.delenv("RNN_DEBUG", raising=False)
    with pytest.raises(SystemExit) as e:
        run_cli(broken, [])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: ZeroDivisionError: division by zero" in err
    assert "RNN_DEBUG=1" in err and "second line" not in err
    monkeypatch.setenv("RNN_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run_cli(broken, [])


def test_a_refused_grid_job_is_reported_once_not_retried(tmp_path):
    """train_models.py exit 2 inside a Dask job: one failure, no retries."""
    from rnn.grid.format import Cell
    from rnn.grid.jobs import Job
    from rnn.grid.runner import run_job
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    rec = run_job(Job(Cell(task="rdm", rule="bptt", networks=1), 0, 1), str(not_a_folder))
    assert rec["trained"] is False and "(exit 2)" in rec["error"]
    assert "is not a folder" in rec["error"]


@pytest.mark.parametrize("module, extra", [
    ("experiments.paper", []), ("experiments.protocol", ["--only-analyse"]),
    ("experiments.reproduce", []), ("experiments.gradient_alignment", [])])
def test_an_out_path_that_cannot_be_the_output_is_refused(module, extra, tmp_path, capsys,
                                                        monkeypatch):
    """Every experiment's --out door: a file where a folder is wanted (or a folder
    where a file is) is one line and exit 2, before any work, not an internal error."""
    import importlib
    if module == "experiments.gradient_alignment":     # its work: measuring every network
        def no_work(*a, **k):
            raise AssertionError("measured the networks before refusing --out")
        monkeypatch.setattr(importlib.import_module(module), "run", no_work)
    f = tmp_path / "a_file"
    f.write_text("x")
    target = tmp_path if module.endswith("gradient_alignment") else f
    argv = ["--out", str(target), *extra, "--quiet"]
    if module == "experiments.reproduce":          # its main reads sys.argv: a new Python
        r = run_script("experiments/reproduce.py", *argv, models_dir=tmp_path / "m")
        code, err = r.returncode, r.stderr
    else:
        code, err = run_main(importlib.import_module(module).main, argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "folder" in err and f.read_text() == "x"


@pytest.mark.parametrize("kind", ["fifo", "folder", "binary", "huge"])
def test_an_input_file_that_is_not_a_small_text_file_is_refused_at_once(kind, tmp_path):
    """Groups and grid files: a FIFO (which would block forever), a folder, binary
    bytes or a giant file are each one line, before anything is read from them."""
    from rnn.grid.format import read_grid
    from rnn.io.groups import parse_groups_file
    from rnn.io import TEXT_INPUT_LIMIT
    p = tmp_path / "input"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "folder":
        p.mkdir()
    elif kind == "binary":
        p.write_bytes(b"\xff\xfe\x00bad")
    else:
        with open(p, "wb") as f:
            f.truncate(TEXT_INPUT_LIMIT + 1)          # sparse: no real disk used
    message = {"fifo": "not a regular file", "folder": "is a folder", "binary": "not a UTF-8",
               "huge": "bytes, more than"}[kind]
    for read in (parse_groups_file, read_grid):
        with pytest.raises(UserError, match=message):
            read(p)
