"""Resumable training (rnn/resume.py): a run cut at a checkpoint and resumed
ends with the same networks, bit for bit, as the run never stopped, for every
rule; a checkpoint of another run or a damaged one is never used."""
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import types

import pytest
import torch

from helpers import ROOT, run_script
from rnn import resume as rsm
from rnn.rules.bptt import BPTTConfig, BPTTTrainer
from rnn.rules.eprop import EpropConfig, EpropTrainer
from rnn.rules.fullforce import FFConfig, FFTrainer
from rnn.rules.ga import GAConfig, GATrainer
from rnn.grid.format import Cell
from rnn.grid.jobs import jobs_for
from rnn.rules.hebbian import HebbConfig, HebbTrainer
from rnn.io import load_model
from rnn.protocol import CLEAN, Protocol
from rnn.rules.rflo import RFLOConfig, RFLOTrainer
from rnn.rules import REGISTRY, get
from rnn.training import ValidationSet, fit
from tasks import ncdi, rdm

SMALL = dataclasses.replace(CLEAN, hidden=16)
ORIGINAL = dataclasses.replace(Protocol.named("original"), hidden=16)
TASK = rdm(0.05, steps=40)


def _registry(rule):
    """The rule's trainer from its registry record, its default config (so that
    a rule added to the registry is tested here with no code of its own)."""
    rs = get(rule)
    return lambda: rs.make(rs.make_config(TASK), TASK, [5, 6], "cpu", protocol=SMALL)


RULES = {
    **{f"{r}-registry": _registry(r) for r in REGISTRY},
    "bptt": lambda: BPTTTrainer(BPTTConfig(batch=32, lr=2e-2), TASK, [5, 6], "cpu",
                                protocol=SMALL),
    # shared initial states, validation states redrawn at every check
    "bptt-original": lambda: BPTTTrainer(BPTTConfig(batch=32, lr=2e-2), TASK, [5, 6], "cpu",
                                         protocol=ORIGINAL),
    "ga": lambda: GATrainer(GAConfig(population=6, parents=2, batch=32), TASK, [5, 6], "cpu",
                            protocol=SMALL),
    # restarts every 10 trials: the cut falls between restarts
    "ff": lambda: FFTrainer(FFConfig(trials_per_attempt=10), TASK, [5, 6], "cpu", "tanh",
                            protocol=SMALL),
    "heb": lambda: HebbTrainer(HebbConfig(batch=16), ncdi(2, 0.5, steps=40), [5, 6], "cpu",
                               "tanh", protocol=SMALL),
    "eprop": lambda: EpropTrainer(EpropConfig(batch=32, lr=2e-2), TASK, [5, 6], "cpu",
                                  protocol=SMALL),
    "rflo": lambda: RFLOTrainer(RFLOConfig(batch=32, lr=2e-2), TASK, [5, 6], "cpu",
                                protocol=SMALL),
}


def cut_and_resume(make, steps, every, cut, tmp_path, protocol=SMALL):
    """The straight run and the run resumed from its checkpoint at ``cut``
    (through the file, as train_models.py does)."""
    tr = make()
    val = ValidationSet.make(tr.task, [5, 6], 16, "cpu", protocol)
    path = tmp_path / "run.ckpt"

    def ck(res):
        if res.loop["step"] == cut:
            rsm.save(path, "fp", res.loop, tr)

    full = fit(tr, val, steps, quiet=True, checkpoint=ck, checkpoint_every=every)
    assert path.exists()
    tr2 = make()
    d = rsm.load(path, "fp")
    rsm.load_object_state(tr2, d["trainer"])
    again = fit(tr2, val, steps, quiet=True, resume=d["loop"], checkpoint_every=every)
    return tr, full, tr2, again


def same_run(tr, full, tr2, again):
    for k in ("W_in", "W_rec", "W_out", "b"):
        assert torch.equal(getattr(tr.model, k), getattr(tr2.model, k)), k
    assert again.status == full.status
    assert again.steps_run == full.steps_run
    assert again.final_acc == full.final_acc
    for p in range(2):
        torch.testing.assert_close(again.history.losses(p), full.history.losses(p),
                                   rtol=0, atol=0, equal_nan=True)
        for a, b in zip(again.history.validation(p), full.history.validation(p)):
            assert torch.equal(a, b)
        assert tr2.extra_meta(p) == tr.extra_meta(p)
        for k, v in tr.extra_history(p).items():
            assert torch.equal(tr2.extra_history(p)[k], v)
    assert again.wall_time >= 0


@pytest.mark.parametrize("rule", list(RULES))
def test_a_resumed_run_ends_as_the_run_never_stopped(rule, tmp_path):
    tr, full, tr2, again = cut_and_resume(RULES[rule], steps=24, every=6, cut=12,
                                          tmp_path=tmp_path,
                                          protocol=ORIGINAL if "original" in rule else SMALL)
    same_run(tr, full, tr2, again)
    assert again.resumed_at == [12] and full.resumed_at == []
    # the CPU time covers every update, across the stretches
    assert full.cpu_updates == again.cpu_updates == max(full.steps_run)
    assert 0 < full.cpu_time and 0 < again.cpu_time


def test_a_checkpoint_older_than_the_cpu_record_counts_cpu_time_from_where_it_goes_on(
        tmp_path):
    tr = RULES["bptt"]()
    val = ValidationSet.make(TASK, [5, 6], 16, "cpu", SMALL)
    saved = {}
    fit(tr, val, 8, quiet=True, checkpoint=lambda r: saved.setdefault(
        r.loop["step"], (r.loop, rsm.object_state(tr))), checkpoint_every=4)
    loop, state = saved[4]
    assert loop["cpu"][1] == 4 and loop["cpu"][0] > 0
    old = {k: v for k, v in loop.items() if k != "cpu"}
    tr2 = RULES["bptt"]()
    rsm.load_object_state(tr2, state)
    again = fit(tr2, val, 8, quiet=True, resume=old)
    assert again.cpu_updates == 4 and again.cpu_time > 0
    for bad in ([-1.0, 4], [float("nan"), 4], [1.0, 5], [1.0, True], [1, 4], "x"):
        tr3 = RULES["bptt"]()
        rsm.load_object_state(tr3, state)
        with pytest.raises(rsm.ResumeError, match="CPU time is damaged"):
            fit(tr3, val, 8, quiet=True, resume={**loop, "cpu": bad})


def test_resumed_after_one_network_converged(tmp_path):
    # network 1 can never stop (its validation targets are flipped); network 0
    # converges before the cut, so the resumed loop must keep it stopped
    def make():
        return BPTTTrainer(BPTTConfig(batch=64, lr=2e-2), TASK, [5, 6], "cpu",
                           protocol=CLEAN)
    tr = make()
    val = ValidationSet.make(TASK, [5, 6], 50, "cpu", CLEAN)
    val.trials = val.trials.__class__(val.trials.inputs, torch.stack(
        [val.trials.targets[0], -val.trials.targets[1]]), val.trials.strength,
        val.trials.signs, val.trials.context)
    saved = {}

    def ck(res):
        saved[res.loop["step"]] = (res.loop, rsm.object_state(tr))

    full = fit(tr, val, 120, quiet=True, checkpoint=ck, checkpoint_every=10)
    stop = full.history.stop_step[0]
    assert full.status == ["converged", "budget"] and 0 < stop < 100
    cut = (stop // 10 + 1) * 10
    loop, state = saved[cut]
    assert loop["active"] == [1]
    tr2 = make()
    rsm.load_object_state(tr2, state)
    again = fit(tr2, val, 120, quiet=True, resume=loop)
    same_run(tr, full, tr2, again)


def test_a_checkpoint_of_another_run_or_a_damaged_one_is_refused(tmp_path):
    tr = RULES["bptt"]()
    val = ValidationSet.make(TASK, [5, 6], 16, "cpu", SMALL)
    path = tmp_path / "r.ckpt"
    fit(tr, val, 4, quiet=True, checkpoint=lambda r: rsm.save(path, rsm.fingerprint(a=1),
                                                              r.loop, tr), checkpoint_every=2)
    with pytest.raises(rsm.ResumeError, match="another run.*differs in a"):
        rsm.load(path, rsm.fingerprint(a=2))
    d = rsm.load(path, rsm.fingerprint(a=1))
    # the state of another rule's trainer does not fit
    with pytest.raises(rsm.ResumeError, match="other attributes"):
        rsm.load_object_state(RULES["ga"](), d["trainer"])
    # a tensor of the wrong shape
    bad = dict(d["trainer"])
    bad["adam"] = {"__dict__": {"W_rec": {"__attrs__": {
        **d["trainer"]["adam"]["__dict__"]["W_rec"]["__attrs__"], "m": torch.zeros(3)}}}}
    with pytest.raises(rsm.ResumeError, match="shape"):
        rsm.load_object_state(RULES["bptt"](), bad)
    # weights that are not finite
    nan = {**d["trainer"], "model": {"__fields__": {
        **d["trainer"]["model"]["__fields__"],
        "W_rec": torch.full_like(d["trainer"]["model"]["__fields__"]["W_rec"], float("nan"))}}}
    tr_nan = RULES["bptt"]()
    rsm.load_object_state(tr_nan, nan)
    with pytest.raises(rsm.ResumeError, match="not finite"):
        fit(tr_nan, val, 10, quiet=True, resume=d["loop"])
    # a loop state that does not fit the run: checked before any update
    for change in ({"step": 99}, {"active": [0, 7]}, {"status": ["budget", "?"]},
                   {"loss": torch.zeros(3, 2)}, {"snaps": [{"step": 1, "weights": {}}]},
                   {"snaps": [{"step": 1, "weights": {
                       k: torch.full_like(v, float("inf"))
                       for k, v in d["loop"]["snaps"][0]["weights"].items()}}]},
                   {"known": [[0, 1, "x"]]}):
        loop = {**d["loop"], **change}
        tr3 = RULES["bptt"]()
        with pytest.raises(rsm.ResumeError):
            fit(tr3, val, 10, quiet=True, resume=loop)
    # where each stretch ran, and where its CPU count began: checked, not trusted
    here = rsm.segment(0, "CPU", "Linux")
    for segs in ([here, rsm.segment(2, "CPU", "Linux", cpu_time=[1.5, 2])],):
        rsm.save(path, rsm.fingerprint(a=1), d["loop"], tr, segs)
        assert rsm.load(path, rsm.fingerprint(a=1))["segments"] == segs
    assert "cpu_time" not in here
    for bad in ({**here, "cpu_time": [-1.0, 2]}, {**here, "cpu_time": [float("nan"), 2]},
                {**here, "cpu_time": [1.0, True]}, {**here, "cpu_time": [1.0]},
                {**here, "other": 1}, {"cpu": "CPU", "platform": "Linux"}):
        rsm.save(path, rsm.fingerprint(a=1), d["loop"], tr, [bad])
        with pytest.raises(rsm.ResumeError, match="damaged record of where it ran"):
            rsm.load(path, rsm.fingerprint(a=1))
    # a file that is not a checkpoint
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(rsm.ResumeError, match="cannot be read"):
        rsm.load(path, rsm.fingerprint(a=1))
    torch.save({"format": 1, "fingerprint": 3}, path)
    with pytest.raises(rsm.ResumeError, match="format"):
        rsm.load(path, rsm.fingerprint(a=1))


def _train(models, *extra, name="bptt_res"):
    return [sys.executable, "train_models.py", name, "--rdm", "--hidden", "8", "--seed", "3",
            "--count", "2", "--max-steps", "40", "--models-dir", str(models), *extra]


def _cut_short(cmd, total: int, threads: int | None = None) -> None:
    """Run ``cmd`` (train_models.py, progress bar on) and SIGTERM it once the bar
    shows 3 or more of its ``total`` updates done (the bar skips some)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": str(threads or torch.get_num_threads())}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    buf, deadline = "", time.time() + 60
    while time.time() < deadline and not any(int(k) >= 3
                                             for k in re.findall(rf"(\d+)/{total}", buf)):
        buf += proc.stderr.read(1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err


def test_train_models_resume_after_sigterm_equals_a_straight_run(tmp_path):
    straight = tmp_path / "straight"
    r = run_script(*_train(straight, "--quiet")[1:])
    assert r.returncode == 0, r.stderr
    cut = tmp_path / "cut"
    _cut_short(_train(cut, "--resume"), 40)
    ck = cut / "bptt_res_000.ckpt"
    assert ck.exists()
    first = json.loads((cut / "bptt_res_000.json").read_text())
    assert first["status"] == "interrupted" and 3 <= first["steps"] < 40
    r = run_script(*_train(cut, "--resume")[1:], fresh=True)
    assert r.returncode == 0, r.stderr
    assert f"resuming {ck.name} after step" in r.stdout
    assert not ck.exists()                       # the run ended
    for nm in ("bptt_res_000", "bptt_res_001"):
        a, b = load_model(nm, straight), load_model(nm, cut)
        assert torch.equal(a.model.W_rec, b.model.W_rec)
        torch.testing.assert_close(a.history["loss"], b.history["loss"], rtol=0, atol=0)
        meta = json.loads((cut / f"{nm}.json").read_text())
        assert meta["steps"] == 40
        assert [g["from_update"] for g in meta["segments"]] == [0, first["steps"]]
        assert meta["segments"][1]["cpu"] == meta["versions"]["cpu"]
        # the second stretch's CPU count began where the checkpoint's stood
        assert "cpu_time" not in meta["segments"][0]
        s0, u0 = meta["segments"][1]["cpu_time"]
        assert u0 == first["steps"] and 0 < s0 < meta["cpu_time_s"]
        assert meta["cpu_time_updates"] == 40 and meta["cpu_time_s"] > 0


@pytest.mark.parametrize("sidecar", ["missing", "truncated"])
def test_resume_never_retrains_a_finished_network_whose_json_was_lost(tmp_path, sidecar):
    """The .pt holds the network's own record: with NAME.json gone or cut short,
    --resume (with an unusable checkpoint) still knows the network is finished."""
    models = tmp_path / "m"
    r = run_script(*_train(models, "--quiet", "--max-steps", "2")[1:], fresh=True)
    assert r.returncode == 0, r.stderr
    before = (models / "bptt_res_000.pt").read_bytes()
    js = models / "bptt_res_000.json"
    if sidecar == "missing":
        js.unlink()
    else:
        js.write_text(js.read_text()[:40])
    (models / "bptt_res_000.ckpt").write_bytes(b"damaged")
    r = run_script(*_train(models, "--quiet", "--max-steps", "2", "--resume")[1:])
    assert r.returncode == 3 and "finished network" in r.stderr, r.stderr
    assert (models / "bptt_res_000.pt").read_bytes() == before


def test_an_unusable_checkpoint_is_set_aside_and_a_finished_network_kept(tmp_path):
    models = tmp_path / "m"
    r = run_script(*_train(models, "--quiet", "--max-steps", "2")[1:], fresh=True)
    assert r.returncode == 0, r.stderr
    before = (models / "bptt_res_000.pt").read_bytes()
    (models / "bptt_res_000.ckpt").write_bytes(b"damaged")
    r = run_script(*_train(models, "--quiet", "--max-steps", "2", "--resume")[1:])
    assert r.returncode == 3      # rnn.resume.UNUSABLE_EXIT: the grid runner tells it by this
    assert "checkpoint" in r.stderr and "set aside" in r.stderr and "--force" in r.stderr
    assert (models / "bptt_res_000.ckpt.unusable").exists()
    assert not (models / "bptt_res_000.ckpt").exists()
    assert (models / "bptt_res_000.pt").read_bytes() == before
    r = run_script(*_train(models, "--quiet", "--resume", "--record-activity")[1:])
    assert r.returncode == 2 and "--record-activity" in r.stderr


def test_the_grid_runner_forms_a_cut_job_again(tmp_path):
    cell = Cell("rdm", "bptt", networks=6, first_seed=100, chunk=4, hidden=8, max_steps=2)
    # seeds 100..103 ran as one job, cut short; 101 finished meanwhile
    names = [f"{cell.name}_s100_{i:03d}" for i in range(4)]
    rsm.save(tmp_path / f"{names[0]}.ckpt", rsm.fingerprint(seeds=[100, 101, 102, 103],
                                                              names=names), {}, types.SimpleNamespace())
    for nm, seed, st in ((names[1], 101, "converged"), (names[2], 102, "in_progress")):
        (tmp_path / f"{nm}.json").write_text(json.dumps({"name": nm, "seed": seed,
                                                         "status": st}))
        (tmp_path / f"{nm}.pt").write_bytes(b"")
    jobs = jobs_for(cell, tmp_path, chunk=2)
    assert [(j.seed, j.count) for j in jobs] == [(100, 4), (104, 2)]
    # a damaged checkpoint names no job: the seeds are chunked as usual
    (tmp_path / f"{names[0]}.ckpt").write_bytes(b"x")
    assert [(j.seed, j.count) for j in jobs_for(cell, tmp_path, chunk=2)] == [
        (100, 1), (102, 2), (104, 2)]


def test_a_job_whose_checkpoint_cannot_be_used_trains_only_its_unfinished_networks(tmp_path):
    from rnn.grid.runner import run_job
    cell = Cell("rdm", "bptt", networks=2, first_seed=100, chunk=2, hidden=8, max_steps=2)
    job = jobs_for(cell, tmp_path)[0]
    assert (job.seed, job.count) == (100, 2)
    rec = run_job(job, str(tmp_path))
    assert rec["status"] == ["budget", "budget"]
    names = [f"{cell.name}_s100_{i:03d}" for i in range(2)]
    kept = (tmp_path / f"{names[0]}.pt").read_bytes()
    # seed 101 cut short, its job's checkpoint from another run (e.g. another device)
    meta = json.loads((tmp_path / f"{names[1]}.json").read_text())
    (tmp_path / f"{names[1]}.json").write_text(json.dumps({**meta, "status": "in_progress"}))
    rsm.save(tmp_path / f"{names[0]}.ckpt", rsm.fingerprint(seeds=[100, 101], names=names,
                                                            device="cuda"), {},
             types.SimpleNamespace())
    jobs = jobs_for(cell, tmp_path)
    assert [(j.seed, j.count) for j in jobs] == [(100, 2)]
    rec = run_job(jobs[0], str(tmp_path))
    assert rec["status"] == ["budget", "budget"] and "afresh" in rec["note"]
    assert "resumed_after" not in rec
    assert (tmp_path / f"{names[0]}.pt").read_bytes() == kept      # never retrained
    assert (tmp_path / f"{names[0]}.ckpt.unusable").exists()
    assert json.loads((tmp_path / f"{cell.name}_s101.json").read_text())["status"] == "budget"


def test_run_grid_list_says_where_a_cut_job_goes_on(tmp_path):
    g = tmp_path / "g.toml"
    g.write_text('[grid]\nname = "l"\nhidden = 8\nmax_steps = 2\nnetworks = 2\n'
                 'first_seed = 100\nchunk = 2\n[[cells]]\ntask = "rdm"\nrule = "bptt"\n')
    (tmp_path / "m").mkdir()
    cell = Cell("rdm", "bptt", networks=2, first_seed=100, chunk=2, hidden=8, max_steps=2)
    names = [f"{cell.name}_s100_{i:03d}" for i in range(2)]
    rsm.save(tmp_path / "m" / f"{names[0]}.ckpt",
             rsm.fingerprint(seeds=[100, 101], names=names), {"step": 7},
             types.SimpleNamespace())
    r = run_script("run_grid.py", g, "--list", "--models-dir", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    assert f"{cell.name}: 0/2 trained; 1 job(s)" in r.stdout
    assert "the job of seed 100 goes on after update 7;" in r.stdout   # nothing to add
    rsm.save(tmp_path / "m" / f"{names[0]}.ckpt",
             rsm.fingerprint(seeds=[100, 101], names=names, stop_rule={"threshold": 0.9}),
             {"step": 9, "active": [0], "status": ["budget", "converged"],
              "val_steps": [[5, 9, 8], [4]], "val_acc": [[0.5, 0.8125, 0.7], [0.95]]},
             types.SimpleNamespace())
    r = run_script("run_grid.py", g, "--list", "--models-dir", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    assert ("the job of seed 100 goes on after update 9 (latest validation accuracy "
            "0.812, converged; the stop rule asks for 0.9)") in r.stdout


def test_standing_reads_what_a_checkpoint_holds_and_trusts_none_of_it(tmp_path):
    ck, fp = tmp_path / "a.ckpt", rsm.fingerprint(stop_rule={"threshold": 0.75})
    full = {"step": 3, "active": [0, 1], "status": ["budget", "budget"],
            "val_steps": [[], [2]], "val_acc": [[], [float("nan")]]}
    rsm.save(ck, fp, full, types.SimpleNamespace())
    assert rsm.standing(ck) == (3, "not validated yet")
    rsm.save(ck, fp, {**full, "val_steps": [[1], [2]], "val_acc": [[0.25], [1.0]]},
             types.SimpleNamespace())
    assert rsm.standing(ck) == (3, "latest validation accuracy 0.250, 1.000; the stop "
                                   "rule asks for 0.75")
    for damaged in ({"val_acc": "x"}, {"val_steps": [[1]]}, {"status": None, "active": []},
                    {"val_acc": [["a"], [1.0]]}):
        rsm.save(ck, fp, {**full, "val_steps": [[1], [2]], "val_acc": [[0.25], [1.0]],
                          **damaged}, types.SimpleNamespace())
        assert rsm.standing(ck) == (3, ""), damaged
    rsm.save(ck, "not json", {**full, "val_steps": [[1], [2]], "val_acc": [[0.25], [1.0]]},
             types.SimpleNamespace())
    assert rsm.standing(ck) == (3, "latest validation accuracy 0.250, 1.000")
    rsm.save(ck, fp, {"step": True}, types.SimpleNamespace())
    assert rsm.standing(ck) == (None, "")
    ck.write_bytes(b"not a checkpoint")
    assert rsm.standing(ck) == (None, "") and rsm.reached(ck) is None


def test_state_a_checkpoint_cannot_hold_is_an_error_not_lost():
    import numpy as np
    tr = RULES["bptt"]()
    tr.extra = np.zeros(3)                       # e.g. a new rule keeping numpy state
    with pytest.raises(TypeError, match="cannot checkpoint a ndarray"):
        rsm.object_state(tr)
    tr.extra = {1: torch.zeros(2)}               # keys a checkpoint cannot name
    with pytest.raises(TypeError, match="keys are not strings"):
        rsm.object_state(tr)


def test_resume_keeps_the_batches_an_earlier_run_finished(tmp_path):
    models = tmp_path / "m"
    argv = ["train_models.py", "bptt_mb", "--rdm", "--hidden", "8", "--seed", "3", "--count",
            "2", "--max-batch", "1", "--max-steps", "2", "--quiet", "--models-dir", models]
    r = run_script(*argv)
    assert r.returncode == 0, r.stderr
    first = (models / "bptt_mb_000.pt").read_bytes()
    # the second batch was cut short before its first checkpoint
    meta = json.loads((models / "bptt_mb_001.json").read_text())
    (models / "bptt_mb_001.json").write_text(json.dumps({**meta, "status": "in_progress"}))
    r = run_script(*argv, "--resume")
    assert r.returncode == 0, r.stderr
    assert (models / "bptt_mb_000.pt").read_bytes() == first
    assert json.loads((models / "bptt_mb_001.json").read_text())["status"] == "budget"
    assert (models / "bptt_mb.txt").read_text().split() == ["bptt_mb", "bptt_mb_000",
                                                            "bptt_mb_001"]
    # everything finished: --resume trains nothing
    r = run_script(*argv, "--resume")
    assert r.returncode == 0 and (models / "bptt_mb_000.pt").read_bytes() == first


def test_a_grid_job_cut_short_goes_on_from_its_checkpoint(tmp_path):
    from rnn.grid.runner import run_job
    cell = Cell("rdm", "bptt", networks=2, first_seed=100, chunk=2, hidden=8, max_steps=40)
    job = jobs_for(cell, tmp_path)[0]
    # the command run_job runs, cut short as a killed job would be
    _cut_short([sys.executable, "train_models.py", job.name, *cell.train_args(), "--count",
                "2", "--seed", "100", "--device", "cpu", "--models-dir", str(tmp_path),
                "--resume"], 40, threads=1)
    step = rsm.reached(tmp_path / f"{job.name}_000.ckpt")
    assert 3 <= step < 40
    again = jobs_for(cell, tmp_path)
    assert [(j.seed, j.count) for j in again] == [(100, 2)]
    rec = run_job(again[0], str(tmp_path), threads=1)
    assert rec["resumed_after"] == step and rec["status"] == ["budget", "budget"]
    assert not (tmp_path / f"{job.name}_000.ckpt").exists()


def test_a_checkpoint_comes_by_the_clock_too_and_resumes_like_any_other(tmp_path):
    """checkpoint_seconds: a slow rule is checkpointed between the every-100
    updates (here after every update), and resuming from such an off-count
    update ends as the straight run does."""
    tr = RULES["ga"]()
    val = ValidationSet.make(TASK, [5, 6], 16, "cpu", SMALL)
    steps = []
    fit(tr, val, 7, quiet=True, checkpoint=lambda r: steps.append(r.loop["step"]),
        checkpoint_every=100, checkpoint_seconds=0.0)
    assert steps == list(range(1, 8))
    fit(RULES["ga"](), val, 7, quiet=True, checkpoint=lambda r: steps.append(-1),
        checkpoint_every=100, checkpoint_seconds=None)
    assert -1 not in steps                      # neither clock nor count reached
    path = tmp_path / "run.ckpt"

    def ck(res):
        if res.loop["step"] == 5:
            rsm.save(path, "fp", res.loop, a)
    a = RULES["ga"]()
    full = fit(a, val, 9, quiet=True, checkpoint=ck, checkpoint_every=100,
               checkpoint_seconds=0.0)
    b = RULES["ga"]()
    d = rsm.load(path, "fp")
    rsm.load_object_state(b, d["trainer"])
    again = fit(b, val, 9, quiet=True, resume=d["loop"])
    same_run(a, full, b, again)
