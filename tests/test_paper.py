"""experiments/paper.py: the comparisons it forms from grid cells, the verdict
rules, and the whole report end to end on copies of shipped networks."""
import json
from pathlib import Path

import numpy as np
import pytest

from experiments import paper
from helpers import file_as_cell
from rnn.grid.format import read_grid

ROOT = Path(__file__).resolve().parents[1]
GRID = """
[grid]
name = "tinyclaims"
networks = 3
first_seed = 0
protocol = "original"
[[cells]]
task = "rdm"
rule = "bptt"
noise = [0.1, 0.5]
[[cells]]
task = "rdm"
rule = "ga"
"""
# which shipped RDM networks stand in for each cell (labels are what matters here)
SOURCES = {"rdm-bptt-v010-original": "bptt_s", "rdm-bptt-v050-original": "xrdm-bptt-v050_s5000",
           "rdm-ga-v050-original": "xrdm-ga-v050_s6000"}


def fill(grid, folder: Path) -> None:
    for cell in grid.cells:
        file_as_cell(folder, cell.name, SOURCES[cell.name])


def test_separation_rule():
    neg = 0.1
    assert paper.separation({"silhouette": 0.3, "ci": [0.1, 0.5], "p": 0.01}, neg) == "separated"
    assert paper.separation({"silhouette": 0.3, "ci": [-0.1, 0.5], "p": 0.01}, neg) == "undecided"
    assert paper.separation({"silhouette": 0.0, "ci": [-0.1, 0.08], "p": 0.4}, neg) == "none"
    assert paper.separation({"silhouette": 0.0, "ci": [-0.1, 0.2], "p": 0.4}, neg) == "undecided"
    assert paper.separation(None, neg) == "n/a"


def _comp(kind, N, topo, svcca=None):
    c = paper.ClaimComparison(kind, "rdm" if N == 0 else "ncdi", N or None, "original", {}, {})
    c.result = {"metrics": {"topology": topo, **({"svcca_original": svcca} if svcca else {})}}
    return c


SEP = {"silhouette": 0.3, "ci": [0.1, 0.5], "p": 0.001}
NONE = {"silhouette": 0.01, "ci": [-0.05, 0.05], "p": 0.5}


def test_verdicts_follow_the_stated_rules():
    comps = [_comp("noise", 0, SEP), _comp("noise", 1, SEP), _comp("noise", 2, NONE),
             _comp("noise", 4, NONE), _comp("rule", 3, NONE, SEP), _comp("rule", 4, NONE, SEP)]
    v = paper.verdicts(comps, 0.1)
    assert v[2]["verdict"] == "holds" and v[3]["verdict"] == "holds" and \
        v[1]["verdict"] == "holds"
    # the most complex task still separates the noise levels: claim 3 fails
    comps[3] = _comp("noise", 4, SEP)
    assert paper.verdicts(comps, 0.1)[3]["verdict"] == "does not hold"
    # each verdict says how far up in N the trained networks reach
    assert v[3]["scope"] == "N ≤ 4 trained" and v[1]["scope"] == "N = 3, 4 trained"
    assert "scope" not in v[2]
    # topology separates the rules at N = 3: claim 1 fails there
    comps[4] = _comp("rule", 3, SEP, SEP)
    v = paper.verdicts(comps, 0.1)
    assert v[1]["tasks"]["N = 3"]["verdict"] == "does not hold"
    assert v[1]["verdict"].startswith("mixed")
    # no separation on either simple task: claim 2 does not hold
    comps[0], comps[1] = _comp("noise", 0, NONE), _comp("noise", 1, NONE)
    assert paper.verdicts(comps, 0.1)[2]["verdict"] == "does not hold"


def test_comparisons_are_formed_from_cells_that_differ_in_one_key(tmp_path):
    g = tmp_path / "g.toml"
    g.write_text(GRID)
    comps = paper.comparisons_of([read_grid(g)], False, tmp_path / "none")
    assert [(c.kind, c.task_label, sorted(c.groups)) for c in comps] == [
        ("noise", "RDM", ["v = 0.1", "v = 0.5"]), ("rule", "RDM", ["BPTT", "GA"])]


def test_paper_end_to_end_matches_the_topology_script(tmp_path):
    import fixed_point_input_topology as fpt
    g = tmp_path / "g.toml"
    g.write_text(GRID)
    folder, out = tmp_path / "m", tmp_path / "out"
    fill(read_grid(g), folder)
    rc = paper.main(["--grids", str(g), "--models-dir", str(folder), "--out", str(out),
                     "--bootstrap", "50", "--metrics", "topology", "svcca_original", "cka",
                     "--no-protocol-networks", "--fixed-length", "none", "--quiet"])
    assert rc == 0
    md = (out / "PAPER.md").read_text()
    for k in (1, 2, 3):
        assert paper.CLAIMS[k] in md
    assert "Input noise as the group label" in md
    from rnn.analysis import reference
    assert ("reference matrix (original code)" in md) == reference.available()
    data = json.loads((out / "paper.json").read_text())
    noise = data["comparisons"][0]
    assert noise["kind"] == "noise" and noise["training"]["v = 0.1"]["converged"] == 3
    top = noise["metrics"]["topology"]
    lo, hi = top["ci"]
    assert lo <= top["silhouette"] <= hi and 0 < top["p"] <= 1
    # the same silhouette as fixed_point_input_topology.py on the same groups
    names = {lab: [f"{c}_s0_{k:03d}" for k in range(3)] for lab, c in
             (("low", "rdm-bptt-v010-original"), ("mid", "rdm-bptt-v050-original"))}
    (folder / "n.txt").write_text("".join(f"{lab} {' '.join(v)}\n" for lab, v in names.items()))
    assert fpt.main(["n.txt", "--models-dir", str(folder), "--quiet", "--bootstrap", "0"]) == 0
    ref = json.loads((folder / "n_topology.json").read_text())["silhouette_euclidean"]
    assert top["silhouette"] == pytest.approx(ref, abs=1e-6)      # sklearn: float32 features
    # the reference's BPTT-GA SVCCA rows through the same code
    if data["reference_rule_svcca"]:
        assert data["reference_rule_svcca"]["2"]["silhouette"] == pytest.approx(0.176, abs=1e-3)
    assert (out / "paper_noise.png").stat().st_size > 0 and (out / "paper_rules.png").exists()
    assert np.isfinite(data["wall_seconds"])


def test_training_line_and_short_cells_say_trained_of_planned():
    c = paper.ClaimComparison("noise", "ncdi", 3, "original", {}, {})
    c.result = {"training": {
        "v = 0.1": {"planned": 24, "trained": 16, "converged": 16, "other": {},
                    "updates_median": 302.0},
        "v = 1": {"planned": 24, "trained": 24, "converged": 22, "other": {"budget": 2},
                  "updates_median": 508.0},
        "v = 0.5": {"planned": 24, "trained": 0, "converged": 0, "other": {},
                    "updates_median": None}}}
    assert paper.training_line(c) == (
        "v = 0.1: 16 of 24 trained, all converged, median 302 updates; "
        "v = 1: 24 of 24 trained, 22 converged, 2 budget, median 508 updates; "
        "v = 0.5: 0 of 24 trained")
    # nothing trained anywhere: no time to estimate from
    assert paper.short_cells([c]) == [
        "* N = 3, noise comparison, original protocol: v = 0.1 16 of 24 (not timed yet), "
        "v = 0.5 0 of 24 (not timed yet)"]
    # the group's own networks time it: a job's wall shared by the networks it trained
    job = {"wall_time_s": 1440.0, "population": {"count": 4}}       # 6 min a network
    c.groups = {"v = 0.1": [(None, job)] * 4, "v = 0.5": []}
    assert paper.short_cells([c]) == [
        "* N = 3, noise comparison, original protocol: v = 0.1 16 of 24 (about 0.8 h), "
        "v = 0.5 0 of 24 (not timed yet)"]
    # a group with no network yet is timed by the same rule at the nearest task below
    g = paper.ClaimComparison("rule", "ncdi", 5, "original", {}, {})
    g.result = {"training": {
        "BPTT": {"planned": 24, "trained": 0, "converged": 0, "other": {},
                 "updates_median": None},
        "GA": {"planned": 24, "trained": 0, "converged": 0, "other": {},
               "updates_median": None}}}
    g.groups = {"BPTT": [], "GA": []}
    lower = paper.ClaimComparison("rule", "ncdi", 4, "original",
                             {"BPTT": [], "GA": [(None, {"wall_time_s": 1800.0}),
                                                 (None, {"wall_time_s": 3600.0}), (None, {})]},
                             {})
    lower.result = {"training": {}}
    assert paper.short_cells([lower, g]) == [
        "* N = 5, rule comparison, original protocol: BPTT 0 of 24 (not timed yet), "
        "GA 0 of 24 (at least 18.0 h (timed at N = 4))"]
    # a comparison trained to plan, or drawn from the protocol experiment, is not listed
    c.result["training"]["v = 0.1"]["trained"] = 24
    c.result["training"]["v = 0.5"]["trained"] = 24
    assert paper.short_cells([c]) == []
    c.source = "protocol"
    c.result["training"]["v = 0.5"]["trained"] = 3
    assert paper.short_cells([c]) == []


def test_trend_over_n_fits_a_line_and_resamples_each_task_on_its_own():
    def comp(task, N, y, boots, kind="noise", source=""):
        c = paper.ClaimComparison(kind, task, N, "original", {}, {}, source=source)
        c.result = {"metrics": {"topology": {"silhouette": y}}}
        c.boots = {"topology": np.asarray(boots, float)}
        return c
    exact = [comp("ncdi", N, 0.4 - 0.1 * N, [0.4 - 0.1 * N] * 50) for N in (1, 2, 3)]
    others = [comp("rdm", None, 0.9, [0.9] * 50), comp("ncdi", 4, 0.9, [0.9] * 50, "rule"),
              comp("ncdi", 5, 0.9, [0.9] * 50, source="protocol")]
    t = paper.trend(exact + others)
    assert t["N"] == [1, 2, 3] and t["slope"] == pytest.approx(-0.1)
    assert t["ci"] == pytest.approx([-0.1, -0.1]) and t["share_nonnegative"] == 0
    assert t["original_slope_same_N"] == pytest.approx(np.polyfit([1, 2, 3], [0.25, 6.2e-4, 0.012],
                                                                  1)[0])
    assert t["original_slope_all_N"] == pytest.approx(
        np.polyfit(range(1, 7), paper.ORIGINAL_SERIES["by_N"]["y"], 1)[0])
    # flat silhouettes with bootstrap spread: the interval straddles 0
    rng = np.random.default_rng(1)
    flat = [comp("ncdi", N, 0.2, 0.2 + 0.05 * rng.standard_normal(400)) for N in (1, 2, 3, 4)]
    t = paper.trend(flat)
    assert t["slope"] == pytest.approx(0) and t["ci"][0] < 0 < t["ci"][1]
    assert 0.2 < t["share_nonnegative"] < 0.8
    assert "slope of +0.000 per unit of N over N = 1…4" in paper.trend_sentence(t)
    assert paper.trend(flat[:1]) is None


def test_errorbars_draw_a_silhouette_that_lies_outside_its_interval():
    # the bootstrap interval can miss the observed silhouette (here it lies above
    # it); the bar must still span exactly [low, high] and the marker sit at y
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    paper._errorbars(ax, [3, 4], [{"silhouette": -0.046, "ci": [-0.080, -0.054]},
                                  {"silhouette": 0.2, "ci": [0.1, 0.3]}], "o", "tool")
    (marker,) = ax.lines[:1]
    assert np.allclose(marker.get_ydata(), [-0.046, 0.2])
    segs = [s for c in ax.collections for s in c.get_segments()]
    spans = sorted((round(s[:, 1].min(), 6), round(s[:, 1].max(), 6)) for s in segs)
    assert spans == [(-0.080, -0.054), (0.1, 0.3)]
    plt.close(fig)


def test_series_match_measures_the_original_series_against_each_metric():
    # a metric that reproduces the original's last series exactly has rms 0; one
    # offset by 0.1 at every N has rms 0.1; rule and RDM comparisons do not count
    orig = dict(zip(paper.ORIGINAL_SERIES["by_N"]["x"], paper.ORIGINAL_SERIES["by_N"]["y"]))

    def comp(N, kind="noise", task="ncdi"):
        c = paper.ClaimComparison(kind, task, N, "original", {}, {})
        c.result = {"metrics": {"topology": {"silhouette": orig.get(N, 0.5) + 0.1},
                                "svcca_original": {"silhouette": orig.get(N, 0.5)}}}
        return c
    comps = [comp(1), comp(2), comp(3), comp(4, kind="rule"), comp(None, task="rdm")]
    m = paper.series_match(comps)
    assert m["svcca_original"] == {"N": [1, 2, 3], "rms": pytest.approx(0.0)}
    assert m["topology"]["rms"] == pytest.approx(0.1)
    text = paper.series_match_sentence(m)
    assert "closest to SVCCA (original analysis) (root-mean-square difference 0.000)" in text
    assert "N = 1…3" in text
    assert paper.series_match([comp(1)]) == {} and paper.series_match_sentence({}) == ""


def test_census_sections_and_figure_on_shipped_networks(tmp_path):
    g = tmp_path / "g.toml"
    g.write_text(GRID)
    folder, out = tmp_path / "m", tmp_path / "out"
    fill(read_grid(g), folder)
    assert paper.main(["--grids", str(g), "--models-dir", str(folder), "--out", str(out),
                       "--bootstrap", "20", "--metrics", "topology", "--fixed-length", "none",
                       "--no-protocol-networks", "--quiet"]) == 0
    md = (out / "PAPER.md").read_text()
    assert "What separates the noise levels: the attractor census" in md
    assert "Claim 1's mechanism" in md and "Noise or training length" not in md
    data = json.loads((out / "paper.json").read_text())
    noise = data["comparisons"][0]
    cen = noise["census"]["v = 0.1"]
    assert cen["networks"] == 3 and sum(cen["kinds"].values()) == 3
    assert sum(cen["inputs"].values()) == pytest.approx(1.0)
    assert set(noise["matched"]) == {"count", "stable_per_input", "topology_monostable",
                                     "topology_bistable"}
    assert (out / "paper_attractors.png").stat().st_size > 0
    assert data["fixed_length"] is None


def test_fixed_length_answer_rules():
    def row(v, stop, at_k):
        return {"task": "RDM", "noise": v,
                "at": {"stop": {"bistable_inputs": stop}, "800": {"bistable_inputs": at_k}}}
    ans = paper.fixed_length_answer
    assert ans([row(0.1, 0, 0), row(1.0, 1, 1)], 800)["RDM"]["answer"] == "noise"
    assert ans([row(0.1, 0, 0.9), row(1.0, 0, 0.9)], 800)["RDM"]["answer"] == "training length"
    assert ans([row(0.1, 0, 0.75), row(1.0, 0, 0)], 800)["RDM"]["answer"] == "both"
    assert ans([row(0.1, 0.2, 0.2), row(1.0, 0.2, 0.5)], 800)["RDM"]["answer"] == "neither"
    partial = [row(0.1, 0, 0), {"task": "RDM", "noise": 1.0, "at": {}}]
    assert ans(partial, 800)["RDM"]["answer"] == "not yet"
    # a noise level the grid plans but has not trained yet: no answer
    assert ans([row(0.1, 0, 0), row(0.5, 0, 0)], 800,
               {"RDM": {0.1, 0.5, 1.0}})["RDM"]["answer"] == "not yet"
    assert ans([], 800, {"N = 2": {0.1, 1.0}}) == {"N = 2": {"answer": "not yet"}}


def test_fixed_length_experiment_on_tiny_networks(tmp_path, monkeypatch, capsys):
    from test_cli_train import run_main
    claims, fl = tmp_path / "claims", tmp_path / "fl"
    claims.mkdir()
    fl.mkdir()
    monkeypatch.setenv("RNN_MODELS_DIR", str(claims))
    g = tmp_path / "fixed.toml"
    g.write_text('[grid]\nname = "fl"\nnetworks = 2\nfirst_seed = 0\nprotocol = "original"\n'
                 'hidden = 8\nupdates = 6\nsnapshots = [3]\n[[cells]]\ntask = "rdm"\n'
                 'rule = "bptt"\nnoise = [0.1, 1.0]\n')
    grid = read_grid(g)
    for cell in grid.cells:
        twin = cell.name.replace("-u6", "")
        common = [*cell.train_args()[:3], "--hidden", "8", "--protocol", "original",
                  "--count", "2", "--seed", "0", "--quiet", "--rule", "bptt"]
        a = [f"{cell.name}_s0", *cell.train_args(), "--count", "2", "--seed", "0", "--quiet",
             "--models-dir", str(fl)]
        assert run_main(a, capsys)[0] == 0
        assert run_main([f"{twin}_s0", *common, "--max-steps", "4"], capsys)[0] == 0
        for k in range(2):                       # stand-ins for twins that met the stop rule
            f = claims / f"{twin}_s0_{k:03d}.json"
            f.write_text(f.read_text().replace('"status": "budget"', '"status": "converged"'))
    res = paper.fixed_length(grid, fl, claims, 20, lambda *a: None)
    assert res["trained"] == 4 and res["planned"] == 4 and res["updates"] == 6
    assert res["twins"] == {"compared": 4, "identical": 4, "max_abs_diff": 0.0}
    rows = {r["noise"]: r for r in res["cells"]}
    assert set(rows) == {0.1, 1.0}
    for r in rows.values():
        assert set(r["at"]) == {"stop", "3", "6"} and r["at"]["stop"]["update_median"] == 4
        assert r["at"]["6"]["networks"] == 2 and 0 <= r["at"]["6"]["accuracy_mean"] <= 1
    assert res["answer"]["RDM"]["answer"] in ("both", "training length", "noise", "neither")
    md = "\n".join(paper.fixed_length_section(res))
    assert "after 3" in md and "after 6" in md and "**Answer**" in md
    assert "Of 4 pairs, 4 have the same loss history" in md


def test_a_comparison_short_of_16_per_group_is_reported_not_decisive():
    def sized_comp(kind, N, topo, n, svcca=None):
        c = _comp(kind, N, topo, svcca)
        c.groups = {lab: [(None, {"status": "converged"})] * k
                    for lab, k in zip(("a", "b", "c"), n)}
        return c
    comps = [sized_comp("noise", 0, SEP, (24, 24, 24)), sized_comp("noise", 1, SEP, (24, 24, 24)),
             sized_comp("noise", 4, SEP, (24, 24, 24)),
             sized_comp("noise", 6, NONE, (4, 4, 23)),            # would flip claim 3
             sized_comp("rule", 3, NONE, (24, 11), SEP), sized_comp("rule", 4, NONE, (24, 8), SEP)]
    v = paper.verdicts(comps, 0.1)
    assert v[3]["verdict"] == "does not hold"
    assert v[3]["scope"] == "N ≤ 4 trained; N = 6 short of 16 networks per group"
    assert v[3]["tasks"]["N = 6"].startswith("too few networks (4 + 4 + 23")
    assert v[1]["verdict"] == "not decided yet"
    assert v[1]["scope"] == "N = 3, 4 short of 16 networks per group"
    assert v[1]["tasks"]["N = 4"].startswith("too few networks (24 + 8")
    comps[-1] = sized_comp("rule", 4, NONE, (24, 16), SEP)
    v = paper.verdicts(comps, 0.1)
    assert v[1]["verdict"] == "holds" and v[1]["scope"] == "N = 4 trained; N = 3 short of 16 " \
                                                          "networks per group"


def test_a_rule_comparison_with_budget_ended_networks_gets_a_secondary_reading(tmp_path):
    """A GA network that ended at the budget: kept out of the comparison that
    decides claim 1, counted in a second one (the original's way), which PAPER.md
    reports beside the verdict and the verdict does not read."""
    g = tmp_path / "g.toml"
    g.write_text(GRID)
    folder, out = tmp_path / "m", tmp_path / "out"
    fill(read_grid(g), folder)
    rec = folder / "rdm-ga-v050-original_s0_002.json"
    meta = json.loads(rec.read_text())
    meta["status"], meta["converged"] = "budget", False
    rec.write_text(json.dumps(meta))
    comps = paper.comparisons_of([read_grid(g)], False, folder)
    rule = [c for c in comps if c.kind == "rule"]
    assert [c.source for c in rule] == ["", paper.WITH_BUDGET]
    assert [paper.group_sizes(c) for c in rule] == [[3, 2], [3, 3]]
    assert rule[1].label == "RDM (with the networks ended at the budget)"
    rc = paper.main(["--grids", str(g), "--models-dir", str(folder), "--out", str(out),
                     "--bootstrap", "20", "--metrics", "topology", "svcca_original",
                     "--no-protocol-networks", "--fixed-length", "none", "--quiet"])
    assert rc == 0
    data = json.loads((out / "paper.json").read_text())
    second = [c for c in data["comparisons"] if c["source"] == paper.WITH_BUDGET]
    assert len(second) == 1 and second[0]["metrics"]["topology"]["n"] == 6
    first = [c for c in data["comparisons"] if c["kind"] == "rule" and not c["source"]]
    assert first[0]["metrics"]["topology"]["n"] == 5
    md = (out / "PAPER.md").read_text()
    assert "Claim 1 with the networks that ended at the budget" in md
    assert "| RDM (with the networks ended at the budget) |" in md
    assert set(data["claims"]["1"]["tasks"]) == {"RDM"}     # the verdict reads only the first
