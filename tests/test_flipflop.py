"""tasks/flipflop.py: the 3-bit flip-flop's trials, its loss and score, and its
training by BPTT (autograd through the steps) and the GA on every architecture."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rnn.rng import Streams
from tasks import flipflop, parse
from tests.helpers import run_script


def test_trials_hold_the_sign_of_the_last_pulse():
    task = flipflop(steps=120)
    tr = task.sample(16, Streams([0, 1], 2))
    assert tr.inputs.shape == tr.targets.shape == (120, 2, 16, 3)
    u, y = tr.inputs.numpy(), tr.targets.numpy()
    # every channel pulses at step 0; a pulse is 5 steps of ±1; between pulses 0
    assert (np.abs(u[0]) == 1).all() and set(np.unique(u)) <= {-1.0, 0.0, 1.0}
    held = np.zeros_like(y[0])
    for t in range(120):
        on = u[t] != 0
        start = on & ((u[t - 1] != u[t]) if t else True)
        held = np.where(start, u[t], held)
        assert np.array_equal(y[t], held), t
    # the score counts the steps outside the pulses
    assert np.array_equal(tr.hold.numpy(), (u == 0).astype(np.float32))
    assert parse("flipflop").make().to_dict()["noise"] == 0.0


def test_loss_and_score_of_a_perfect_and_a_silent_readout():
    task = flipflop(steps=40)
    tr = task.sample(8, Streams([3], 2))
    ident = SimpleNamespace(outputs=lambda x: x)
    perfect = SimpleNamespace(states=tr.targets.clone())
    assert float(task.loss(ident, perfect, tr)[0]) == 0.0
    assert float(task.score(ident, perfect, tr)[0]) == 1.0
    silent = SimpleNamespace(states=torch.zeros_like(tr.targets))
    assert float(task.loss(ident, silent, tr)[0]) == pytest.approx(1.0)
    assert float(task.score(ident, silent, tr)[0]) == 0.0
    # the right sign is not enough: outputs that decayed to ±0.3 hold nothing
    faint = SimpleNamespace(states=0.3 * tr.targets)
    assert float(task.score(ident, faint, tr)[0]) == 0.0
    near = SimpleNamespace(states=0.6 * tr.targets)
    assert float(task.score(ident, near, tr)[0]) == 1.0


def _repeat_members(tr, k):
    """Each run's trials k times over along the network axis (one set per network)."""
    from tasks.flipflop import SequenceTrials
    return SequenceTrials(*(t.repeat_interleave(k, dim=1) for t in
                            (tr.inputs, tr.targets, tr.mask, tr.hold)))


@pytest.mark.parametrize("arch", ["rate", "vanilla", "lstm"])
@pytest.mark.parametrize("chunk", [6, 2, 3])
def test_windowed_sums_equal_the_whole_sequence_loss_and_score_of_a_population(
        arch, chunk, monkeypatch):
    """sequence_mean (the GA's loss, validation's score) in windows that do not
    divide T, 2 runs x 3 members sharing their run's trials, against one pass
    over every step with the trials repeated per network; a discrete-time
    population whole, 2 networks at a time, or a run at a time (CHUNK_FLOATS)."""
    import rnn.arch
    from rnn.arch import init_network
    from tasks.flipflop import sequence_mean
    monkeypatch.setattr(rnn.arch, "CHUNK_FLOATS", 10 ** 12)
    task = flipflop(steps=25)
    G = 3
    m = init_network(arch, Streams([5, 6], 0), 3, per_stream=G, hidden=6, n_outputs=3,
                     activation="one_plus_tanh", readout="linear")
    m = m.replace(W_out=4.0 * m.W_out)          # outputs large enough to score some steps
    tr = task.sample(9, Streams([7, 8], 2))
    x0 = 0.5 * torch.randn(2, 9, m.hidden, generator=torch.Generator().manual_seed(1))
    rep = _repeat_members(tr, G)
    sim = m.simulate(rep.inputs, x0.repeat_interleave(G, 0), keep="all")
    # CHUNK_FLOATS for ``chunk`` networks of 9 trials at a time (a step of the rate
    # network: its 6 states and their rates; of a cell: its gates)
    per = 2 if arch == "rate" else rnn.arch.GATES[arch]
    monkeypatch.setattr(rnn.arch, "CHUNK_FLOATS", chunk * 9 * per * 6)
    assert min(m.chunk(9), 6) == chunk
    for terms, whole in ((task.loss_terms, task.loss), (task.score_terms, task.score)):
        want = whole(m, sim, rep)
        for window in (7, 25, 100, None):
            got = sequence_mean(m, tr, x0, terms, G, window=window)
            assert got.shape == (2 * G,)
            assert torch.allclose(got.to(want.dtype), want, rtol=1e-5, atol=1e-7)
    assert 0 < float(want.max()) and float(want.min()) < 1     # the score is not trivial


def test_the_rate_network_s_unroll_is_simulate_with_gradients():
    from rnn.model import RateRNN
    from rnn.rules.bptt import sequence_loss_and_grads
    m = RateRNN.init(Streams([1, 2], 0), 3, hidden=7, n_outputs=3).to(dtype=torch.float64)
    task = flipflop(steps=30)
    tr = task.sample(5, Streams([4, 5], 2))
    x0 = 0.3 * torch.randn(2, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = m.simulate(tr.inputs.double(), x0, keep="all").states
    b = m.unroll(tr.inputs.double(), x0, keep="all").states
    assert torch.allclose(a, b, atol=1e-12)
    loss, g = sequence_loss_and_grads(m, ("W_rec",), task, tr.inputs.double(), x0, tr)
    eps, idx = 1e-6, (1, 2, 3)
    moved = []
    for s in (1, -1):
        W = m.W_rec.clone()
        W[idx] += s * eps
        sim = m.replace(W_rec=W).simulate(tr.inputs.double(), x0, keep="all")
        moved.append(float(task.loss(m, sim, tr)[1]))
    assert abs((moved[0] - moved[1]) / (2 * eps) - float(g["W_rec"][idx])) < 1e-6


@pytest.mark.parametrize("rule,arch", [("bptt", "rate"), ("bptt", "lstm"), ("ga", "gru"),
                                       ("ga", "rate")])
def test_bptt_and_the_ga_train_the_flip_flop(rule, arch):
    """A few updates on a tiny flip-flop lower the loss of every network."""
    import dataclasses

    from rnn.protocol import CLEAN
    from rnn.rules import get
    task = flipflop(steps=25)
    cfg = dataclasses.replace(get(rule).make_config(task), batch=32)
    if rule == "bptt":
        cfg = dataclasses.replace(cfg, lr=0.02)
    else:
        cfg = dataclasses.replace(cfg, population=8, parents=2, mutation=0.05)
    tr = get(rule).make(cfg, task, [0, 1], "cpu", None, dataclasses.replace(CLEAN, hidden=8),
                        arch)
    assert tr.model.W_out.shape[1] == 3
    idx = torch.tensor([0, 1])
    first = tr.step(idx)
    for _ in range(15):
        last = tr.step(idx)
    assert torch.isfinite(last).all() and (last < first).all()


def test_train_models_trains_a_flip_flop_and_other_rules_refuse_it(tmp_path):
    r = run_script("train_models.py", "bptt_ff", "--task", "flipflop", "--hidden", "6",
                   "--max-steps", "2", "--seed", "1", "--quiet", models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "bptt_ff.json").read_text())
    assert meta["task"]["name"] == "flipflop" and meta["task"]["noise"] == 0.0
    assert meta["task"]["mean"] == 1.0 and meta["validation"]["strengths"].startswith("random")
    from rnn.io import load_model
    lm = load_model("bptt_ff", tmp_path)
    assert lm.task.name == "flipflop" and lm.model.W_out.shape == (1, 3, 6)
    r = run_script("train_models.py", "heb_ff", "--task", "flipflop", models_dir=tmp_path)
    assert r.returncode == 2 and "every step" in r.stderr
    r = run_script("train_models.py", "bptt_f2", "--task", "flipflop", "--protocol",
                   "original", models_dir=tmp_path)
    assert r.returncode == 2 and "lenient" in r.stderr


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_a_hand_built_flip_flop_s_descriptor_is_8_corners_and_its_saddles(kind):
    """The hand-built 3-bit flip-flop of each architecture (tests/test_step_fixed_points.py)
    with the identity readout, through the tool's solver and descriptor: 8 stable
    points holding the 8 patterns; saddles with 1, 2, 3 unstable directions 12, 6, 1."""
    from rnn.analysis.compare import flipflop_descriptor
    from rnn.analysis.fixed_points import SolverConfig, find_fixed_points
    from rnn.io.importers import cell_from_state_dict
    from tests.test_step_fixed_points import _flip_flop
    sd = {f"rnn.{k}": v.float() for k, v in _flip_flop(kind).state_dict().items()}
    sd["out.weight"], sd["out.bias"] = torch.eye(3), torch.zeros(3)
    net, _ = cell_from_state_dict(sd, "hand-built", readout="out")
    # three outputs: the readout keeps its first row only on import; give it all three
    net = net.replace(W_out=torch.eye(3)[None], b_out=torch.zeros(1, 3))
    st = flipflop().static_inputs("small")
    fp = find_fixed_points(net, st.values, st.evidence, st.context,
                           SolverConfig(n_box=300, n_traj=100))
    v, m = flipflop_descriptor(fp, net)
    assert v.tolist() == [8, 8, 12, 6, 1] and m == 27


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_memories_held_from_behaviour_known_answers(kind):
    """The hand-built flip-flop with its pulses wired in (input weights the
    identity into each unit's drive) holds all 8 patterns for 2000 steps; with
    no input weights a pulse cannot move it off its unstable point at 0, so
    it holds none."""
    from rnn.io.importers import cell_from_state_dict
    from tests.test_step_fixed_points import _flip_flop
    m = _flip_flop(kind)
    block = {"RNN": 0, "GRU": 2, "LSTM": 2}[kind]         # n's (GRU), g's (LSTM) rows
    for wired in (True, False):
        sd = {f"rnn.{k}": v.float().clone() for k, v in m.state_dict().items()}
        if wired:
            sd["rnn.weight_ih_l0"][3 * block:3 * block + 3] = torch.eye(3)
        sd["out.weight"], sd["out.bias"] = torch.eye(3), torch.zeros(3)
        net, _ = cell_from_state_dict(sd, "hand-built", readout="out")
        net = net.replace(W_out=torch.eye(3)[None], b_out=torch.zeros(1, 3))
        assert flipflop().memories_held(net) == (8 if wired else 0), (kind, wired)


def test_analyze_dynamics_draws_a_flip_flop_network(tmp_path):
    r = run_script("train_models.py", "bptt_ff", "--task", "flipflop", "--hidden", "6",
                   "--max-steps", "2", "--seed", "1", "--quiet", models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_script("analyze_dynamics.py", "bptt_ff", "small", models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "flip-flop topology:" in r.stdout and "psychometric" not in r.stdout
    assert "from behaviour: holds " in r.stdout and " of the 8 bit patterns" in r.stdout
    assert "score on 2000 fresh trials (seed 0): " in r.stdout
    assert "by the steps since a pulse ended, 1–5: " in r.stdout and ", 21+: " in r.stdout
    assert "; 21+ steps after, another bit pulsed within 10 steps: " in r.stdout
    for f in ("bptt_ff_attractors.png", "bptt_ff_outputs.png", "bptt_ff_fixed_points_small.npz"):
        assert (tmp_path / f).stat().st_size > 0


def test_the_api_trains_and_compares_flip_flop_networks_of_two_architectures():
    from rnn import api
    task = api.task("flipflop", steps=30)
    assert task.noise == 0.0
    rate = api.train("bptt", task, seeds=[0, 1], max_steps=2, hidden=6)
    gru = api.train("ga", task, seeds=[0, 1], max_steps=1, hidden=6, arch="gru")
    for metric in ("topology", "svcca", "cka"):
        cmp = api.compare({"rate": rate, "gru": gru}, metric=metric, n_boot=20)
        assert cmp.distances.shape == (4, 4) and np.isfinite(cmp.distances).all()
    fp = api.fixed_points(gru[0], "small")
    assert fp.is_discrete and set(fp.input_index.tolist()) <= {0}


def test_the_flip_flop_s_stall_line_is_its_own_chance_score():
    from rnn.protocol import CLEAN
    from rnn.run import RunPlan
    plan = RunPlan.make("bptt", flipflop(), CLEAN)
    assert plan.stop.stall_below == 0.1
    assert RunPlan.make("bptt", parse("cdi").make(), CLEAN).stop.stall_below == 0.6


def test_a_pytorch_flip_flop_imports_with_its_three_outputs(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.out = torch.nn.GRU(3, 5), torch.nn.Linear(5, 3)
    torch.manual_seed(1)
    net = Net()
    torch.save(net.state_dict(), tmp_path / "ff.pt")
    r = run_script("import_model.py", "torch", tmp_path / "ff.pt", "--as", "bptt_ffgru",
                   "--task", "flipflop", models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    from rnn.io import load_model
    lm = load_model("bptt_ffgru", tmp_path)
    assert lm.task.name == "flipflop" and lm.task.noise == 0.0
    assert torch.equal(lm.model.W_out[0], net.out.weight.detach())
    assert torch.equal(lm.model.b_out[0], net.out.bias.detach())
    r = run_script("import_model.py", "torch", tmp_path / "ff.pt", "--as", "x", "--task", "cdi",
                   "-v", "0.5", models_dir=tmp_path)
    assert r.returncode == 2 and "inputs" in r.stderr
    r = run_script("import_model.py", "torch", tmp_path / "ff.pt", "--as", "x", "--task", "cdi",
                   models_dir=tmp_path)
    assert r.returncode == 2 and "give -v" in r.stderr


GRU_FF = "flipflop-bptt-gru-v000-clean_s40000_001"     # a committed universality network


def test_every_memory_a_trained_gru_holds_is_a_stable_point_the_search_finds(tmp_path):
    """Ground truth from behaviour: this committed GRU holds each of the 8 bit
    patterns, pulsed once, for 2000 steps of zero input, so it has 8 attractors
    at the 8 corners.  From random starts under the zero input alone the search
    found 6 of them (the report's first count); seeded with the states of the
    task's own trials, it finds all 8.  A cache solved without those starts is
    not reused."""
    from pathlib import Path
    import shutil
    from rnn import api
    from rnn.analysis.compare import flipflop_descriptor
    from rnn.analysis.dynamics import cached_fixed_points
    from rnn.analysis.fixed_points import FixedPoints, find_fixed_points
    root = Path(__file__).resolve().parents[1] / "experiments/networks/universality"
    for ext in (".json", ".pt"):
        shutil.copy(root / f"{GRU_FF}{ext}", tmp_path / f"{GRU_FF}{ext}")
    net = api.load(GRU_FF, tmp_path)
    m = net.model
    pats = torch.tensor([[(k >> b) & 1 for b in range(3)] for k in range(8)]) * 2.0 - 1
    u = torch.zeros(2005, 1, 8, 3)
    u[:5] = pats
    with torch.no_grad():
        z = m.outputs(m.simulate(u, torch.zeros(1, 8, m.hidden), keep="all").states)[-1, 0]
    assert ((z - pats).abs() < 0.5).all()                      # every memory held
    fp = api.fixed_points(net)
    v, _ = flipflop_descriptor(fp, m)
    assert v[:2].tolist() == [8, 8] and int(fp.task_starts) == 100
    # the same search without the task's trials: fewer (what the first report counted)
    st = net.task.static_inputs("small")
    old = find_fixed_points(m, st.values, st.evidence, st.context)
    assert int(old.task_starts) == 0 and old.is_stable.sum() < 8
    old.save(tmp_path / f"{GRU_FF}_fixed_points_small.npz")
    fp2, fresh, path = cached_fixed_points(m, net.task, GRU_FF, "small", tmp_path)
    assert fresh and fp2.is_stable.sum() == 8
    assert int(FixedPoints.load(path).task_starts) == 100
    assert not cached_fixed_points(m, net.task, GRU_FF, "small", tmp_path)[1]


def test_a_decision_task_s_search_has_no_task_starts():
    """Only a task with start_trials adds them: the decision tasks' searches (and
    so their caches, and PAPER.md) are those of their static inputs alone."""
    from rnn import api
    from rnn.analysis.fixed_points import expected_task_starts
    net = api.train("bptt", api.task("cdi", steps=20), max_steps=1)[0]
    assert expected_task_starts(net.task) == 0 and expected_task_starts(flipflop()) == 100
    assert int(api.fixed_points(net).task_starts) == 0


def test_memory_orbits_tell_a_fixed_point_from_a_cycle():
    """Where each held pattern lives: the hand-built vanilla flip-flop holds its 8
    patterns at fixed points (period 1); a fourth unit h ← −tanh(2h), kicked off 0
    by the first bit's pulse and not read out, puts every held state on a cycle
    of period 2 while the outputs still hold all 8 patterns; a network with no
    input weights holds none (0).  A committed GA network that holds one pattern
    on a 2-cycle and one on an orbit with no period up to 64 steps (−1)."""
    from pathlib import Path

    from rnn.io import load_model
    from rnn.io.importers import cell_from_state_dict
    from tests.test_step_fixed_points import _flip_flop
    three = _flip_flop("RNN")
    for osc, wired, want in ((0.0, True, [1] * 8), (-2.0, True, [2] * 8),
                             (-2.0, False, [0] * 8)):
        m = torch.nn.RNN(3, 4).double()
        with torch.no_grad():
            for prm in m.parameters():
                prm.zero_()
            m.weight_hh_l0[:3, :3] = three.weight_hh_l0
            m.weight_hh_l0[3, 3] = osc
            if wired:
                m.weight_ih_l0[:3] = torch.eye(3)
                m.weight_ih_l0[3, 0] = 1.0
        sd = {f"rnn.{k}": v.float() for k, v in m.state_dict().items()}
        sd["out.weight"], sd["out.bias"] = torch.eye(3, 4), torch.zeros(3)
        net, _ = cell_from_state_dict(sd, "hand-built", readout="out")
        net = net.replace(W_out=torch.eye(3, 4)[None], b_out=torch.zeros(1, 3))
        assert flipflop().memory_orbits(net) == want, (osc, wired)
        assert flipflop().memories_held(net) == sum(o != 0 for o in want)
    d = Path(__file__).resolve().parents[1] / "experiments/networks/universality"
    lm = load_model("flipflop-ga-vanilla-v000-clean_s40006_001", d)
    assert lm.task.memory_orbits(lm.model) == [1, 1, 1, 1, 2, 1, 1, -1]
    from analyze_dynamics import held_summary
    assert held_summary([1, 1, 1, 1, 2, 1, 1, -1]) == (
        "holds 8 of the 8 bit patterns for 2000 steps (6 at fixed points, 1 on a cycle of "
        "period 2, 1 on an orbit with no period up to 64 steps)")
    assert held_summary([0] * 8) == "holds 0 of the 8 bit patterns for 2000 steps"


def test_the_attractor_figure_draws_memories_held_on_orbits():
    """plot_flipflop: stable points coloured by their pattern, and the states of a
    memory held on an orbit as points of that pattern's colour, in both panels."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.colors import to_rgba

    from rnn import plotting as plots
    from rnn.analysis.dynamics import fit_pca
    rng = np.random.default_rng(0)
    states = rng.normal(size=(2, 20, 5))
    pca = fit_pca(states)
    fig, axes = plots.new_figure(2, 1)
    orb = pca.project(rng.normal(size=(4, 5)))
    plots.plot_flipflop(axes[0], pca.project(states), pca.project(states[0, :3]),
                        np.array([1, 1, 0]), np.array([0, 3]), pca, {5: orb})
    for ax, (a, b) in zip(axes[0], [(0, 1), (0, 2)]):
        drawn = [c for c in ax.collections if c.get_label().startswith("memory held")]
        assert drawn and np.allclose(drawn[0].get_offsets(), orb[:, [a, b]])
        assert np.allclose(drawn[0].get_facecolor()[0], to_rgba(plots.plt.get_cmap("tab10")(5)))
    labels = axes[0][0].get_legend_handles_labels()[1]
    assert "memory held on a moving orbit (colour: its bits)" in labels


def test_orbit_periods_reads_the_first_return_within_the_tolerance():
    """Periods from given states: a state at rest is 1; one that returns after 3
    steps is 3 (not 6, its multiple); one that returns only to 2e-4 of where it
    was, against a tolerance of 1e-4 · (1 + |x|), has no period (−1), and with
    the tolerance loosened it has; a pattern not held is 0 whatever its states."""
    from tasks.flipflop import orbit_periods
    w = 8
    x = torch.zeros(w + 1, 4, 2)
    x[:, 0] = torch.tensor([0.5, -0.5])                           # at rest
    x[:, 1] = torch.arange(w + 1.0)[:, None]                      # moving, but not held
    phase = torch.arange(w + 1) % 3
    x[:, 2, 0] = phase.float()                                    # a 3-cycle
    x[:, 3, 1] = 2e-4 * (torch.arange(w + 1) > 0).float()         # near, never back
    held = [True, False, True, True]
    assert orbit_periods(held, x) == [1, 0, 3, -1]
    assert orbit_periods(held, x, tol=3e-4) == [1, 0, 3, 1]


def test_largest_lyapunov_has_the_known_exponents():
    """Known answers: linear maps at their fixed point 0 (diag(1.5, 0.3): ln 1.5;
    0.9 times a rotation: ln 0.9); a map with an attracting invariant circle
    turned by an irrational angle (quasi-periodic: 0); the logistic map at
    r = 4 (chaos: ln 2); a one-unit RNN h ← tanh(0.5 h) through its own
    simulate (ln 0.5, at h = 0).  The kind each is given follows."""
    import math

    from rnn.analysis.dynamics import exponent_kind, largest_lyapunov, zero_input_advance

    def linear(A):
        def advance(x, k):
            for _ in range(k):
                x = x @ A.T
            return x
        return advance

    def circle(x, k):                    # r ← √r, θ ← θ + 1: the unit circle attracts
        for _ in range(k):
            r, th = x.norm(dim=-1), torch.atan2(x[:, 1], x[:, 0]) + 1.0
            x = torch.stack([r.sqrt() * th.cos(), r.sqrt() * th.sin()], dim=-1)
        return x

    def logistic(x, k):
        for _ in range(k):
            x = 4.0 * x * (1.0 - x)
        return x

    c, s = math.cos(1.0), math.sin(1.0)
    cases = [(linear(torch.tensor([[1.5, 0.0], [0.0, 0.3]], dtype=torch.float64)),
              torch.zeros(1, 2), math.log(1.5), 1e-9, "chaotic"),
             (linear(0.9 * torch.tensor([[c, -s], [s, c]], dtype=torch.float64)),
              torch.zeros(1, 2), math.log(0.9), 1e-9, "contracting"),
             (circle, torch.tensor([[0.5, 0.0]]), 0.0, 1e-3, "quasi-periodic"),
             (logistic, torch.tensor([[0.3]]), math.log(2.0), 0.02, "chaotic")]
    for advance, x0, want, tol, kind in cases:
        lam = largest_lyapunov(advance, x0)
        assert lam.shape == (1,) and abs(lam[0] - want) < tol, (want, lam)
        assert exponent_kind(float(lam[0])) == kind, (want, lam)
    m = torch.nn.RNN(1, 1)
    with torch.no_grad():
        for prm in m.parameters():
            prm.zero_()
        m.weight_hh_l0.fill_(0.5)
    from rnn.io.importers import cell_from_state_dict
    sd = {f"rnn.{k}": v for k, v in m.state_dict().items()}
    sd["out.weight"], sd["out.bias"] = torch.ones(1, 1), torch.zeros(1)
    net, _ = cell_from_state_dict(sd, "one unit", readout="out")
    lam = largest_lyapunov(zero_input_advance(net), torch.zeros(2, 1), steps=500)
    assert np.allclose(lam, math.log(0.5), atol=1e-6)


def test_memories_on_moving_orbits_get_their_exponents(tmp_path):
    """The committed GA network of test_memory_orbits…: its 2-cycle contracts
    (λ ≈ −0.069 per step), its orbit with no period is quasi-periodic (λ ≈ 0);
    memories at fixed points get none.  analyze_dynamics prints both."""
    import shutil
    from pathlib import Path

    from analyze_dynamics import exponent_summary
    from rnn.analysis.dynamics import exponent_kind
    from rnn.io import load_model
    from tasks.flipflop import orbit_periods
    name = "flipflop-ga-vanilla-v000-clean_s40006_001"
    d = Path(__file__).resolve().parents[1] / "experiments/networks/universality"
    lm = load_model(name, d)
    held, x = lm.task.memory_states(lm.model)
    periods = orbit_periods(held, x)
    lam = lm.task.memory_exponents(lm.model, x, periods)
    assert [k for k, v in enumerate(lam) if v is not None] == [4, 7]
    assert abs(lam[4] + 0.0687) < 1e-3 and exponent_kind(lam[4]) == "contracting"
    assert abs(lam[7]) < 1e-4 and exponent_kind(lam[7]) == "quasi-periodic"
    line = exponent_summary(periods, lam)
    assert line.startswith("largest Lyapunov exponent per step over 10000 steps: "
                           "−−+ (period 2) -0.069, contracting; +++ (no period up to 64) ")
    assert line.endswith(", quasi-periodic")
    for f in (f"{name}.json", f"{name}.pt"):
        shutil.copy(d / f, tmp_path / f)
    r = run_script("analyze_dynamics.py", name, "small", models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"on the moving orbits: {line}" in r.stdout
    import re
    got = re.search(r"  \+\+\+ turns ([\d.]+) rad a step \(radius ([\d.]+), ([\d.]+)% of its "
                    r"variance in 2 PCs\) around a fixed point ([\d.]+) away with 2 unstable "
                    r"directions, its leading eigenvalue of modulus ([\d.]+) at angle ([\d.]+) "
                    r"rad", r.stdout)
    assert got, r.stdout          # the orbit's phase after 2000 steps is the CPU's rounding:
    want = (2.330, 1.197, 98.2, 0.155, 1.0341, 2.326)        # its averages are close, not equal
    tol = (0.01, 0.02, 0.5, 0.01, 1e-3, 1e-3)
    assert all(abs(float(g) - w) <= t for g, w, t in zip(got.groups(), want, tol)), got.groups()


def test_a_slow_spiral_into_a_fixed_point_is_not_a_cycle():
    """Two more units of the hand-built flip-flop turn by 2π/5 a step and shrink by
    0.998 (a stable focus at 0, kicked by the first bit's pulse): after 2000
    steps the state returns within the tolerance every 5 steps, so the window
    alone reads a 5-cycle; followed further it comes to rest, so each memory
    is held at a fixed point (period 1), with no exponent to compute."""
    import math

    from tasks.flipflop import orbit_periods
    net = _focus_flip_flop(0.998, 2 * math.pi / 5)
    task = flipflop()
    assert orbit_periods(*task.memory_states(net)) == [5] * 8
    periods, x = task.orbits_and_states(net)
    assert periods == [1] * 8 and task.memory_orbits(net) == [1] * 8
    assert task.orbits_and_states(net, settle=0)[0] == [5] * 8
    assert task.memory_exponents(net, x, periods) == [None] * 8


def _focus_flip_flop(rho: float, angle: float):
    """The hand-built vanilla flip-flop with two more units turned by ``angle`` and
    scaled by ``rho`` a step (a focus at 0), kicked by the first bit's pulse."""
    import math

    from rnn.io.importers import cell_from_state_dict
    from tests.test_step_fixed_points import _flip_flop
    three = _flip_flop("RNN")
    m = torch.nn.RNN(3, 5).double()
    with torch.no_grad():
        for prm in m.parameters():
            prm.zero_()
        m.weight_hh_l0[:3, :3] = three.weight_hh_l0
        m.weight_hh_l0[3:, 3:] = rho * torch.tensor([[math.cos(angle), -math.sin(angle)],
                                                     [math.sin(angle), math.cos(angle)]])
        m.weight_ih_l0[:3] = torch.eye(3)
        m.weight_ih_l0[3, 0] = 1.0
    sd = {f"rnn.{k}": v.float() for k, v in m.state_dict().items()}
    sd["out.weight"], sd["out.bias"] = torch.eye(3, 5), torch.zeros(3)
    net, _ = cell_from_state_dict(sd, "hand-built", readout="out")
    return net.replace(W_out=torch.eye(3, 5)[None], b_out=torch.zeros(1, 3))


def test_an_invariant_circle_around_an_unstable_focus_is_named_so():
    """A focus that lost stability through a complex pair (|μ| = 1.05 at 1 rad, a
    Neimark–Sacker bifurcation): with tanh saturating it, each memory is held
    on an invariant circle: no period, exponent 0 (quasi-periodic), turning
    by about 1 rad a step in a plane around the corner's fixed point, which
    has 2 unstable directions and μ = 1.05·e^{±i}."""
    from rnn.analysis.dynamics import exponent_kind, orbit_origin
    from rnn.analysis.fixed_points import task_fixed_points
    net = _focus_flip_flop(1.05, 1.0)
    task = flipflop()
    periods, x = task.orbits_and_states(net)
    assert periods == [-1] * 8
    lam = task.memory_exponents(net, x, periods)
    assert all(exponent_kind(v) == "quasi-periodic" for v in lam)
    fp = task_fixed_points(net, task, "small")
    for k in range(8):
        o = orbit_origin(fp, x[:, k].numpy(), net.dt)
        assert o.distance < 0.05 and o.n_unstable == 2 and o.planar > 0.999
        assert abs(o.modulus - 1.05) < 1e-6 and abs(o.angle - 1.0) < 1e-6
        assert abs(o.turn - 1.0) < 0.05 and 0.2 < o.radius < 0.6


def test_steps_since_pulse_counts_from_each_bit_s_last_pulse_end():
    from tasks.flipflop import steps_since_pulse
    # one bit: held, pulse at steps 2-3, held 4-6, pulse at 7, held 8-9
    hold = torch.tensor([1, 1, 0, 0, 1, 1, 1, 0, 1, 1], dtype=torch.float32)
    assert steps_since_pulse(hold).tolist() == [1, 2, 0, 0, 1, 2, 3, 0, 1, 2]
    # per trial and bit independently ([T, 1, n, B])
    h2 = torch.stack([hold, hold.flip(0)], -1).view(10, 1, 1, 2)
    got = steps_since_pulse(h2)[:, 0, 0]
    assert got[:, 0].tolist() == [1, 2, 0, 0, 1, 2, 3, 0, 1, 2]
    assert got[:, 1].tolist() == [1, 2, 0, 1, 2, 3, 0, 0, 1, 2]


class _Replay:
    """A stand-in network whose 'state' is the step it has reached and whose
    outputs are the rows of a given Z [T, 1, n, B]: score_by_lag's windows
    see exactly Z, so its scores have known answers."""
    n_networks, device, dtype = 1, torch.device("cpu"), torch.float32

    def __init__(self, Z):
        self.Z = Z

    def simulate(self, u, x, keep="all"):
        t0 = int(x.item())
        return SimpleNamespace(states=self.Z[t0:t0 + u.shape[0]],
                               x_last=torch.tensor(float(t0 + u.shape[0])))

    def outputs(self, states):
        return states


def test_score_by_lag_known_answers_across_windows():
    """Outputs equal to the targets except on the first k held steps after
    every pulse that flipped the bit: the bins up to k lose exactly those
    pairs, the others score 1, and the overall score is their weighted mean."""
    from tasks.flipflop import SEQUENCE_WINDOW, steps_since_pulse
    task = flipflop(steps=3 * SEQUENCE_WINDOW + 5)       # windows that do not divide T
    tr = task.sample(40, Streams([11], 2))
    since = steps_since_pulse(tr.hold)
    T = tr.targets.shape[0]
    flipped = torch.zeros_like(tr.hold, dtype=torch.bool)   # held pairs after a flip, per pulse
    prev = tr.targets[:1].clone()
    last_flip = torch.zeros_like(tr.targets[0], dtype=torch.bool)
    for t in range(T):
        start = (tr.hold[t] == 0) & ((tr.hold[t - 1] != 0) if t else torch.ones_like(last_flip))
        last_flip = torch.where(start, tr.targets[t] != prev[0], last_flip)
        flipped[t] = last_flip
        prev = tr.targets[t:t + 1]
    k = 3
    wrong = flipped & (tr.hold > 0) & (since <= k)
    Z = torch.where(wrong, -tr.targets, tr.targets)
    r = task.score_by_lag(_Replay(Z), tr, torch.tensor(0.0))
    held = tr.hold > 0
    n_held = held.sum().item()
    assert r["score"] == pytest.approx(1 - wrong.sum().item() / n_held)
    first = r["bins"][0]
    assert (first["from"], first["to"]) == (1, 5)
    in1 = held & (since <= 5)
    assert first["score"] == pytest.approx(1 - wrong.sum().item() / in1.sum().item())
    assert first["score"] < 1 and wrong.any()
    assert [b["score"] for b in r["bins"][1:]] == [1.0, 1.0, 1.0]
    assert sum(b["share"] for b in r["bins"]) == pytest.approx(1.0)
    assert r["bins"][-1]["to"] is None
    c = r["crosstalk"]                          # errors only after a flip: none long after
    assert (c["after"], c["within"]) == (21, 10)
    assert c["near"]["score"] == c["far"]["score"] == 1.0
    assert c["near"]["share"] + c["far"]["share"] == pytest.approx(r["bins"][-1]["share"])


def test_score_by_lag_s_crosstalk_known_answers():
    """Errors on the held pairs long after their own pulse (21+ steps) while
    another bit pulses or has just pulsed (within 10 steps): the crosstalk's
    'near' score loses exactly them, its 'far' score and the early bins none."""
    from tasks.flipflop import steps_since_pulse
    task = flipflop(steps=150)
    tr = task.sample(60, Streams([12], 2))
    since = steps_since_pulse(tr.hold)
    other = torch.stack([since[..., [c for c in range(3) if c != b]].min(-1).values
                         for b in range(3)], -1)
    late = (tr.hold > 0) & (since >= 21)
    near = late & (other <= 10)
    wrong = near & (torch.arange(150).view(150, 1, 1, 1) % 2 == 0)     # every other step
    Z = torch.where(wrong, -tr.targets, tr.targets)
    r = task.score_by_lag(_Replay(Z), tr, torch.tensor(0.0))
    c = r["crosstalk"]
    assert wrong.any() and (late & ~near).any()
    assert c["near"]["score"] == pytest.approx(1 - wrong.sum().item() / near.sum().item())
    assert c["far"]["score"] == 1.0
    assert [b["score"] for b in r["bins"][:3]] == [1.0, 1.0, 1.0]
    n_held = (tr.hold > 0).sum().item()
    assert c["near"]["share"] == pytest.approx(near.sum().item() / n_held)


@pytest.mark.parametrize("arch", ["rate", "gru"])
def test_score_by_lag_s_overall_is_the_stop_rule_s_validation_score(arch):
    from rnn.arch import init_network
    from rnn.training import ValidationSet
    task = flipflop(steps=30)
    m = init_network(arch, Streams([5], 0), 3, hidden=6, n_outputs=3,
                     activation="one_plus_tanh", readout="linear")
    m = m.replace(W_out=4.0 * m.W_out)
    vs = ValidationSet.make(task, [9], m.hidden, m.device)
    r = task.score_by_lag(m, vs.trials, vs.x0)
    want = float(vs.accuracy(m, torch.tensor([0]))[0])
    assert 0 < want < 1
    assert r["score"] == pytest.approx(want, abs=1e-12)
    with pytest.raises(ValueError, match="one network"):
        task.score_by_lag(m, vs.trials.select(torch.tensor([0, 0])), vs.x0)
