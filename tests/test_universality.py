"""experiments/universality.py: UNIVERSALITY.md from a grid's converged networks
of several architectures and rules (tiny networks; the identification score
against hand-made distances)."""
import dataclasses
import json

import numpy as np
import pytest

from experiments import universality as U


def test_identification_is_the_nearest_other_network_s_label_against_its_chance():
    D = np.array([[0, 1, 5, 5], [1, 0, 5, 5], [5, 5, 0, 2], [5, 5, 2, 0]], float)
    assert U.identification(D, ["a", "a", "b", "b"]) == (1.0, 1 / 3)
    assert U.identification(D, ["a", "b", "a", "b"])[0] == 0.0
    # every network at one distance from every other: the vote of all the others
    tie = np.ones((4, 4)) - np.eye(4)
    assert U.identification(tie, ["a", "a", "b", "b"])[0] == 1 / 3


def test_each_factor_held_fixed_reads_only_its_level_s_rows_and_columns():
    # BPTT: the architectures apart (1 within, 10 across); GA: every distance 5
    arch = ["a", "a", "b", "b"] * 2
    rule = ["BPTT"] * 4 + ["GA"] * 4
    D = np.full((8, 8), 5.0)
    D[:4, :4] = [[0, 1, 10, 10], [1, 0, 10, 10], [10, 10, 0, 1], [10, 10, 1, 0]]
    np.fill_diagonal(D, 0)
    w = U.within(D, list(range(8)), arch, rule, n_boot=50)
    assert sorted(w) == ["BPTT", "GA"]
    assert w["BPTT"]["silhouette"] == pytest.approx(1 - 1 / 10)
    assert (w["BPTT"]["identification"], w["BPTT"]["chance"]) == (1.0, 1 / 3)
    assert w["GA"]["silhouette"] == pytest.approx(0.0) and w["GA"]["identification"] == 1 / 3
    assert w["BPTT"]["groups"] == w["GA"]["groups"] == {"a": 2, "b": 2}
    # the rule within architecture a: BPTT's pair 1 apart (1 − 1/5), GA's 5 apart (0)
    r = U.within(D, list(range(8)), rule, arch, n_boot=50)
    assert r["a"]["silhouette"] == pytest.approx((2 * 0.8 + 2 * 0.0) / 4)
    # D over ``kept`` only: network 6 left out, GA has one b and is not scored
    kept = [0, 1, 2, 3, 4, 5, 7]
    w = U.within(D[np.ix_(kept, kept)], kept, arch, rule, n_boot=50)
    assert w["BPTT"]["silhouette"] == pytest.approx(0.9)
    assert w["GA"]["silhouette"] is None and w["GA"]["groups"] == {"a": 2, "b": 1}
    md = "\n".join(U.held_fixed({"svcca": {"architecture_within_rule": w,
                                            "rule_within_architecture": r}}))
    assert "| metric | architecture as the label, BPTT networks only |" in md
    assert "Not shown (fewer than two labels with two networks each): GA: a 2, b 1." in md
    assert "| metric | rule as the label, a networks only | rule as the label, b networks " \
        "only |" in md


def _flip_flop_grid(tmp_path, networks: int):
    """A grid of BPTT and GA on the rate network and a GRU, ``networks`` per cell, on
    a 30-step flip-flop: (grid file, models folder, task)."""
    from rnn import api
    grid = tmp_path / "u.toml"
    grid.write_text(f'[grid]\nname = "u"\nnetworks = {networks}\nfirst_seed = 40000\n'
                    '[[cells]]\ntask = "flipflop"\nnoise = 0.0\nrule = ["bptt", "ga"]\n'
                    'arch = ["rate", "gru"]\n')
    return grid, tmp_path / "m", api.task("flipflop", steps=30)


def test_the_report_on_a_tiny_grid_of_two_architectures_and_two_rules(tmp_path):
    from rnn import api
    grid, models, task = _flip_flop_grid(tmp_path, 2)
    for rule in ("bptt", "ga"):
        for arch in ("rate", "gru"):
            cell = f"flipflop-{rule}{'' if arch == 'rate' else '-' + arch}-v000-clean"
            for net in api.train(rule, task, seeds=[40000, 40001], max_steps=1, hidden=6,
                                 arch=arch):
                api.save(dataclasses.replace(net, name=f"{cell}_s{net.seed}",
                                             status="converged"), models)
    rc = U.main(["--grid", str(grid), "--models-dir", str(models), "--out", str(tmp_path / "o"),
                 "--metrics", "topology", "svcca", "--bootstrap", "20", "--quiet"])
    assert rc == 0
    md = (tmp_path / "o" / "UNIVERSALITY.md").read_text()
    assert "## flipflop" in md and "Maheswaranathan" in md
    assert "Networks with 8 stable points holding the 8 bit patterns: " in md
    by = json.loads((tmp_path / "o" / "universality.json").read_text())["results"][
        "flipflop"]["expected"]["by"]
    assert sorted(by) == ["gru/bptt", "gru/ga", "rate/bptt", "rate/ga"]
    assert all(n == 2 and 0 <= h <= 2 for h, n in by.values())
    held = json.loads((tmp_path / "o" / "universality.json").read_text())["results"][
        "flipflop"]["held"]
    assert held["of"] == 8 and 0 <= held["all8"] <= 8 and 0 <= held["agree"] <= 8
    assert sorted(held["by"]) == sorted(by) and "From behaviour (each pattern pulsed" in md
    away = held["away"]              # memories held off a fixed point, by their orbits
    assert away["patterns"] == sum(away["periods"].values()) and "1" not in away["periods"]
    assert away["networks"] == sum(away["by"].values()) <= 8
    assert len(away["exponents"]) == away["patterns"] and away["lyapunov_steps"] == 10000
    r = json.loads((tmp_path / "o" / "universality.json").read_text())["results"]["flipflop"]
    assert r["networks"] == {"gru/bptt": 2, "gru/ga": 2, "rate/bptt": 2, "rate/ga": 2}
    sv = r["metrics"]["svcca"]
    assert sv["architecture"]["groups"] == {"gru": 4, "rate": 4}
    assert sv["rule"]["groups"] == {"BPTT": 4, "GA": 4}
    assert 0 <= sv["architecture"]["identification"] <= 1 and sv["rule"]["chance"] == 3 / 7
    # each factor with the other held fixed: 2 + 2 networks in each level
    assert {k: v["groups"] for k, v in sv["architecture_within_rule"].items()} == {
        "BPTT": {"gru": 2, "rate": 2}, "GA": {"gru": 2, "rate": 2}}
    assert {k: v["groups"] for k, v in sv["rule_within_architecture"].items()} == {
        "gru": {"BPTT": 2, "GA": 2}, "rate": {"BPTT": 2, "GA": 2}}
    assert sv["rule_within_architecture"]["gru"]["chance"] == 1 / 3
    assert "| metric | architecture as the label, BPTT networks only | architecture as the " \
        "label, GA networks only |" in md
    # where the errors lie: each cell's score over every held step is the mean of what
    # its networks' stop rule read (their NAME.json), the bins' shares sum to 1
    lag = r["lag"]
    assert lag["bins"] == [[1, 5], [6, 10], [11, 20], [21, None]]
    assert sum(lag["share"]) == pytest.approx(1.0)
    for key, v in lag["by"].items():
        arch, rule = key.split("/")
        cell = f"flipflop-{rule}{'' if arch == 'rate' else '-' + arch}-v000-clean"
        rec = [json.loads((models / f"{cell}_s{s}.json").read_text())["final_accuracy"]
               for s in (40000, 40001)]
        assert v["networks"] == 2
        assert v["score"] == pytest.approx([np.mean(rec), min(rec), max(rec)], abs=1e-9)
        assert set(v["crosstalk"]) == {"near", "far"}
    assert lag["crosstalk"]["share"]["near"] + lag["crosstalk"]["share"]["far"] == \
        pytest.approx(lag["share"][-1])
    assert "| 21+, another bit pulsed (" in md and "| 21+, none did (" in md
    assert "Where the errors lie (tasks.flipflop.FlipFlopTask.score_by_lag" in md
    assert "| architecture/rule | networks | every held step | 1–5 steps (" in md
    desc = r["descriptor"]           # each cell's topology at the zero input
    assert sorted(desc["by"]) == sorted(by) and desc["hand_built"] == [8, 8, 12, 6, 1]
    for k, v in desc["by"].items():  # a hand-built topology has its 8 stable corners
        assert v["networks"] == 2 and v["hand_built"] <= by[k][0]
        assert (v["median"] is None) == (v["none"] == 2) and f"| {k} | 2 | " in md
    assert "| architecture/rule | networks | stable points | corners | saddles, 1 unstable " \
        "direction | 2 unstable directions | 3 or more | equal to [8, 8, 12, 6, 1] |" in md
    w = r["weights"]                 # the recurrent weights, trained and fresh
    assert sorted(w["by"]) == sorted(by)
    assert sorted(w["init"]) == sorted({k.split("/")[0] for k in by})
    assert all(v["networks"] == 2 and v["norm"][1] <= v["norm"][0] <= v["norm"][2]
               for v in list(w["by"].values()) + list(w["init"].values()))
    assert "| architecture/rule | networks | norm of the recurrent weights |" in md
    cells = json.loads((tmp_path / "o" / "universality.json").read_text())["cells"]
    assert [(c["trained"], c["converged"], c["target"]) for c in cells] == [(2, 2, 2)] * 4
    assert "Every one of the 4 cells has its target of converged networks." in md
    # the run's time says what it solved: all 8 now, none on a rerun (read from the caches)
    assert "solving the fixed points of all 8 networks analysed" in md
    assert U.main(["--grid", str(grid), "--models-dir", str(models), "--out",
                   str(tmp_path / "o2"), "--metrics", "topology", "--bootstrap", "5",
                   "--quiet"]) == 0
    assert "reading the fixed points of all 8 networks analysed from the caches of an " \
        "earlier run" in (tmp_path / "o2" / "UNIVERSALITY.md").read_text()
    for fig in ("universality_mds.png", "universality_silhouettes.png"):    # drawn, and shown
        assert (tmp_path / "o" / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"![{fig}]({fig})" in md


def test_a_partly_trained_grid_names_its_short_cells_and_skips_a_single_label(tmp_path):
    """One rule trained on two architectures, one network ended at its budget: the
    census names the short cells; the rule as the label is not computed."""
    from rnn import api
    grid, models, task = _flip_flop_grid(tmp_path, 3)
    for arch in ("rate", "gru"):
        cell = f"flipflop-bptt{'' if arch == 'rate' else '-' + arch}-v000-clean"
        nets = api.train("bptt", task, seeds=[40000, 40001, 40002], max_steps=1, hidden=6,
                         arch=arch)
        for i, net in enumerate(nets):
            status = "budget" if (arch, i) == ("gru", 2) else "converged"
            api.save(dataclasses.replace(net, name=f"{cell}_s{net.seed}", status=status), models)
    rc = U.main(["--grid", str(grid), "--models-dir", str(models), "--out", str(tmp_path / "o"),
                 "--metrics", "svcca", "--bootstrap", "20", "--quiet"])
    assert rc == 0
    out = json.loads((tmp_path / "o" / "universality.json").read_text())
    census = {c["cell"]: (c["trained"], c["converged"], c["other"]) for c in out["cells"]}
    assert census == {"flipflop-bptt-v000-clean": (3, 3, 0),
                      "flipflop-bptt-gru-v000-clean": (3, 2, 1),
                      "flipflop-ga-v000-clean": (0, 0, 0), "flipflop-ga-gru-v000-clean": (0, 0, 0)}
    sv = out["results"]["flipflop"]["metrics"]["svcca"]
    assert sv["architecture"]["groups"] == {"gru": 2, "rate": 3}
    assert sv["rule"]["silhouette"] is None and "fewer than two labels" in sv["rule"]["why"]
    md = (tmp_path / "o" / "UNIVERSALITY.md").read_text()
    assert "3 of 4 cells have fewer converged networks than their target" in md
    acc = json.loads((models / "flipflop-bptt-gru-v000-clean_s40002.json").read_text())
    assert acc["status"] == "budget"
    assert (f"| flipflop-bptt-gru-v000-clean | gru | bptt | 3 | 2 | 1 (1 budget; final accuracy "
            f"{acc['final_accuracy']:.3f}) | 3 | complete |") in md
    assert "| flipflop-ga-v000-clean | rate | ga | 0 | 0 | 0 | 3 | 3 to train, not timed yet |" in md
    rc = U.main(["--grid", str(grid), "--models-dir", str(models), "--out", str(tmp_path / "b"),
                 "--metrics", "svcca", "--bootstrap", "20", "--quiet", "--include-budget"])
    assert rc == 0
    out = json.loads((tmp_path / "b" / "universality.json").read_text())
    assert out["results"]["flipflop"]["metrics"]["svcca"]["architecture"]["groups"] == \
        {"gru": 3, "rate": 3}
    md = (tmp_path / "b" / "UNIVERSALITY.md").read_text()
    assert "or ended at their budget (--include-budget)" in md and "Networks analysed" in md


def test_on_a_decision_task_the_report_gives_each_group_s_census(tmp_path):
    """CDI: each network's census kind, counted per architecture/rule; the
    share with one stable point per input is the census's monostable count.
    A third rule on the rate network (full-FORCE) brings the comparison of the
    rules on the rate network, whose fixed points the run counts as solved too."""
    from rnn import api
    grid = tmp_path / "c.toml"
    grid.write_text('[grid]\nname = "c"\nnetworks = 2\nfirst_seed = 40000\n'
                    '[[cells]]\ntask = "cdi"\nnoise = 0.5\nrule = ["bptt"]\n'
                    'arch = ["rate", "gru"]\n'
                    '[[cells]]\ntask = "cdi"\nnoise = 0.5\nrule = ["ga", "ff"]\n')
    models, task = tmp_path / "m", api.task("cdi", steps=20)
    for rule, arch in (("bptt", "rate"), ("bptt", "gru"), ("ga", "rate"), ("ff", "rate")):
        cell = f"cdi-{rule}{'' if arch == 'rate' else '-' + arch}-v050-clean"
        for net in api.train(rule, task, seeds=[40000, 40001], max_steps=1, hidden=6,
                             arch=arch):
            api.save(dataclasses.replace(net, name=f"{cell}_s{net.seed}", status="converged"),
                     models)
    rc = U.main(["--grid", str(grid), "--models-dir", str(models), "--out", str(tmp_path / "o"),
                 "--metrics", "svcca", "topology", "--bootstrap", "20", "--quiet"])
    assert rc == 0
    r = json.loads((tmp_path / "o" / "universality.json").read_text())["results"]["cdi"]
    assert sorted(r["census"]) == ["gru/bptt", "rate/bptt", "rate/ga"]
    for group, kinds in r["census"].items():
        assert list(kinds) == ["monostable", "bistable", "mixed"] and sum(kinds.values()) == 2
        assert kinds["monostable"] == r["expected"]["by"][group][0]
    md = (tmp_path / "o" / "UNIVERSALITY.md").read_text()
    assert "monostable / bistable (two choice attractors under every input) / mixed" in md
    assert "held" not in r
    assert sorted(r["weights"]["by"]) == ["gru/bptt", "rate/bptt", "rate/ga"]   # BPTT and GA
    assert sorted(r["weights"]["init"]) == ["gru", "rate"]
    # the rate network's three rules compared; the full-FORCE networks' fixed points
    # solved by that comparison and counted with the others
    assert r["rate_rules"]["svcca"]["groups"] == {"BPTT": 2, "FF": 2, "GA": 2}
    assert (r["analysed"], r["solved_now"]) == (8, 8)
    assert "solving the fixed points of all 8 networks analysed" in md


def test_the_exponents_line_groups_the_moving_memories_by_kind():
    away = {"lyapunov_steps": 10000, "exponents": [
        {"network": "a", "pattern": 4, "period": 2, "exponent": -0.0687, "kind": "contracting"},
        {"network": "a", "pattern": 7, "period": -1, "exponent": -4.6e-6,
         "kind": "quasi-periodic"},
        {"network": "b", "pattern": 0, "period": 5, "exponent": -0.002, "kind": "contracting"}]}
    assert U.exponents_line(away) == (
        "Their largest Lyapunov exponents per step over 10000 steps of zero input "
        "(rnn.analysis.dynamics.largest_lyapunov; |λ| · steps < 10 counts as 0): "
        "2 contracting: -0.069 (period 2), -0.002 (period 5); 1 quasi-periodic: "
        "-4.6e-06 (no period). None is chaotic.")


def test_the_origins_table_has_one_row_per_moving_memory_and_its_columns():
    o = {"distance": 0.155, "radius": 1.197, "n_unstable": 2, "modulus": 1.0341,
         "angle": 2.326, "turn": 2.33, "planar": 0.982}
    away = {"exponents": [{"network": "a", "pattern": 7, "period": -1, "exponent": -4.6e-6,
                           "kind": "quasi-periodic", "origin": o}]}
    rows = U.origins_table(away)
    assert rows[-1] == ("| a | +++ | none | -4.6e-06 | 1.197, 2.330 rad, 98.2% | 0.155, 2, "
                        "1.0341, 2.326 rad |")
    assert rows[-1].count("|") == rows[-3].count("|") == rows[-2].count("|") == 7


def test_the_silhouette_figure_marks_each_level_held_fixed_below_its_row():
    from rnn import plotting as plots
    plots.use_backend(False)
    fig, axes = plots.new_figure(1, 1)
    ax = axes[0][0]
    rows = [{"label": "a", "silhouette": 0.5, "silhouette_interval_95": [0.4, 0.6],
             "silhouette_permutation_p": 0.01, "within": {"BPTT": 0.3, "GA": None}},
            {"label": "b", "silhouette": None, "within": {"rate": -0.2}}]
    plots.plot_metric_silhouettes(ax, rows, ["BPTT", "GA", "rate"])
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["within BPTT only", "within rate only"]      # GA: no silhouette
    at = [(h.get_xdata()[0], h.get_ydata()[0]) for h in handles]
    assert at == [(0.3, pytest.approx(1 - 0.28)), (-0.2, pytest.approx(-0.28))]
    assert handles[0].get_markeredgecolor() != handles[1].get_markeredgecolor()


def test_the_descriptor_table_gives_each_cell_s_median_range_and_hand_built_count():
    descs = [[8, 8, 12, 6, 1], [6, 6, 8, 2, 0], None, [8, 8, 12, 6, 1], None]
    labels = ["gru/ga", "gru/ga", "gru/ga", "vanilla/bptt", "lstm/ga"]
    s = U.descriptor_summary(descs, labels)
    g = s["by"]["gru/ga"]
    assert (g["networks"], g["none"], g["hand_built"]) == (3, 1, 1)
    assert g["median"] == [7, 7, 10, 4, 0.5]
    assert (g["min"], g["max"]) == ([6, 6, 8, 2, 0], [8, 8, 12, 6, 1])
    assert s["by"]["vanilla/bptt"]["hand_built"] == 1
    assert s["by"]["lstm/ga"]["median"] is None     # no fixed point in any network
    rows = U.descriptor_table(s)
    assert "| gru/ga | 3 | 7 [6, 8] | 7 [6, 8] | 10 [8, 12] | 4 [2, 6] | 0.5 [0, 1] | 1 |" in rows
    assert "| lstm/ga | 1 | – | – | – | – | – | 0 |" in rows
    assert "| vanilla/bptt | 1 | 8 [8, 8] | 8 [8, 8] | 12 [12, 12] | 6 [6, 6] | 1 [1, 1] | 1 |" \
        in rows


def test_the_grid_table_says_how_the_other_networks_ended():
    row = {"other": 0, "ended": {}, "other_accuracy": None}
    assert U.ended_otherwise(row) == "0"
    row = {"other": 4, "ended": {"budget": 3, "stalled": 1}, "other_accuracy": [0.6812, 0.894]}
    assert U.ended_otherwise(row) == "4 (3 budget, 1 stalled; final accuracy 0.681–0.894)"
    row = {"other": 1, "ended": {"diverged": 1}, "other_accuracy": [0.5, 0.5]}
    assert U.ended_otherwise(row) == "1 (1 diverged; final accuracy 0.500)"
    row = {"other": 1, "ended": {"diverged": 1}, "other_accuracy": None}
    assert U.ended_otherwise(row) == "1 (1 diverged)"


def test_the_recurrent_weights_norm_and_a_vanilla_rnn_s_eigenvalues_outside_the_circle():
    """Known answers: a vanilla RNN with zero biases whose W_hh is diag(2, −1.5,
    0.5, 0.9) plus a rotation by 90° scaled 1.2 (eigenvalues ±1.2i) expands 4
    directions, and its step's Jacobian at the zero state is W_hh itself; a GRU
    with zero biases has r = z = 1/2 and n = 0 there, so its Jacobian is
    I/2 + W_hn/4: W_hn = diag(3, 3, 1, 1, 0, 0) gives 2 eigenvalues (1.25)
    outside; the rate network gives its norm and no count; the spectral radius
    over ||W||/sqrt(n) is 1 for a multiple of I and sqrt(n) for a rank-one
    uu^T (rate, vanilla; none for a GRU); the summary's
    initial rows are fresh networks from the networks' own seeds."""
    import torch
    from types import SimpleNamespace
    from rnn.arch import CellRNN, init_network
    from rnn.model import RateRNN
    from rnn.rng import WEIGHTS, Streams
    W = torch.zeros(6, 6, dtype=torch.float64)
    W[:4, :4] = torch.diag(torch.tensor([2.0, -1.5, 0.5, 0.9]))
    W[4, 5], W[5, 4] = -1.2, 1.2
    v = CellRNN.init("vanilla", Streams([1], 0), 3, hidden=6)
    v = v.replace(weight_hh=W[None].to(v.weight_hh.dtype), bias_ih=0 * v.bias_ih,
                  bias_hh=0 * v.bias_hh)
    norm, outside, jac, radius = U.recurrent_weights(v)
    assert (outside, jac) == (4, 4) and norm == pytest.approx(float(W.norm()), rel=1e-6)
    assert radius == pytest.approx(2.0 * 6 ** 0.5 / float(W.norm()), rel=1e-6)
    r = RateRNN.init(Streams([2], 0), 3, hidden=6)
    assert U.recurrent_weights(r)[:3] == (pytest.approx(float(r.W_rec[0].double().norm())),
                                          None, None)
    # the spectral radius over ||W||/sqrt(n): 1 for a multiple of I, sqrt(n) for rank one
    r = r.replace(W_rec=0.7 * torch.eye(6, dtype=r.W_rec.dtype)[None])
    assert U.recurrent_weights(r)[3] == pytest.approx(1.0)
    u = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, 1.0], dtype=r.W_rec.dtype)
    r = r.replace(W_rec=torch.outer(u, u)[None])
    assert U.recurrent_weights(r)[3] == pytest.approx(6 ** 0.5, rel=1e-5)
    g = CellRNN.init("gru", Streams([3], 0), 3, hidden=6)
    hh = g.weight_hh.clone()
    hh[0, 12:] = torch.diag(torch.tensor([3.0, 3.0, 1.0, 1.0, 0.0, 0.0]))    # W_hn (r, z, n)
    g = g.replace(weight_hh=hh, bias_ih=0 * g.bias_ih, bias_hh=0 * g.bias_hh)
    assert U.recurrent_weights(g)[1:] == (None, 2, None)
    models = [SimpleNamespace(model=v, meta={"seed": 7}),
              SimpleNamespace(model=g, meta={"seed": 8})]
    s = U.weight_summary(models, ["vanilla/ga", "gru/bptt"])
    assert s["by"]["vanilla/ga"]["outside"] == [4.0, 4.0, 4.0]
    assert s["by"]["gru/bptt"]["outside"] is None
    assert s["by"]["gru/bptt"]["jacobian"] == [2.0, 2.0, 2.0]
    fresh = init_network("vanilla", Streams([7], WEIGHTS), 3, hidden=6)
    assert s["init"]["vanilla"]["norm"][0] == pytest.approx(U.recurrent_weights(fresh)[0])
    rows = U.weight_table(s)
    assert s["by"]["gru/bptt"]["radius"] is None
    assert (f"| vanilla/ga | 1 | {norm:.2f} [{norm:.2f}, {norm:.2f}] | 4 [4, 4] | 4 [4, 4] | "
            f"{radius:.2f} [{radius:.2f}, {radius:.2f}] |") in rows
    assert [r for r in rows if r.startswith("| gru")][0].startswith("| gru, at initialisation")
