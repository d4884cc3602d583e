"""The original study's protocol, switch by switch, and the original analysis."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_score

import rnn.rules.bptt
import rnn.training
from helpers import run_script
from rnn.analysis.compare import batched_silhouette, paired_silhouette_difference, silhouette_stats
from rnn.rules.ga import GAConfig, GATrainer
from rnn.io import load_model
from rnn.model import RateRNN
from rnn.protocol import Protocol
from rnn.rng import Streams
from rnn.analysis.similarity import network_distances
from rnn.analysis.svcca import SVCCAOptions, network_activity
from rnn.training import ValidationSet
from tasks import ncdi, rdm

SHORT = dict(steps=20)


def test_named_protocols_and_ablation():
    o = Protocol.named("original")
    assert o.shared_x0 and o.lenient_stop and o.original_budgets and o.label() == "original"
    assert Protocol.named("clean") == Protocol() and Protocol().label() == "clean"
    assert not o.without("shared_x0").shared_x0 and o.without("shared_x0").lenient_stop
    assert o.without("lenient_stop").label() == "shared_x0+original_budgets"
    assert o.budget("bptt", 20000) == 2000 and Protocol().budget("bptt", 20000) == 20000
    with pytest.raises(ValueError):
        o.without("nothing")


def test_shared_initial_state_is_shared_by_the_trials_of_each_network():
    rng = Streams([1, 2], 2)
    x = Protocol(shared_x0=True).initial_states(rng, 6, 5)
    assert x.shape == (2, 6, 5)
    assert torch.equal(x[:, :1].expand(2, 6, 5), x)          # one state per network
    assert not torch.equal(x[0, 0], x[1, 0])                  # networks differ
    y = Protocol().initial_states(Streams([1, 2], 2), 6, 5)
    assert not torch.equal(y[0, 0], y[0, 1])                  # clean: one per trial


def test_trainers_receive_the_shared_state(monkeypatch):
    seen = {}
    real = rnn.rules.bptt.loss_and_grad

    def spy(model, inputs, x0, targets):
        seen["x0"] = x0.clone()
        return real(model, inputs, x0, targets)
    monkeypatch.setattr(rnn.rules.bptt, "loss_and_grad", spy)
    task = ncdi(2, 0.5, steps=20)
    for prot, shared in ((Protocol(shared_x0=True), True), (Protocol(), False)):
        tr = rnn.rules.bptt.BPTTTrainer(rnn.rules.bptt.BPTTConfig(batch=8), task, [3], "cpu",
                                  protocol=prot)
        tr.step(torch.tensor([0]))
        x0 = seen["x0"][0]
        assert torch.equal(x0, x0[:1].expand_as(x0)) == shared
    # the GA: one state per generation for every trial and every member
    ga = GATrainer(GAConfig(population=4, parents=2, batch=8), task, [5, 6], "cpu",
                   protocol=Protocol(shared_x0=True))
    captured = {}
    real_gen = ga.generation

    def gen(runs, inputs, x0, targets):
        captured["x0"] = x0.clone()
        return real_gen(runs, inputs, x0, targets)
    ga.generation = gen
    ga.step(torch.tensor([0, 1]))
    x0 = captured["x0"]                                       # [runs, trials, H]
    assert torch.equal(x0, x0[:, :1].expand_as(x0))


def test_lenient_rule_counts_strength_zero_trials_and_redraws_states(monkeypatch):
    task = rdm(0.5, steps=20)
    H = 6
    silent = RateRNN(torch.zeros(1, H, 1), torch.zeros(1, H, H), torch.zeros(1, 1, H),
                     torch.zeros(1, H))                       # output 0: never the right sign
    strict = ValidationSet.make(task, [4], H, "cpu")
    lenient = ValidationSet.make(task, [4], H, "cpu", Protocol(lenient_stop=True))
    idx = torch.tensor([0])
    assert float(strict.accuracy(silent, idx)[0]) == 0.0
    assert float(lenient.accuracy(silent, idx, 1)[0]) == pytest.approx(1 / 20)   # 100 of 2000
    seen = []
    real = rnn.training.accuracy

    def spy(model, inputs, x0, targets, **kw):
        seen.append(x0.clone())
        return real(model, inputs, x0, targets, **kw)
    monkeypatch.setattr(rnn.training, "accuracy", spy)
    lenient.accuracy(silent, idx, 7)
    lenient.accuracy(silent, idx, 8)
    lenient.accuracy(silent, idx, 7)
    assert not torch.equal(seen[0], seen[1]) and torch.equal(seen[0], seen[2])
    strict.accuracy(silent, idx, 7)
    strict.accuracy(silent, idx, 8)
    assert torch.equal(seen[3], seen[4])


def test_n1_task_has_two_inputs_and_population_20():
    t = ncdi(1)
    assert t.n_inputs == 2 and t.n_contexts == 1 and t.cued
    assert GAConfig.for_task(t).population == 20
    tr = t.sample(4, Streams([0], 2))
    assert torch.all(tr.inputs[..., 1] == 1.0)                # the constant cue


def test_train_cli_records_the_protocol(models_tmp):
    r = run_script("train_models.py", "bptt_p", "-v", "0.5", "--N", "1", "--protocol",
                   "original", "--no-shared-x0", "--hidden", "12", "--max-steps", "2",
                   "--quiet", "--seed", "5")
    assert r.returncode == 0, r.stderr
    lm = load_model("bptt_p", models_tmp)
    assert lm.model.hidden == 12 and lm.model.n_inputs == 2
    m = json.loads((models_tmp / "bptt_p.json").read_text())
    assert m["protocol"] == {"shared_x0": False, "lenient_stop": True, "original_budgets": True,
                             "hidden": 12, "label": "lenient_stop+original_budgets, 12 units"}
    assert m["validation"]["strength_0_always_correct"] is True
    r = run_script("train_models.py", "bptt_q", "-v", "0.5", "--N", "2", "--protocol",
                   "original", "--max-steps", "1", "--quiet", "--seed", "5")
    assert r.returncode == 0, r.stderr
    r = run_script("train_models.py", "bptt_r", "-v", "0.5", "--N", "2", "--protocol",
                   "original", "--hidden", "1", "--quiet")
    assert r.returncode == 2 and "--hidden" in r.stderr


def test_original_budget_is_2000_bptt_steps(models_tmp, monkeypatch):
    import rnn.training
    import train_models
    seen = {}

    def fake_fit(trainer, val, max_steps, *a, **k):
        seen["max_steps"] = max_steps
        raise KeyboardInterrupt
    monkeypatch.setattr(rnn.training, "fit", fake_fit)
    for flags, want in ((["--protocol", "original"], 2000), ([], 20000),
                        (["--protocol", "original", "--no-original-budgets"], 20000)):
        with pytest.raises(KeyboardInterrupt):
            train_models.main(["bptt_b", "--N", "2", "--quiet", "--force", *flags])
        assert seen["max_steps"] == want


# ---- the original analysis ---------------------------------------------------------

def leaky(seed: int, H: int = 8) -> RateRNN:
    """No recurrence: x_t = 0.9^t x_0 + input drive, so the activity shows the starts."""
    w_in = torch.linspace(-1, 1, H * 4, dtype=torch.float32).reshape(1, H, 4)
    return RateRNN(w_in, torch.zeros(1, H, H), 0.1 * torch.ones(1, 1, H),
                   torch.zeros(1, H))


def test_original_analysis_keeps_two_directions_and_draws_starts_per_network_and_trial():
    task = ncdi(2, steps=30)
    opts = SVCCAOptions.original()
    assert opts.dims == 2 and opts.levels_for(task) == 60 and opts.levels_for(ncdi(3)) == 40
    a = opts.activity(leaky(0), task, "net-a")                # [H, 120 inputs * 30 steps]
    b = opts.activity(leaky(0), task, "net-b")
    assert a.shape == (8, 120 * 30)
    first = a.reshape(8, 120, 30)[:, :, 0]                    # state after step 1, per trial
    assert np.linalg.matrix_rank(first) == 8                  # a different start per trial
    assert not np.allclose(a, b)                              # and per network
    assert np.allclose(a, opts.activity(leaky(0), task, "net-a"))   # reproducible
    nets = [SimpleNamespace(model=leaky(0), task=task, name=n) for n in ("a", "b")]
    res = network_distances(nets, ["svcca"], opts, keys=["net-a", "net-b"])["svcca"]
    assert res.directions == [2, 2]
    assert np.all(res.noise_floor > 0)
    zero = network_distances(nets[:1], ["svcca"], SVCCAOptions(levels=5), keys=["net-a"])
    assert zero["svcca"].noise_floor.tolist() == [0.0]


def test_probe_levels_per_context():
    task = ncdi(3, steps=5)
    a = network_activity(leaky(0, H=4).replace(W_in=torch.ones(1, 4, 6)), task, levels=7)
    assert a.shape == (4, 3 * 7 * 5)


# ---- silhouette with uncertainty ---------------------------------------------------

def test_batched_silhouette_matches_scikit_learn():
    rng = np.random.default_rng(0)
    for trial in range(5):
        X = rng.standard_normal((17, 3))
        g = rng.integers(0, 3, 17)
        g[:3] = [0, 1, 2]
        D = np.linalg.norm(X[:, None] - X[None], axis=-1)
        want = silhouette_score(D, g, metric="precomputed")
        got = batched_silhouette(D, np.arange(17)[None], g[None], 3)[0]
        assert got == pytest.approx(want, abs=1e-12)


def test_silhouette_interval_and_permutation_p():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((24, 4))
    sep = X.copy()
    sep[:12, 0] += 6.0
    g = [0] * 12 + [1] * 12
    for data, separated in ((sep, True), (X, False)):
        D = np.linalg.norm(data[:, None] - data[None], axis=-1)
        s = silhouette_stats(D, g, n_boot=400, n_perm=400, seed=2)
        assert s.silhouette == pytest.approx(silhouette_score(D, g, metric="precomputed"))
        assert s.ci_low <= s.silhouette <= s.ci_high
        if separated:
            assert s.p_value < 0.01 and s.ci_low > 0.3
        else:
            assert s.p_value > 0.05 and s.ci_low < 0 < s.ci_high
    one = silhouette_stats(np.zeros((3, 3)), [0, 0, 0])
    assert one.silhouette is None and one.fmt() == "n/a"


def test_paired_silhouette_difference():
    """Same design under two conditions: identical distances differ by exactly 0;
    removing the separation in condition B gives a negative difference whose
    paired interval excludes 0, and the two scores are the plain silhouettes."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((24, 4))
    sep = X + np.where(np.arange(24) < 12, 4.0, 0.0)[:, None] * np.eye(4)[0]
    g = np.array([0] * 12 + [1] * 12)

    def dist(Z):
        return np.linalg.norm(Z[:, None] - Z[None], axis=-1)
    same = paired_silhouette_difference(dist(sep), dist(sep), g, n_boot=300)
    assert same["difference"] == 0.0 and same["ci"] == [0.0, 0.0] and same["p"] == 1.0
    # condition B: the same units, a little jitter, no separation
    blur = X + 0.05 * rng.standard_normal(X.shape)
    d = paired_silhouette_difference(dist(sep), dist(blur), g, n_boot=300, balanced=False)
    assert d["a"] == pytest.approx(silhouette_score(dist(sep), g, metric="precomputed"))
    assert d["b"] == pytest.approx(silhouette_score(dist(blur), g, metric="precomputed"))
    assert d["difference"] == pytest.approx(d["b"] - d["a"])
    assert d["ci"][0] <= d["difference"] <= d["ci"][1] < 0 and d["p"] < 0.01
    # unpaired noise of the same size: the interval straddles 0
    other = X[rng.permutation(24)] + 0.05 * rng.standard_normal(X.shape)
    n = paired_silhouette_difference(dist(X), dist(other), g, n_boot=300)
    assert n["ci"][0] < 0 < n["ci"][1]
    with pytest.raises(ValueError):
        paired_silhouette_difference(dist(X), dist(X[:5]), g)


def test_svcca_cache_is_kept_per_analysis(models_tmp):
    from test_compare import make_models
    make_models(models_tmp, ["bptt_a", "bptt_b", "ga_a", "ga_b"])
    (models_tmp / "g.txt").write_text("BPTT bptt_a bptt_b\nGA ga_a ga_b\n")
    r = run_script("svcca_analysis.py", "g.txt", "--quiet", "--bootstrap", "50")
    assert r.returncode == 0, r.stderr
    assert "bootstrap interval" in r.stdout and "permutation p" in r.stdout
    r = run_script("svcca_analysis.py", "g.txt", "--quiet", "--analysis", "original",
                   "--bootstrap", "50")
    assert r.returncode == 0, r.stderr
    assert "computed 6 of 6 pairwise" in r.stdout and "noise floor" in r.stdout
    s = json.loads((models_tmp / "g_svcca_summary.json").read_text())
    assert s["analysis"]["label"] == "original" and s["svd_dims"] == [2, 2, 2, 2]
    assert len(s["silhouette_interval_95"]) == 2 and 0 < s["silhouette_permutation_p"] <= 1
    r = run_script("svcca_analysis.py", "g.txt", "--quiet", "--analysis", "original",
                   "--bootstrap", "50")
    assert "reusing the cached distances" in r.stdout
    for bad, msg in ((["--dims", "x"], "--dims"), (["--levels", "1"], "--levels"),
                     (["--bootstrap", "-1"], "--bootstrap")):
        r = run_script("svcca_analysis.py", "g.txt", "--quiet", *bad)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_balanced_silhouette_weights_groups_equally():
    from sklearn.metrics import silhouette_samples
    rng = np.random.default_rng(3)
    X = np.concatenate([0.1 * rng.standard_normal((20, 2)), 1.0 + rng.standard_normal((5, 2))])
    g = np.array([0] * 20 + [1] * 5)
    D = np.linalg.norm(X[:, None] - X[None], axis=-1)
    s = silhouette_samples(D, g, metric="precomputed")
    want = (s[g == 0].mean() + s[g == 1].mean()) / 2
    got = batched_silhouette(D, np.arange(25)[None], g[None], 2, balanced=True)[0]
    assert got == pytest.approx(want, abs=1e-12) and got < s.mean()


def test_protocol_from_its_record_and_bad_records_refused():
    import pytest as _pytest
    from rnn.protocol import Protocol
    for p in (Protocol(), Protocol.named("original"), Protocol(hidden=12, shared_x0=True)):
        assert Protocol.from_dict(p.to_dict()) == p
    for bad in (None, {}, {**Protocol().to_dict(), "hidden": "50"},
                {**Protocol().to_dict(), "shared_x0": 1}):
        with _pytest.raises(ValueError):
            Protocol.from_dict(bad)
