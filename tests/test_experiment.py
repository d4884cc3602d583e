"""The paper-reproduction script end to end, on the shipped sample networks
(copied under the experiment's names, so nothing is trained)."""
import json
import shutil

from rnn.io import DEFAULT_MODELS_DIR

from helpers import run_script


def install(models, rule: str, first_seed: int, count: int) -> list[str]:
    """The shipped sample networks of ``rule`` under the names and seeds the
    experiment's cell would give them (a job of ``count`` from ``first_seed``)."""
    names = []
    for i in range(count):
        name = f"xrdm-{rule}-v050_s{first_seed}_{i:03d}"
        shutil.copy(DEFAULT_MODELS_DIR / f"{rule}_s_00{i}.pt", models / f"{name}.pt")
        meta = json.loads((DEFAULT_MODELS_DIR / f"{rule}_s_00{i}.json").read_text())
        meta.update(name=name, seed=first_seed + i)
        (models / f"{name}.json").write_text(json.dumps(meta))
        names.append(name)
    return names


def test_reproduce_reuses_trained_networks_and_writes_the_tables(tmp_path):
    models, out = tmp_path / "models", tmp_path / "out"
    models.mkdir()
    install(models, "bptt", 5000, 3)
    install(models, "ga", 6000, 3)
    r = run_script("experiments/reproduce.py", "--tasks", "rdm", "--rules", "bptt", "ga",
                   "--per-rule", "3", "--out", out, models_dir=models, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "reusing 3 trained networks" in r.stdout and "training" not in r.stdout
    res = json.loads((out / "results.json").read_text())
    rdm = res["tasks"]["rdm"]
    assert rdm["rules"]["bptt"]["converged"] == 3 and rdm["rules"]["ga"]["converged"] == 3
    assert rdm["rules"]["bptt"]["devices"] == ["cpu"]
    comp = rdm["comparisons"]["bptt-ga"]
    assert comp["networks"] == {"BPTT": 3, "GA": 3}
    assert -1 <= comp["svcca_silhouette"] <= 1 and -1 <= comp["topology_silhouette"] <= 1
    assert 0 <= comp["svcca_within"] < 1 and 0 <= comp["svcca_between"] < 1
    variants = json.loads((out / "rdm_svcca_variants.json").read_text())
    # the variants script's own default is the comparison the table reports
    assert abs(variants["tool"]["BPTT vs GA"] - comp["svcca_silhouette"]) < 1e-9
    assert variants["dims2"]["dims"] == [2] * 6
    text = (out / "RESULTS.md").read_text()
    assert "| BPTT vs GA |" in text and "2 SVD directions" in text
    assert "| trained on |" in text and "| cpu |" in text
    lo, hi = comp["svcca_silhouette_ci"]
    assert lo <= comp["svcca_silhouette"] <= hi and 0 < comp["svcca_silhouette_p"] <= 1
    assert f"[{lo:.3f}, {hi:.3f}], p" in text
    for fig in ("svcca_mds", "topology_mds", "svcca_heatmap"):
        assert (out / f"rdm_{fig}.png").stat().st_size > 1000
    # the metrics table: every metric's silhouette, SVCCA's equal to the SVCCA column's
    mets = comp["metrics"]
    assert list(mets) == ["SVCCA", "PWCCA", "1 − CKA", "Procrustes", "DSA (wasserstein)"]
    assert abs(mets["SVCCA"]["silhouette"] - comp["svcca_silhouette"]) < 1e-9
    assert all(-1 <= m["silhouette"] <= 1 for m in mets.values())
    assert "| comparison | SVCCA | PWCCA | 1 − CKA | Procrustes | DSA (wasserstein) | " \
           "topology |" in text


def test_reproduce_retrains_an_interrupted_population(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    install(models, "bptt", 5000, 2)
    meta_path = models / "xrdm-bptt-v050_s5000_001.json"
    meta = json.loads(meta_path.read_text())
    meta["status"], meta["converged"] = "interrupted", False
    meta_path.write_text(json.dumps(meta))
    r = run_script("experiments/reproduce.py", "--tasks", "rdm", "--rules", "bptt",
                   "--per-rule", "2", "--max-steps", "2", "--workers", "1", "--out",
                   tmp_path / "out", models_dir=models, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "training the unfinished of 2 networks" in r.stdout
    # seed 5001 trained again (a job of one network), the interrupted file removed
    meta = json.loads((models / "xrdm-bptt-v050_s5001.json").read_text())
    assert meta["status"] == "budget" and meta["steps"] == 2 and meta["seed"] == 5001
    assert not meta_path.exists()
    assert (models / "xrdm-bptt-v050_s5000_000.json").exists()


def test_reproduce_only_train_trains_every_task_in_one_pool_and_analyses_nothing(tmp_path):
    models, out = tmp_path / "models", tmp_path / "out"
    models.mkdir()
    install(models, "bptt", 5000, 1)            # RDM BPTT seed 5000: reused, not retrained
    r = run_script("experiments/reproduce.py", "--only-train", "--tasks", "rdm", "cdi",
                   "--rules", "bptt", "--per-rule", "1", "--max-steps", "2", "--chunk", "1",
                   "--workers", "1", "--out", out, models_dir=models, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "training 1 networks in 1 job(s) on cpu" in r.stdout      # CDI only
    meta = json.loads((models / "xcdi-bptt-v050_s5000.json").read_text())
    assert meta["status"] == "budget" and meta["steps"] == 2 and meta["seed"] == 5000
    assert not (out / "RESULTS.md").exists() and not list(models.glob("*_svcca_*"))
    r = run_script("experiments/reproduce.py", "--only-train", "--chunk", "0", "--out", out,
                   models_dir=models)
    assert r.returncode == 2 and "--chunk must be at least 1" in r.stderr


def test_a_run_of_one_task_keeps_the_tables_of_the_others(tmp_path):
    from experiments import reproduce

    def task_result(seed):
        return {"settings": {"per_rule": 2, "rules": ["bptt"], "variance": 0.5, "seed": seed,
                             "max_steps": None},
                "rules": {"bptt": {"networks": 2, "converged": 2, "wall_time_s": 1.0,
                                   "updates_median": 5, "final_accuracy_mean": 0.9}},
                "comparisons": {}}
    first = {"settings": {}, "machine": "m", "this_run_wall_time_s": 1.0,
             "tasks": {"rdm": task_result(1)}}
    reproduce.write_outputs(tmp_path, first)
    second = {**first, "tasks": {"cdi": task_result(2)}}
    reproduce.write_outputs(tmp_path, second,
                            reproduce._previous_tasks(tmp_path / "results.json", ["cdi"]))
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.index("## CDI") < text.index("## RDM")
    assert "first seeds bptt 1." in text and "first seeds bptt 2." in text
    assert set(json.loads((tmp_path / "results.json").read_text())["tasks"]) == {"cdi", "rdm"}


def test_a_rule_with_fewer_than_two_converged_networks_is_said_to_be_left_out():
    from experiments import reproduce
    metas = [{"status": "converged", "final_accuracy": 0.909}] + \
        [{"status": "budget", "final_accuracy": a} for a in (0.819, 0.88)] + \
        [{"status": "stalled", "final_accuracy": 0.6}]
    rest = reproduce.not_converged_summary(metas)
    assert rest == {"statuses": {"budget": 2, "stalled": 1}, "accuracy_range": [0.6, 0.88]}
    rules = {"bptt": {"networks": 10, "converged": 10,
                      "not_converged": reproduce.not_converged_summary([])},
             "rflo": {"networks": 4, "converged": 1, "not_converged": rest}}
    lines = [x for x in reproduce.left_out_lines(rules) if x]
    assert len(lines) == 1
    assert lines[0].startswith("RFLO is in no comparison") and "1 of 4" in lines[0]
    assert "2 at the update budget, 1 stalled" in lines[0]
    assert "0.600–0.880" in lines[0] and "0.909" not in lines[0]


def test_protocol_experiment_trains_reuses_and_tabulates(tmp_path):
    """experiments/protocol.py (what `reproduce.sh --protocol original` runs) on 2
    networks per rule and 2 updates: trains, then reuses, then writes the tables."""
    nets, out = tmp_path / "nets", tmp_path / "out"
    args = ["experiments/reproduce.py", "--protocol", "original", "--cells", "original",
            "original-budgets", "--per-rule", "2", "--max-steps", "2", "--bootstrap", "30",
            "--models-dir", nets, "--out", out]
    r = run_script(*args, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "[original] ga: training 2 networks" in r.stdout
    assert "[original-budgets] bptt: training 2 networks" in r.stdout
    # networks that stopped at the (capped) budget are not reused by the ablation
    assert "[original-budgets] ga: training 2 networks" in r.stdout
    metas = [json.loads(p.read_text()) for p in (nets / "original").glob("*_00?.json")]
    assert len(metas) == 4 and all(m["protocol"]["label"] == "original" for m in metas)
    assert all(m["status"] == "budget" for m in metas)
    res = json.loads((out / "protocol.json").read_text())
    cell = res["cells"]["original"]
    assert cell["training"]["ga"]["networks"] == 2
    orig = cell["analyses"]["original"]["all_saved"]
    assert orig["n"] == [2, 2] and orig["ci"][0] <= orig["silhouette"] <= orig["ci"][1]
    assert cell["analyses"]["original"]["noise_floor_mean"] > 0
    assert cell["analyses"]["original"]["converged_only"] is None     # none converged
    assert res["cells"]["original-budgets"]["training"]["ga"]["networks"] == 2
    # the ablation against original, seed by seed
    vs = res["cells"]["original-budgets"]["vs_original"]
    assert vs["seeds"] == [2, 2] and "_D" not in res["cells"]["original"]
    for a in ("original", "tool"):
        assert vs[a]["ci"][0] <= vs[a]["ci"][1] and abs(vs[a]["difference"]) <= 2
    assert "Paired: each cell against *original*" in (out / "PROTOCOL.md").read_text()
    assert "| original |" in (out / "PROTOCOL.md").read_text()
    # the distances are cached beside the cells (2 SVCCA analyses, 5 metrics; the
    # tool's SVCCA is one file): the rerun computes none of them again
    caches = sorted(nets.glob("*cache*.json"))
    assert len(caches) == 6, caches
    stamps = [p.stat().st_mtime_ns for p in caches]
    r2 = run_script(*args, timeout=900)
    assert r2.returncode == 0, r2.stderr
    assert [p.stat().st_mtime_ns for p in caches] == stamps
    assert "training" not in r2.stdout.replace("training finished", "")
    assert "[original] bptt: reusing 2 trained networks" in r2.stdout


def test_protocol_jobs_follow_runs_of_missing_seeds(tmp_path):
    """The protocol cells train through the grid runner: jobs are runs of
    consecutive missing seeds, named RULE_sSEED as the kept networks are."""
    import dataclasses

    from experiments.protocol_cells import CELLS, grid_cell
    from rnn.grid.jobs import jobs_for

    def jobs(rule, seeds):
        cell = dataclasses.replace(grid_cell(CELLS["original"], rule), first_seed=seeds[0],
                                   networks=seeds[-1] - seeds[0] + 1)
        own = tmp_path / "original"      # the cell's folder in the grid's models folder
        own.mkdir(exist_ok=True)
        for s in cell.seeds():
            if s not in seeds:           # a seed already finished: the jobs go around it
                (own / f"{rule}_s{s}_000.json").write_text(json.dumps(
                    {"name": f"{rule}_s{s}_000", "seed": s, "status": "converged"}))
                (own / f"{rule}_s{s}_000.pt").write_bytes(b"x")
        return [(j.name, j.seed, j.count) for j in jobs_for(cell, tmp_path)]
    assert jobs("ga", [1, 2, 3, 5, 6, 9]) == [("ga_s1", 1, 2), ("ga_s3", 1 + 2, 1),
                                              ("ga_s5", 5, 2), ("ga_s9", 9, 1)]
    assert jobs("bptt", list(range(10, 20))) == [("bptt_s10", 10, 8), ("bptt_s18", 18, 2)]


def test_budgets_ablation_reuses_only_networks_that_stopped_early(tmp_path):
    """A network of `original` that reached the stop rule in fewer updates than
    the stall window is the budgets cell's network for that seed; one that
    converged later, or stopped at its budget, is trained in the cell itself,
    and the jobs go around the reused seeds."""
    import experiments.protocol_cells as protocol
    from rnn.grid.jobs import jobs_for

    cells = protocol.configured(tmp_path, per_rule=6)
    orig = tmp_path / "original"
    orig.mkdir()
    first = protocol.FIRST_SEED["bptt"]
    cases = {0: ("converged", 167), 1: ("converged", 499), 2: ("converged", 500),
             3: ("budget", 2000), 4: ("converged", 80)}          # seed 5: not trained
    for k, (status, steps) in cases.items():
        name = f"bptt_s{first}_{k:03d}"
        (orig / f"{name}.json").write_text(json.dumps(
            {"name": name, "rule": "bptt", "seed": first + k, "status": status,
             "steps": steps}))
        (orig / f"{name}.pt").write_bytes(b"")        # a record counts beside its network
    cell = cells["original-budgets"]
    got = protocol.networks(cell, "bptt")
    assert [m["seed"] - first for _, m in got] == [0, 1, 4]
    assert all(folder == orig for folder, _ in got)
    # the cell's own network of a seed comes first
    own = tmp_path / "original-budgets"
    own.mkdir()
    (own / "bptt_s9_000.json").write_text(json.dumps(
        {"name": "bptt_s9_000", "rule": "bptt", "seed": first, "status": "converged",
         "steps": 170}))
    (own / "bptt_s9_000.pt").write_bytes(b"")
    assert protocol.networks(cell, "bptt")[0][0] == own
    # the grid's jobs go around the seeds it reuses
    jobs = jobs_for(protocol.grid_cell(cell, "bptt"), tmp_path)
    assert [(j.seed - first, j.count) for j in jobs] == [(2, 2), (5, 1)]
    # `original` itself reuses nothing
    assert [m["seed"] - first for _, m in protocol.networks(cells["original"],
                                                            "bptt")] == [0, 1, 2, 3, 4]


def test_protocol_pairs_only_cells_of_the_same_task_and_formats_durations():
    import numpy as np

    from experiments.protocol_analysis import fmt_duration, paired_differences
    rng = np.random.default_rng(0)

    def cell(task):
        a = rng.random((4, 4))
        D = (a + a.T) / 2
        np.fill_diagonal(D, 0)
        return {"task": list(task), "_D": {"original": D},
                "_rows": [("bptt", 1), ("bptt", 2), ("ga", 3), ("ga", 4)]}
    cells = {"original": cell(("--N", "2")), "clean": cell(("--N", "2")),
             "n1-original": cell(("--N", "1"))}
    paired_differences(cells, 20)
    assert cells["clean"]["vs_original"]["seeds"] == [2, 2]
    assert "vs_original" not in cells["n1-original"]       # another task: nothing to pair
    assert all("_D" not in c and "_rows" not in c for c in cells.values())
    assert fmt_duration(96) == "1.6 min" and fmt_duration(7.7 * 3600) == "7.7 h"


def test_first_seed_finds_networks_trained_under_another_rule_order(tmp_path):
    """--first-seed RULE=SEED: a rule's networks trained when its place in the rule
    list gave other seeds are found and reused, not trained again; a malformed
    value, or a rule not asked for, is one line and exit status 2."""
    from experiments import reproduce
    from rnn.grid.jobs import jobs_for
    models = tmp_path / "models"
    models.mkdir()
    install(models, "ga", 9000, 3)
    args = reproduce.parse_args(["--tasks", "rdm", "--rules", "bptt", "ga", "--per-rule", "3",
                                 "--first-seed", "ga=9000"])
    cells = reproduce.task_cells("rdm", args, "v050", None)
    assert cells["ga"].first_seed == 9000 and cells["bptt"].first_seed == 5000
    assert jobs_for(cells["ga"], models) == [] and jobs_for(cells["bptt"], models) != []
    default = reproduce.task_cells("rdm", reproduce.parse_args(["--rules", "bptt", "ga"]),
                                   "v050", None)
    assert default["ga"].first_seed == 6000
    for bad in ("ga=x", "heb=1", "ga"):
        r = run_script("experiments/reproduce.py", "--rules", "bptt", "ga", "--first-seed", bad,
                       models_dir=models)
        assert r.returncode == 2 and "--first-seed takes RULE=SEED" in r.stderr, bad
