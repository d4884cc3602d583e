"""bench/bench_stall.py end to end on a tiny run: trains with the stall rule
off, keeps the networks, replays the rule, prints the table; a rerun trains
nothing."""
import json

from helpers import run_script


def test_bench_stall_trains_replays_and_resumes(tmp_path):
    args = ["bench/bench_stall.py", "--rule", "heb", "--tasks", "rdm", "--seeds", "2",
            "--max-steps", "3", "--chunk", "2", "--workers", "1", "--window", "2",
            "--models-dir", tmp_path]
    r = run_script(*args, timeout=600)
    assert r.returncode == 0, r.stderr
    row = [ln for ln in r.stdout.splitlines() if ln.startswith("| rdm |")]
    assert len(row) == 1, r.stdout
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert "[rdm] training 2 networks in 1 job(s)" in r.stdout
    assert cells[1] == "2" and int(cells[2]) + int(cells[5]) <= 4
    metas = [json.loads(p.read_text()) for p in tmp_path.glob("*_00?.json")]
    assert len(metas) == 2 and all(m["status"] == "budget" for m in metas)
    assert all(m["trainer"]["max_steps"] == 3 for m in metas)
    listed = [ln.split() for ln in r.stdout.splitlines() if ln.startswith(("  0 ", "  1 "))]
    # seed, status, updates, best accuracy, first >= 0.6, stall stop ("-": 3 updates
    # give too few validations for the rule to act)
    assert [ln[:3] for ln in listed] == [["0", "budget", "3"], ["1", "budget", "3"]]
    assert all(len(ln) == 6 and ln[5] == "-" for ln in listed), listed
    again = run_script(*args, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "[rdm] reusing 2 trained networks" in again.stdout and "Dask:" not in again.stdout
    assert {json.loads(p.read_text())["created"] for p in tmp_path.glob("*_00?.json")} == \
        {m["created"] for m in metas}
    # a partial table: one seed more than trained, nothing trained
    args[args.index("--seeds") + 1] = "3"
    part = run_script(*args, "--only-analyse", timeout=600)
    assert part.returncode == 0, part.stderr
    assert "[rdm] 1 of the 3 networks not trained yet: left out" in part.stdout
    assert "Dask:" not in part.stdout and len(list(tmp_path.glob("*_00?.json"))) == 2
    row = [ln for ln in part.stdout.splitlines() if ln.startswith("| rdm |")][0]
    assert row.strip("|").split("|")[1].strip() == "2"


def _bench():
    from bench import bench_stall
    return bench_stall


def test_replay_tells_a_stuck_network_from_a_slow_climber():
    replay = _bench().replay
    steps = list(range(10, 3001, 10))
    stuck = [0.498] * len(steps)
    climb = [0.40 + 0.3 * s / 3000 for s in steps]          # reaches 0.6 at update 2000
    # the plain rule stops both: the climber's first 500 updates are all below 0.6
    assert replay(steps, stuck, 500, 0.6, 3000) == 500
    assert replay(steps, climb, 500, 0.6, 3000) == 500
    # a longer window stops the climber later; a rule that needs no progress never does
    assert replay(steps, climb, 1000, 0.6, 3000) == 1000
    assert replay(steps, climb, 500, 0.6, 3000, rise=0.02) is None
    assert replay(steps, stuck, 500, 0.6, 3000, rise=0.02) == 500
    # once above the threshold, never stopped; a record shorter than the window, never
    assert replay(steps, [0.7] * len(steps), 500, 0.6, 3000) is None
    assert replay(steps[:40], stuck[:40], 500, 0.6, 400) is None
