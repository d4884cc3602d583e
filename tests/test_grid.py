"""The grid runner: grid files, jobs found again by seed, the embedded Dask
cluster, a real scheduler with two workers, a worker killed mid-job."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import run_script
from rnn.errors import UserError
from rnn.grid.format import Cell, read_grid
from rnn.grid.jobs import finished, jobs_for

ROOT = Path(__file__).resolve().parents[1]
TINY = """
[grid]
name = "tiny"
noise = 0.5
first_seed = 100
hidden = 8
max_steps = {steps}
networks = {networks}
chunk = 2

[[cells]]
task = "rdm"
rule = "bptt"

[[cells]]
task = "cdi"
rule = "ff"
networks = 1
"""


def tiny(tmp_path, steps=2, networks=3) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY.format(steps=steps, networks=networks))
    return p


def weights(folder: Path, name: str) -> dict:
    return torch.load(folder / f"{name}.pt", weights_only=True)["network"]


def _record(folder: Path, name: str, seed: int, status: str, wall: float, count: int,
            steps: int = 10, budget: int = 2000) -> None:
    (folder / f"{name}.json").write_text(json.dumps(
        {"name": name, "seed": seed, "status": status, "wall_time_s": wall, "steps": steps,
         "population": {"count": count}, "trainer": {"max_steps": budget}}))
    (folder / f"{name}.pt").write_bytes(b"x")


def test_what_the_rest_of_a_cell_costs_comes_from_its_own_networks(tmp_path):
    """Known answers: the median of the finished networks' hours (a job's wall
    shared by its networks) times those missing; with none finished, the
    budget at the pace of a job in progress (an upper bound); else untimed."""
    from rnn.grid.jobs import remaining
    cell = Cell(task="rdm", rule="ga", networks=6, first_seed=10, chunk=2)
    r = remaining(tmp_path, cell)
    assert (r.missing, r.hours, r.basis) == (6, None, "not timed yet")
    # a job that has run too few updates to time: its start, not its pace
    from rnn.grid.jobs import MIN_STRETCH
    for i in (0, 1):
        _record(tmp_path, f"{cell.name}_s10_{i:03d}", 10 + i, "interrupted", 86, 2,
                steps=MIN_STRETCH - 1)
    assert remaining(tmp_path, cell).basis == "not timed yet"
    # a job of 2 in progress: 3600 s for 100 updates -> 18 s per update per network
    _record(tmp_path, f"{cell.name}_s10_000", 10, "in_progress", 3600, 2, steps=100)
    _record(tmp_path, f"{cell.name}_s10_001", 11, "in_progress", 3600, 2, steps=100)
    r = remaining(tmp_path, cell)
    assert r.missing == 6 and r.hours == pytest.approx(6 * 2000 * 18 / 3600)
    assert r.basis.startswith("at most 60.0 h of one core") and "18.00 s per update" in r.basis
    # finished: a job of 2 networks in 7200 s (1 h each), one alone in 3 h, one in 2 h
    _record(tmp_path, f"{cell.name}_s10_000", 10, "converged", 7200, 2)
    _record(tmp_path, f"{cell.name}_s10_001", 11, "budget", 7200, 2)
    _record(tmp_path, f"{cell.name}_s12", 12, "converged", 3 * 3600, 1)
    _record(tmp_path, f"{cell.name}_s13", 13, "converged", 2 * 3600, 1)
    r = remaining(tmp_path, cell)                    # median of 1, 1, 3, 2 h: 1.5 h
    assert (r.missing, r.hours) == (2, pytest.approx(3.0))
    assert r.describe() == ("2 to train, about 3.0 h of one core (the median 1.50 h of its "
                            "4 trained networks)")
    for seed in (14, 15):
        _record(tmp_path, f"{cell.name}_s{seed}", seed, "stalled", 60, 1)
    r = remaining(tmp_path, cell)
    assert (r.missing, r.hours, r.describe()) == (0, 0.0, "complete")


def test_a_network_s_hours_are_its_job_s_cpu_time_where_recorded():
    """A paused (SIGSTOP) or crowded job's wall time grows, its CPU time does not:
    the CPU time where the record has it, scaled to every update where it covers
    only the stretches since an older checkpoint, else the wall time."""
    from rnn.grid.jobs import network_hours
    base = {"wall_time_s": 7200.0, "steps": 100, "population": {"count": 2}}
    assert network_hours(base) == pytest.approx(1.0)                 # 7200 s / 2 networks
    assert network_hours({**base, "cpu_time_s": 3600.0, "cpu_time_updates": 100}) == \
        pytest.approx(0.5)
    # 900 CPU s over the last 25 of 100 updates: 36 s per update, 3600 s in all
    assert network_hours({**base, "cpu_time_s": 900.0, "cpu_time_updates": 25}) == \
        pytest.approx(0.5)
    # a job whose network converged at update 60 while the job ran 100: the job's time
    assert network_hours({**base, "steps": 60, "cpu_time_s": 3600.0,
                          "cpu_time_updates": 100}) == pytest.approx(0.5)
    for bad in ({"cpu_time_s": -1.0, "cpu_time_updates": 10}, {"cpu_time_s": float("nan"),
                "cpu_time_updates": 10}, {"cpu_time_s": 10.0, "cpu_time_updates": 0},
                {"cpu_time_s": 10.0, "cpu_time_updates": True}, {"cpu_time_s": "10"}):
        assert network_hours({**base, **bad}) == pytest.approx(1.0)  # the wall time
    assert network_hours({"steps": 5}) is None
    assert network_hours({"wall_time_s": float("inf")}) is None


def test_a_job_in_progress_is_timed_by_its_latest_stretch_where_its_record_says(tmp_path):
    """Known answers: a job of 2 went on at update 100 on a faster machine (its
    first 100 updates took 3600 CPU s, the next 50 took 300 s): the upper bound
    reads 300 / 50 / 2 = 3 s per update per network, not the whole run's
    3900 / 150 / 2 = 13 s; a stretch too short to read, a segment without its
    CPU count or a record that contradicts it fall back to the whole run."""
    from rnn.grid.jobs import MIN_STRETCH, latest_pace, remaining
    from rnn.resume import segment
    cell = Cell(task="rdm", rule="ga", networks=4, first_seed=10, chunk=2)
    segs = [segment(0, "old CPU", "Linux"), segment(100, "new CPU", "Linux",
                                                    cpu_time=[3600.0, 100])]
    meta = {"status": "in_progress", "steps": 150, "population": {"count": 2},
            "cpu_time_s": 3900.0, "cpu_time_updates": 150, "segments": segs,
            "trainer": {"max_steps": 2000}}
    assert latest_pace(meta) * 3600 == pytest.approx(3.0)
    for i, seed in enumerate((10, 11)):
        (tmp_path / f"{cell.name}_s10_{i:03d}.json").write_text(json.dumps(
            {**meta, "name": f"{cell.name}_s10_{i:03d}", "seed": seed}))
        (tmp_path / f"{cell.name}_s10_{i:03d}.pt").write_bytes(b"x")
    r = remaining(tmp_path, cell)
    assert r.hours == pytest.approx(4 * 2000 * 3.0 / 3600)
    assert r.basis == ("at most 6.7 h of one core (the budget, 2000 updates, at the latest "
                       "pace of a job in progress: 3.00 s per update per network)")
    short = {**meta, "steps": 100 + MIN_STRETCH - 1, "cpu_time_updates": 100 + MIN_STRETCH - 1}
    no_count = {**meta, "segments": [segs[0], segment(100, "new CPU", "Linux")]}
    backwards = {**meta, "cpu_time_s": 3000.0}
    for m in (short, no_count, backwards, {**meta, "segments": []},
              {**meta, "segments": [segs[0], {**segs[1], "cpu_time": "x"}]},
              {**meta, "cpu_time_updates": None}):
        assert latest_pace(m) is None
    (tmp_path / f"{cell.name}_s10_000.json").write_text(json.dumps(
        {**no_count, "name": f"{cell.name}_s10_000", "seed": 10}))
    (tmp_path / f"{cell.name}_s10_001.json").write_text(json.dumps(
        {**no_count, "name": f"{cell.name}_s10_001", "seed": 11}))
    assert "at the pace of a job in progress: 13.00 s per update" in \
        remaining(tmp_path, cell).basis


def test_grid_file_expands_cells_and_refuses_bad_ones(tmp_path):
    g = tmp_path / "g.toml"
    g.write_text('[grid]\nnetworks = 3\n[[cells]]\ntask = "ncdi"\nN = [1, 3]\n'
                 'rule = ["bptt", "ga"]\nshared_x0 = false\n'
                 '[[compare]]\nname = "x"\ngroups = { A = "ncdi1-bptt-v050-clean-nosharedx0" }\n')
    grid = read_grid(g)
    assert [c.name for c in grid.cells] == [
        "ncdi1-bptt-v050-clean-nosharedx0", "ncdi1-ga-v050-clean-nosharedx0",
        "ncdi3-bptt-v050-clean-nosharedx0", "ncdi3-ga-v050-clean-nosharedx0"]
    c = grid.cells[2]
    assert c.seeds() == [0, 1, 2]
    assert c.train_args() == ["-v", "0.5", "--N", "3", "--rule", "bptt", "--protocol", "clean",
                              "--no-shared-x0"]
    for text, msg in (
            ('[[cells]]\ntask = "xor"\nrule = "bptt"\n', "task must be one of"),
            ('[[cells]]\ntask = "ncdi"\nrule = "bptt"\n', "needs N"),
            ('[[cells]]\ntask = "rdm"\nrule = "bptt"\nnetwork = 3\n', "unknown key 'network'"),
            ('[[cells]]\ntask = "rdm"\nrule = "bptt"\nnetworks = -1\n', "networks must be"),
            ('[[cells]]\ntask = "rdm"\nrule = ["bptt", "ga"]\nname = "a"\n', "cannot have one"),
            ('[[cells]]\ntask = "rdm"\nrule = "bptt"\n[[cells]]\ntask = "rdm"\nrule = "bptt"\n',
             "two cells are named"),
            ('[[cells]]\ntask = "rdm"\nrule = "bptt"\n[[compare]]\nname = "c"\n'
             'groups = { A = "nope" }\n', "does not have"),
            ('[[cells]\n', "not valid TOML"), ('[grid]\n', "no [[cells]]")):
        g.write_text(text)
        with pytest.raises(UserError, match=msg.replace("[", r"\[")):
            read_grid(g)
    r = run_script("run_grid.py", str(g), "--list")
    assert r.returncode == 2 and "no [[cells]]" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_jobs_are_runs_of_unfinished_seeds(tmp_path):
    cell = Cell(task="rdm", rule="bptt", networks=7, first_seed=10, chunk=3)
    jobs = jobs_for(cell, tmp_path)
    assert [(j.seed, j.count) for j in jobs] == [(10, 3), (13, 3), (16, 1)]
    # seed 14 finished under another chunk's name: the jobs go around it
    (tmp_path / f"{cell.name}_s14_000.json").write_text(json.dumps(
        {"name": f"{cell.name}_s14_000", "seed": 14, "status": "converged"}))
    (tmp_path / f"{cell.name}_s14_000.pt").write_bytes(b"x")
    assert list(finished(tmp_path, cell)) == [14]
    assert [(j.seed, j.count) for j in jobs_for(cell, tmp_path)] == [(10, 3), (13, 1), (15, 2)]


def test_embedded_cluster_trains_the_grid_and_a_rerun_trains_nothing(tmp_path):
    grid, models = tiny(tmp_path), tmp_path / "models"
    r = run_script("run_grid.py", str(grid), "--models-dir", str(models), "--workers", "2",
                   timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Dask: 2 worker(s)" in r.stdout and "dashboard http" in r.stdout
    summary = json.loads((models / "tiny_grid.json").read_text())
    assert [c["trained"] for c in summary["cells"]] == [3, 1]
    assert len(summary["jobs"]) == 3 and all(j["trained"] for j in summary["jobs"])
    for name in ("rdm-bptt-v050-clean-h8_s100_000", "rdm-bptt-v050-clean-h8_s100_001",
                 "rdm-bptt-v050-clean-h8_s102", "cdi-ff-v050-clean-h8_s100"):
        meta = json.loads((models / f"{name}.json").read_text())
        assert meta["status"] == "budget" and meta["seed"] in (100, 101, 102)
    assert not list(models.glob(".*.tmp"))
    again = run_script("run_grid.py", str(grid), "--models-dir", str(models), timeout=300)
    assert again.returncode == 0, again.stderr
    assert "0 jobs to run" in again.stdout and "Dask" not in again.stdout
    # the same seeds give the same networks as a direct train_models.py run
    ref = tmp_path / "ref"
    d = run_script("train_models.py", "rdm-bptt-v050-clean-h8_s102", "-v", "0.5", "--rdm",
                   "--rule", "bptt", "--hidden", "8", "--max-steps", "2", "--seed", "102",
                   "--quiet", "--models-dir", str(ref), env_extra={"OMP_NUM_THREADS": "1"})
    assert d.returncode == 0, d.stderr
    a, b = weights(models, "rdm-bptt-v050-clean-h8_s102"), \
        weights(ref, "rdm-bptt-v050-clean-h8_s102")
    assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, **kw)


def wait_for_workers(address: str, n: int, timeout=90):
    from distributed import Client
    with Client(address, timeout="30s") as c:
        c.wait_for_workers(n, timeout=timeout)
        return len(c.scheduler_info()["workers"])


def stop(*procs):
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def test_real_scheduler_two_workers_and_a_worker_killed_mid_job(tmp_path):
    psutil = pytest.importorskip("psutil")
    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    sched = start([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                   "--dashboard-address", ":0"])
    workers = [start([dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                      "--no-nanny", "--dashboard-address", ":0"]) for _ in range(2)]
    runner = None
    try:
        assert wait_for_workers(address, 2) == 2
        pids = [w.pid for w in workers]       # --no-nanny: the worker runs in this process
        # one long job (two networks, 60 updates, ~7 s on a 2-core CPU) and one short one
        grid = tmp_path / "g.toml"
        grid.write_text('[grid]\nname = "kill"\nhidden = 8\nfirst_seed = 7\nchunk = 2\n'
                        '[[cells]]\ntask = "rdm"\nrule = "bptt"\nnetworks = 2\nmax_steps = 60\n'
                        '[[cells]]\ntask = "cdi"\nrule = "ff"\nnetworks = 1\nmax_steps = 2\n')
        models = tmp_path / "models"
        runner = start([sys.executable, "run_grid.py", str(grid), "--scheduler", address,
                        "--models-dir", str(models), "--no-compare"])
        # find the worker whose training subprocess runs the long job, let it work, kill it
        victim, deadline = None, time.time() + 120
        while victim is None and time.time() < deadline:
            for pid in pids:
                for ch in psutil.Process(pid).children(recursive=True):
                    try:
                        if "rdm-bptt" in " ".join(ch.cmdline()):
                            victim = pid
                    except psutil.NoSuchProcess:
                        pass
            time.sleep(0.2)
        assert victim is not None, "the long job never started"
        time.sleep(4)                          # mid-training (checkpoints, temp files)
        os.kill(victim, signal.SIGKILL)
        out, _ = runner.communicate(timeout=400)
        text = out.decode()
        assert runner.returncode == 0, text
        assert "rdm-bptt-v050-clean-h8_s7: 0/2 converged" in text
        summary = json.loads((models / "kill_grid.json").read_text())
        done = [j for j in summary["jobs"] if j["job"] == "rdm-bptt-v050-clean-h8_s7"]
        assert len(done) == 1 and str(victim) not in done[0]["worker"]
        assert not list(models.glob(".*tmp*"))
        for js in models.glob("*_s*.json"):
            meta = json.loads(js.read_text())
            assert meta["status"] == "budget", meta["status"]
            torch.load(js.with_suffix(".pt"), weights_only=True)
        # identical to a run that was never interrupted
        ref = tmp_path / "ref"
        d = run_script("train_models.py", "ref", "-v", "0.5", "--rdm", "--rule", "bptt",
                       "--hidden", "8", "--max-steps", "60", "--seed", "7", "--count", "2",
                       "--quiet", "--models-dir", str(ref), timeout=400,
                       env_extra={"OMP_NUM_THREADS": "1"})      # a grid job's threads
        assert d.returncode == 0, d.stderr
        for i in range(2):
            a = weights(models, f"rdm-bptt-v050-clean-h8_s7_00{i}")
            b = weights(ref, f"ref_00{i}")
            assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))
    finally:
        stop(*(p for p in (runner, *workers, sched) if p is not None))


def test_compare_by_a_cell_key_is_checked_before_any_work(tmp_path):
    g = tmp_path / "g.toml"
    head = ('[grid]\nnetworks = 2\n[[cells]]\ntask = "rdm"\nrule = "bptt"\n'
            'noise = [0.1, 0.5, 1.0]\n[[cells]]\ntask = "cdi"\nrule = "ga"\n')
    g.write_text(head + '[[compare]]\nname = "rdm_noise"\nby = "noise"\n'
                 'cells = { task = "rdm" }\nmetrics = ["topology", "svcca"]\n')
    comp = read_grid(g).comparisons[0]
    assert comp.groups == {"noise=0.1": "rdm-bptt-v010-clean", "noise=0.5": "rdm-bptt-v050-clean",
                           "noise=1": "rdm-bptt-v100-clean"}
    assert comp.metrics == ["topology", "svcca"]
    for text, msg in (
            ('by = "noise"\n', "both have noise=0.5"),                # rdm and cdi at 0.5
            ('by = "colour"\n', "by must be a cell key"),
            ('by = "rule"\ncells = { task = "rdm", noise = 0.1 }\n', "fewer than two values"),
            ('groups = { A = "rdm-bptt-v010-clean" }\nmetrics = ["svcca", "nosuch"]\n',
             "metrics must be a list of"),
            ('groups = { A = "rdm-bptt-v010-clean", B = "rdm-bptt-v010-clean" }\n',
             "two labels name the same cell"),
            ('groups = { A = "rdm-bptt-v010-clean" }\nby = "noise"\n', "not both"),
            ('groups = { A = "rdm-bptt-v010-clean" }\ncolour = 1\n', "unknown key 'colour'")):
        g.write_text(head + '[[compare]]\nname = "c"\n' + text)
        with pytest.raises(UserError, match=msg):
            read_grid(g)


def test_jobs_run_in_rounds_over_the_cells(tmp_path):
    from rnn.grid.jobs import interleave
    a = Cell(task="rdm", rule="bptt", networks=6, chunk=2)       # jobs at 0, 1/3, 2/3
    b = Cell(task="cdi", rule="ga", networks=3, chunk=1)         # jobs at 0, 1/3, 2/3
    c = Cell(task="rdm", rule="ff", networks=4, chunk=4)         # one job at 0
    order = interleave([jobs_for(x, tmp_path) for x in (a, b, c)])
    assert [(j.cell.rule, j.seed) for j in order] == [
        ("bptt", 0), ("ga", 0), ("ff", 0), ("bptt", 2), ("ga", 1), ("bptt", 4), ("ga", 2)]


def test_grid_compares_noise_levels_by_topology_and_geometry(tmp_path):
    """A [[compare]] by noise level with the topology beside a similarity metric,
    on converged networks (copies of the shipped sample, filed as two cells)."""
    import run_grid
    from helpers import file_as_cell
    g = tmp_path / "g.toml"
    g.write_text('[grid]\nname = "nz"\nnetworks = 3\nfirst_seed = 0\n[[cells]]\ntask = "rdm"\n'
                 'rule = "bptt"\nnoise = [0.1, 0.5]\n[[compare]]\nname = "nz_noise"\n'
                 'by = "noise"\nmetrics = ["topology", "cka"]\n')
    grid = read_grid(g)
    folder = tmp_path / "m"
    for cell, src in zip(grid.cells, ("bptt_s", "ga_s")):
        file_as_cell(folder, cell.name, src)
    out = run_grid.compare(grid, folder, quiet=True)
    assert out[0]["networks"] == {"noise=0.1": 3, "noise=0.5": 3}
    rows = {r["label"]: r for r in out[0]["metrics"]}
    assert set(rows) == {"attractor topology", "1 − CKA"}
    # the script on the groups file the grid wrote agrees with the grid's own numbers
    r = run_script("fixed_point_input_topology.py", "nz_noise.txt", "--models-dir", str(folder))
    assert r.returncode == 0, r.stderr
    topo = json.loads((folder / "nz_noise_topology.json").read_text())
    # (the script's silhouette is scikit-learn's on the descriptors: equal to rounding)
    assert rows["attractor topology"]["silhouette"] == pytest.approx(
        topo["silhouette_euclidean"], abs=1e-6)
    assert rows["attractor topology"]["silhouette_interval_95"] == topo["silhouette_interval_95"]
    lo, hi = topo["silhouette_interval_95"]
    assert lo <= topo["silhouette_euclidean"] <= hi and 0 < topo["silhouette_permutation_p"] <= 1
    assert (folder / "nz_noise.txt").read_text().splitlines()[0].startswith("noise=0.1 rdm-bptt")
    md = run_grid.write_summary(grid, folder, [], [], out, 0.0)[1]
    assert "| attractor topology |" in Path(md).read_text()


def test_grid_refuses_an_empty_list_and_a_bad_scheduler_address(tmp_path):
    g = tmp_path / "g.toml"
    g.write_text('[[cells]]\ntask = "rdm"\nrule = []\n')
    r = run_script("run_grid.py", str(g), "--list")
    assert r.returncode == 2 and "rule = [] makes no cell" in r.stderr
    g.write_text('[grid]\nhidden = 8\nmax_steps = 1\nnetworks = 1\n[[cells]]\ntask = "rdm"\n'
                 'rule = "bptt"\n')
    r = run_script("run_grid.py", str(g), "--scheduler", "not a url", "--models-dir",
                   str(tmp_path / "m"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "cannot reach the Dask scheduler" in r.stderr


def test_a_damaged_sidecar_never_gets_a_finished_network_retrained(tmp_path):
    """The .pt is the source of truth: a malformed CELL_sSEED.json beside a
    converged network leaves the seed finished (no job, nothing overwritten)."""
    cell = Cell(task="rdm", rule="bptt", networks=2, first_seed=100)
    for k, seed in enumerate((100, 101)):
        name = f"{cell.name}_s100_{k:03d}"
        payload = torch.load(ROOT / "models" / "bptt_s_000.pt", weights_only=True)
        payload["meta"].update(name=name, seed=seed, status="converged")
        torch.save(payload, tmp_path / f"{name}.pt")
        (tmp_path / f"{name}.json").write_text(json.dumps(payload["meta"]))
    (tmp_path / f"{cell.name}_s100_001.json").write_text('{"name": "trunc')     # damaged
    before = (tmp_path / f"{cell.name}_s100_001.pt").read_bytes()
    assert sorted(finished(tmp_path, cell)) == [100, 101]
    assert jobs_for(cell, tmp_path) == []
    assert (tmp_path / f"{cell.name}_s100_001.pt").read_bytes() == before


def make_certificates(folder: Path) -> None:
    """A CA and a certificate for localhost signed by it (openssl), in ``folder``."""
    folder.mkdir()

    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=test-ca")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "req.csr",
        "-subj", "/CN=localhost")
    (folder / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "req.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf")


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_a_tls_scheduler_trains_for_its_certificate_holders_only(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    make_certificates(ours)
    make_certificates(theirs)
    tls = lambda d: ["--tls-ca-file", str(d / "ca.pem"), "--tls-cert", str(d / "cert.pem"),  # noqa: E731
                     "--tls-key", str(d / "key.pem")]
    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    address = f"tls://127.0.0.1:{port}"
    sched = start([dask, "scheduler", "--protocol", "tls", "--host", "127.0.0.1", "--port",
                   str(port), "--no-dashboard", *tls(ours)])
    worker = start([dask, "worker", address, "--nthreads", "1", "--no-nanny",
                    "--no-dashboard", *tls(ours)])
    try:
        grid = tmp_path / "g.toml"
        grid.write_text('[grid]\nname = "tls"\nhidden = 8\nnetworks = 1\nmax_steps = 2\n'
                        '[[cells]]\ntask = "rdm"\nrule = "bptt"\n')
        models = tmp_path / "models"
        base = ["run_grid.py", str(grid), "--scheduler", address, "--models-dir", str(models),
                "--no-compare", "--quiet"]
        r = run_script(*base, *tls(ours), timeout=180, fresh=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert len(list(models.glob("rdm-bptt-*.pt"))) == 1
        # a certificate of another CA is refused, in one line (a fresh folder: work to send)
        base[base.index("--models-dir") + 1] = str(tmp_path / "other-models")
        r = run_script(*base, *tls(theirs), timeout=120, fresh=True)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "cannot reach the Dask scheduler" in r.stderr
        # and so is a plain connection, and TLS flags with a tcp:// address
        r = run_script(*base, timeout=60, fresh=True)
        assert r.returncode == 2 and "give --tls-ca-file" in r.stderr
        r = run_script(*base[:3], f"tcp://127.0.0.1:{port}", *base[4:], *tls(ours), fresh=True)
        assert r.returncode == 2 and "must be a tls:// address" in r.stderr
    finally:
        stop(worker, sched)


def test_the_embedded_cluster_keeps_silent_workers():
    # a run paused (SIGSTOP) for more than Dask's default 5-minute worker TTL must
    # not lose its workers and restart their jobs
    from rnn.grid.runner import Pool
    with Pool(workers=1) as pool:
        ttl = pool.start().run_on_scheduler(lambda dask_scheduler: dask_scheduler.worker_ttl)
    assert ttl is None


@pytest.mark.parametrize("text, message", [
    ('[[cells]]\ntask = "ncdi"\nN = true\nrule = "bptt"\n', "N must be an integer"),
    ('[[cells]]\ntask = "rdm"\nrule = "bptt"\nshared_x0 = "yes"\n', "must be true or false"),
    ('[[cells]]\ntask = "rdm"\nrule = "bptt"\nnetworks = true\n', "networks must be an integer"),
    ('[[cells]]\ntask = "rdm"\nrule = "bptt"\n[[comapre]]\nname = "x"\n',
     "unknown table or key 'comapre'"),
    ('title = "x"\n[[cells]]\ntask = "rdm"\nrule = "bptt"\n', "unknown table or key 'title'"),
    ('[[cells]]\ntask = 3\nrule = "bptt"\n', "task must be one of"),
])
def test_grid_values_of_the_wrong_type_and_unknown_tables_are_refused(tmp_path, text, message):
    """A TOML boolean is not a count, a string not a switch, and a misspelt table is
    not silently ignored (its comparison would never run)."""
    g = tmp_path / "g.toml"
    g.write_text(text)
    with pytest.raises(UserError, match=message):
        read_grid(g)


def test_list_and_refusals_create_nothing(tmp_path):
    g = tmp_path / "g.toml"
    g.write_text('[grid]\nname = "x"\n[[cells]]\ntask = "rdm"\nrule = "bptt"\n')
    r = run_script("run_grid.py", str(g), "--list", "--models-dir", str(tmp_path / "new"))
    assert r.returncode == 0 and "0/10 trained" in r.stdout
    g.write_text('[grid]\nname = "x"\n[[cells]]\ntask = "rdm"\nrule = "bptt"\nN = 3\n')
    r = run_script("run_grid.py", str(g), "--models-dir", str(tmp_path / "new"))
    assert r.returncode == 2 and "rdm has no contexts" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.toml"]


def test_commands_prints_each_job_to_run_and_creates_nothing(tmp_path):
    """--commands: one train_models.py line per job still to run (--resume, and
    --force for a job none of whose networks is finished), nothing written."""
    import shlex
    g = tmp_path / "g.toml"
    g.write_text('[grid]\nname = "x"\n[[cells]]\ntask = "rdm"\nrule = "bptt"\nnetworks = 5\n'
                 'chunk = 2\n')
    models = tmp_path / "new"
    r = run_script("run_grid.py", str(g), "--commands", "--device", "cuda", "--models-dir",
                   str(models))
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and len(lines) == 3, r.stderr
    first = shlex.split(lines[0])
    assert first[1].endswith("train_models.py") and first[2] == "rdm-bptt-v050-clean_s0"
    assert first[first.index("--count") + 1] == "2" and "--force" in first
    assert first[first.index("--device") + 1] == "cuda" and "--resume" in first
    assert not models.exists()
    # seed 1 finished: the jobs go around it
    models.mkdir()
    (models / "rdm-bptt-v050-clean_s1.json").write_text(json.dumps(
        {"name": "rdm-bptt-v050-clean_s1", "seed": 1, "status": "converged"}))
    (models / "rdm-bptt-v050-clean_s1.pt").write_bytes(b"x")
    r = run_script("run_grid.py", str(g), "--commands", "--models-dir", str(models))
    lines = [shlex.split(x) for x in r.stdout.strip().splitlines()]
    assert [x[2] for x in lines] == ["rdm-bptt-v050-clean_s0", "rdm-bptt-v050-clean_s2",
                                     "rdm-bptt-v050-clean_s4"]
    assert "--force" in lines[1]
    r = run_script("run_grid.py", str(g), "--commands", "--list")
    assert r.returncode == 2 and "not both" in r.stderr


def test_cells_in_folders_share_names_and_reuse_from_a_sibling(tmp_path):
    """folder: a cell's networks in a sub-folder (cells of one name in two
    folders are FOLDER/NAME); reuse_from: the sibling's network of a seed counts
    when it converged before the stall window could act."""
    g = tmp_path / "g.toml"
    body = ('[grid]\nname = "x"\nnetworks = 3\n[[cells]]\ntask = "rdm"\nrule = "bptt"\n'
            'name = "bptt"\nfolder = "a"\n[[cells]]\ntask = "rdm"\nrule = "bptt"\n'
            'name = "bptt"\nfolder = "b"\noriginal_budgets = false\nreuse_from = "a"\n')
    g.write_text(body)
    grid = read_grid(g)
    assert [c.key for c in grid.cells] == ["a/bptt", "b/bptt"]
    a, b = grid.cells
    assert b.where(tmp_path) == tmp_path / "b"
    (tmp_path / "a").mkdir()
    for seed, steps in ((0, 120), (1, 900)):        # seed 1 converged after the window
        (tmp_path / "a" / f"bptt_s{seed}.json").write_text(json.dumps(
            {"name": f"bptt_s{seed}", "seed": seed, "status": "converged", "steps": steps}))
        (tmp_path / "a" / f"bptt_s{seed}.pt").write_bytes(b"x")
    assert sorted(finished(tmp_path, a)) == [0, 1]
    assert sorted(finished(tmp_path, b)) == [0]        # only the early one is the same network
    assert [(j.label, j.seed, j.count) for j in jobs_for(b, tmp_path, 5)] == [("b/bptt_s1", 1, 2)]
    r = run_script("run_grid.py", str(g), "--commands", "--models-dir", str(tmp_path))
    assert f"--models-dir {tmp_path / 'b'}" in r.stdout and "bptt_s1" in r.stdout
    for text, msg in ((body.replace('reuse_from = "a"', 'reuse_from = "c"'), "has no cell"),
                      (body.replace('folder = "b"', 'folder = "a"').replace(
                          'reuse_from = "a"\n', ''), "two cells are named"),
                      (body.replace('folder = "b"', 'folder = "../b"'), "folder must be"),
                      (body.replace('reuse_from = "a"', 'reuse_from = "b"'), "own folder")):
        g.write_text(text)
        with pytest.raises(UserError, match=msg):
            read_grid(g)


def test_a_grid_cell_may_name_its_architecture(tmp_path):
    from rnn.errors import UserError
    from rnn.grid.format import read_grid
    g = tmp_path / "a.toml"
    g.write_text('[grid]\nname = "a"\nnetworks = 2\n[[cells]]\ntask = "flipflop"\nnoise = 0.0\n'
                 'rule = "bptt"\narch = ["rate", "gru"]\n')
    cells = read_grid(g).cells
    assert [c.name for c in cells] == ["flipflop-bptt-v000-clean", "flipflop-bptt-gru-v000-clean"]
    assert cells[1].train_args()[cells[1].train_args().index("--arch") + 1] == "gru"
    for bad, why in (('task = "cdi"\nrule = "heb"\narch = "lstm"', "trains only the rate"),
                     ('task = "flipflop"\nrule = "ff"', "every step")):
        g.write_text(f'[grid]\nname = "a"\n[[cells]]\n{bad}\n')
        with pytest.raises(UserError, match=why):
            read_grid(g)
    from rnn.grid.format import ROOT
    grid = read_grid(ROOT / "experiments" / "grids" / "universality.toml")
    assert len(grid.cells) == 20 and {c.arch for c in grid.cells} == {None, "rate", "vanilla",
                                                                      "gru", "lstm"}


def test_training_gets_the_caller_s_environment_not_dask_s_allocator_setting(monkeypatch):
    """A Dask nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its worker; passed on to
    training it makes glibc map and unmap every step's tensors (1.6x slower)."""
    import dask
    import distributed  # noqa: F401  (loads the distributed.* defaults into dask.config)

    from rnn.grid.runner import training_env
    want = dask.config.get("distributed.nanny.pre-spawn-environ")["MALLOC_TRIM_THRESHOLD_"]
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", str(want))
    monkeypatch.setenv("RNN_SOMETHING", "kept")
    env = training_env(3)
    assert "MALLOC_TRIM_THRESHOLD_" not in env and env["RNN_SOMETHING"] == "kept"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "123456")        # a user's own value
    assert training_env(1)["MALLOC_TRIM_THRESHOLD_"] == "123456"
