"""The guarded writer of networks (rnn.io.store): one writer per name, stale locks
of dead processes taken over, both files or neither, no overwrite of a
finished network without force, from every door that saves one."""
import json
import os
import subprocess
import sys

import pytest
import torch

import import_model
import train_models
from helpers import ROOT
from rnn import api
from rnn.cli import run_cli
from rnn.errors import UserError
from rnn.io import load_model, save_model
from rnn.model import RateRNN
from rnn.rng import Streams
from rnn.io.store import NameLock, SaveError, lock_path, status_on_disk


def run_main(main, argv, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(main, argv)
    return e.value.code, capsys.readouterr().err


def tiny(seed=0, inputs=3):
    return RateRNN.init(Streams([seed], 1), inputs, hidden=4)


def test_a_held_name_is_refused_until_released(tmp_path):
    with NameLock(tmp_path, ["net_a", "net_b"], what="first run"):
        assert lock_path(tmp_path, "net_a").exists()
        with pytest.raises(UserError, match="being written by another run .first run"):
            NameLock(tmp_path, ["net_b"]).acquire()
        # a refused acquisition leaves none of its own locks behind
        with pytest.raises(UserError):
            NameLock(tmp_path, ["net_c", "net_a"]).acquire()
        assert not lock_path(tmp_path, "net_c").exists()
    assert not lock_path(tmp_path, "net_a").exists()
    with NameLock(tmp_path, ["net_a"]):
        pass


def test_a_killed_holder_leaves_a_stale_lock_that_is_taken_over(tmp_path):
    code = ("import sys, time; from pathlib import Path; from rnn.io.store import NameLock; "
            "NameLock(Path(sys.argv[1]), ['net_k']).acquire(); print('held', flush=True); "
            "time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"PID {p.pid}"):
            NameLock(tmp_path, ["net_k"]).acquire()
    finally:
        p.kill()
        p.wait()
    assert lock_path(tmp_path, "net_k").exists()          # SIGKILL: no cleanup ran
    with NameLock(tmp_path, ["net_k"]):                    # dead holder: stale, taken over
        assert json.loads(lock_path(tmp_path, "net_k").read_text())["pid"] == os.getpid()


def test_a_reused_pid_does_not_keep_a_lock(tmp_path):
    # this process's PID, but another start time: the PID was reused, the lock is stale
    lock_path(tmp_path, "net_r").write_text(json.dumps(
        {"host": __import__("socket").gethostname(), "pid": os.getpid(),
         "started_ticks": "1", "since": "then"}))
    with NameLock(tmp_path, ["net_r"]):
        pass
    lock_path(tmp_path, "net_g").write_text("garbage {")   # unreadable: stale
    with NameLock(tmp_path, ["net_g"]):
        pass


def test_a_failed_write_leaves_the_old_pair(tmp_path, monkeypatch):
    save_model("net", tiny(0), {"status": "in_progress"}, {}, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    import rnn.io
    real = rnn.io.write_temporary
    calls = []

    def second_fails(path, write):          # the .pt is complete, the .json write fails
        calls.append(path)
        if path.suffix == ".json":
            raise OSError(28, "No space left on device")
        return real(path, write)
    monkeypatch.setattr(rnn.io, "write_temporary", second_fails)
    with pytest.raises(SaveError, match="No space left on device"):
        save_model("net", tiny(1), {"status": "converged"}, {}, tmp_path)
    assert len(calls) == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_finished_network_is_kept_without_force(tmp_path):
    save_model("net", tiny(0), {"status": "converged"}, {}, tmp_path)
    with pytest.raises(UserError, match="finished network .converged.; pass --force"):
        save_model("net", tiny(1), {"status": "converged"}, {}, tmp_path)
    # the model file decides when its record is gone
    (tmp_path / "net.json").unlink()
    assert status_on_disk(tmp_path, "net") == "converged"
    with pytest.raises(UserError, match="finished network"):
        save_model("net", tiny(1), {"status": "converged"}, {}, tmp_path)
    save_model("net", tiny(1), {"status": "converged"}, {}, tmp_path, force=True)
    assert torch.equal(torch.load(tmp_path / "net.pt", weights_only=True)["network"]["W_rec"],
                       tiny(1).W_rec[0])
    # what a run wrote itself under its lock it may write again
    with NameLock(tmp_path, ["run"]) as lock:
        save_model("run", tiny(0), {"status": "converged"}, {}, tmp_path, lock=lock)
        save_model("run", tiny(1), {"status": "converged"}, {}, tmp_path, lock=lock)
    assert not list(tmp_path.glob(".*"))        # no locks, no temporaries left


def test_a_second_training_run_of_one_name_is_refused(models_tmp, capsys):
    with NameLock(models_tmp, ["bptt_c_001"], what="another run"):
        code, err = run_main(train_models.main, ["bptt_c", "--rdm", "--count", "2",
                                                 "--max-steps", "2", "--quiet"], capsys)
    assert code == 2 and "being written by another run (another run" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in models_tmp.iterdir()) == [".bptt_c_001.lock"] or \
        not list(models_tmp.iterdir())
    assert not list(models_tmp.glob("*.pt"))


def test_the_run_releases_its_names_on_every_exit(models_tmp, capsys):
    code, _ = run_main(train_models.main, ["bptt_e", "--rdm", "--max-steps", "2", "--quiet",
                                           "--seed", "1"], capsys)
    assert code == 0 and not list(models_tmp.glob(".*lock"))
    code, err = run_main(train_models.main, ["bptt_e", "--rdm", "--max-steps", "2", "--quiet"],
                         capsys)
    assert code == 2 and "already exists" in err and not list(models_tmp.glob(".*lock"))


def test_a_failed_checkpoint_does_not_end_the_run(models_tmp, monkeypatch, capsys):
    from rnn import resume

    def full(*a, **k):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    monkeypatch.setattr(resume, "save", full)
    from rnn import training      # a checkpoint due at every update, not every 100th
    monkeypatch.setattr(training.CheckpointClock, "due", lambda self, step: True)
    code, err = run_main(train_models.main, ["bptt_f", "--rdm", "--max-steps", "5",
                                             "--quiet", "--seed", "2"], capsys)
    assert code == 0 and "checkpoint" in err and "training goes on" in err
    assert load_model("bptt_f", models_tmp).meta["steps"] == 5


def test_api_and_import_take_the_name_too(tmp_path):
    task = api.task("rdm", noise=0.5)
    net = api.Network("net_api", tiny(0, task.n_inputs), task, "bptt", 0, "converged", 10, 0.95)
    with NameLock(tmp_path, ["net_api"]):
        with pytest.raises(UserError, match="being written by another run"):
            api.save(net, tmp_path)
    api.save(net, tmp_path)
    assert not list(tmp_path.glob(".*"))
    (tmp_path / "old_win.txt").write_text("0.1\n0.2\n")
    with NameLock(tmp_path, ["old"]):
        with pytest.raises(UserError, match="being written by another run"):
            import_model.main(["miconi", "old", "-v", "0.5", "--models-dir", str(tmp_path),
                               "--quiet"])


def test_a_zombie_holds_no_lock(tmp_path):
    # a holder that died but was not reaped (its parent killed first, no init to reap it)
    code = "from pathlib import Path; import sys; from rnn.io.store import NameLock; " \
           "NameLock(Path(sys.argv[1]), ['net_z']).acquire(); import os; os._exit(0)"
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for _ in range(600):
            if lock_path(tmp_path, "net_z").exists() and \
                    open(f"/proc/{p.pid}/stat").read().split(")")[-1].split()[0] == "Z":
                break
            __import__("time").sleep(0.05)
        with NameLock(tmp_path, ["net_z"]):       # the zombie's lock is stale
            pass
    finally:
        p.wait()


def test_one_reader_of_records_by_seed(tmp_path):
    from rnn.io.store import records
    for name, seed in (("c_s5_000", 5), ("c_s5_001", 6), ("c_s7", 7), ("c_s5_000_u0050", 5),
                       ("cx_s5", 5)):
        save_model(name, tiny(seed), {"name": name, "seed": seed, "status": "converged"}, {},
                   tmp_path)
    (tmp_path / "c_s5_001.json").write_text("{ damaged")      # the .pt's record decides
    (tmp_path / "c_s7.json").unlink()
    (tmp_path / "c_s9.json").write_text('{"seed": 9}')        # a record without its network
    got = records(tmp_path, "c")
    assert {s: [m["name"] for m in ms] for s, ms in got.items()} == \
        {5: ["c_s5_000"], 6: ["c_s5_001"], 7: ["c_s7"]}


def test_two_training_runs_racing_for_one_name_leave_one_network(models_tmp):
    """Two processes started together for one name: one trains, the other is
    refused in one line (by the lock, or by the finished files if it came
    late); exactly one intact pair of files."""
    argv = [sys.executable, str(ROOT / "train_models.py"), "bptt_race", "--rdm", "--hidden", "8",
            "--max-steps", "150", "--seed", "4", "--quiet", "--models-dir", str(models_tmp)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    err = next(e for p, (_, e) in zip(procs, outs) if p.returncode == 2)
    assert len(err.strip().splitlines()) == 1
    assert "being written by another run" in err or "already exists" in err
    assert sorted(p.name for p in models_tmp.iterdir()) == ["bptt_race.json", "bptt_race.pt"]
    assert load_model("bptt_race", models_tmp).meta["seed"] == 4


def test_an_operating_system_error_is_a_refusal_naming_the_file(capsys):
    def full(argv):
        raise OSError(28, "No space left on device", "/data/models/x.npz")
    with pytest.raises(SystemExit) as e:
        run_cli(full, [])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "/data/models/x.npz: No space left on device" in err and "internal" not in err


def test_a_full_disk_during_an_analysis_is_a_refusal(tmp_path, monkeypatch, capsys):
    import shutil

    import analyze_dynamics
    import rnn.io
    for ext in ("pt", "json"):
        shutil.copy(ROOT / "models" / f"bptt_0050.{ext}", tmp_path / f"bptt_0050.{ext}")

    def full(path, write):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(rnn.io, "write_temporary", full)
    with pytest.raises(SystemExit) as e:
        run_cli(analyze_dynamics.main, ["bptt_0050", "large", "--no-psychometric", "--quiet",
                                        "--models-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "No space left on device" in err
    assert len(err.strip().splitlines()) == 1


@pytest.fixture
def no_hang():
    """Fail, instead of blocking the suite, if a read of a pipe hangs."""
    import signal

    def fail(*_):
        raise TimeoutError("blocked reading a pipe")
    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_pipes_where_files_belong_are_refused_or_replaced(tmp_path, capsys, no_hang):
    import shutil

    import analyze_dynamics
    for ext in ("pt", "json"):
        shutil.copy(ROOT / "models" / f"bptt_0050.{ext}", tmp_path / f"bptt_0050.{ext}")
    os.mkfifo(tmp_path / "x.pt")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(SystemExit) as e:
        run_cli(analyze_dynamics.main, ["x", "large", "--models-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "x.pt is not a regular file" in err
    # a pipe where a cache goes is not read: the cache is recomputed over it
    cache = tmp_path / "bptt_0050_fixed_points_large.npz"
    os.mkfifo(cache)
    with pytest.raises(SystemExit) as e:
        run_cli(analyze_dynamics.main, ["bptt_0050", "large", "--no-psychometric", "--quiet",
                                        "--models-dir", str(tmp_path)])
    assert e.value.code == 0 and cache.is_file() and cache.stat().st_size > 0


def test_a_pipe_as_checkpoint_is_set_aside(models_tmp, capsys, no_hang):
    os.mkfifo(models_tmp / "bptt_p.ckpt")
    with pytest.raises(SystemExit) as e:
        run_cli(train_models.main, ["bptt_p", "--rdm", "--hidden", "8", "--max-steps", "3",
                                    "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert e.value.code == 0 and "is not a regular file; set aside" in err
    assert (models_tmp / "bptt_p.ckpt.unusable").exists() and (models_tmp / "bptt_p.pt").is_file()


def test_a_lock_appears_with_its_record_so_a_racing_run_never_finds_it_empty(
        tmp_path, monkeypatch):
    """The lock file is made by hard-linking a file that already holds the record:
    a second run that reads the lock at any moment finds its holder (an empty
    lock would read as stale and be taken over: two runs training one name)."""
    from pathlib import Path
    real_link = os.link
    seen = []

    def link(src, dst):
        seen.append(json.loads(Path(src).read_text())["pid"])   # complete before it appears
        return real_link(src, dst)
    monkeypatch.setattr(os, "link", link)
    with NameLock(tmp_path, ["a"]) as lock:
        assert seen == [os.getpid()]
        holder = json.loads(lock_path(tmp_path, "a").read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(UserError, match="being written by another run"):
            NameLock(tmp_path, ["a"]).acquire()      # the same process: alive, refused
        assert lock.held
    assert sorted(p.name for p in tmp_path.iterdir()) == []     # no temporary left
