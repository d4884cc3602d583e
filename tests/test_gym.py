"""The neurogym adapter (tasks/gym.py): trials, loss, score, static inputs, and
each script end to end on a tiny network."""
import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

if importlib.util.find_spec("neurogym") is None:       # not importorskip: neurogym's import
    pytest.skip("neurogym is not installed", allow_module_level=True)   # sets global fonts

from rnn.errors import UserError  # noqa: E402
from rnn.rng import Streams  # noqa: E402
from tasks import parse  # noqa: E402
from tasks.gym import DECISION_WEIGHT, ENVS, make_env  # noqa: E402
from tests.helpers import run_script  # noqa: E402


@pytest.mark.parametrize("family", ["ngpdm", "ngcdm"])
def test_trials_are_the_environment_s_padded_and_a_network_s_own(family):
    task = parse(family).make()
    both = task.sample(6, Streams([3, 4], 7))
    alone = task.sample(6, Streams([4], 7))
    T, L = both.inputs.shape[0], alone.inputs.shape[0]
    assert both.inputs.shape == (T, 2, 6, task.n_inputs) and T >= L
    # network 4's trials do not depend on network 3 sharing the call (only the padding)
    assert torch.equal(both.inputs[:L, 1:], alone.inputs) and not both.inputs[L:, 1:].any()
    assert torch.equal(both.targets[:L, 1:], alone.targets)
    # weights: 1 on fixation steps, DECISION_WEIGHT on decision steps, 0 after the end
    w, gt = both.mask, both.targets
    assert set(w.unique().tolist()) <= {0.0, 1.0, DECISION_WEIGHT}
    assert torch.equal(w == DECISION_WEIGHT, gt > 0)
    # one scored step per trial with evidence: the last step of the decision period
    per_trial = both.hold.sum(0)
    assert set(per_trial.unique().tolist()) <= {0.0, 1.0} and per_trial.sum() > 0
    last = both.hold.argmax(0)
    for p in range(2):
        for i in range(6):
            if per_trial[p, i]:
                t = int(last[p, i])
                assert gt[t, p, i] > 0 and (t + 1 == T or w[t + 1, p, i] == 0)


def test_loss_is_the_weighted_cross_entropy_and_score_the_last_decision_step():
    task = parse("ngpdm").make()
    tr = task.sample(4, Streams([1], 7))
    A = task.n_outputs
    logits = torch.randn(*tr.targets.shape, A, dtype=torch.float64)
    model = SimpleNamespace(outputs=lambda states: logits)
    sim = SimpleNamespace(states=None)
    got = float(task.loss(model, sim, tr)[0])
    p = torch.softmax(logits, -1)
    nll = -torch.log(p.gather(-1, tr.targets.unsqueeze(-1))[..., 0])
    want = float((nll * tr.mask).sum() / tr.mask.sum())
    assert abs(got - want) < 1e-12
    # a readout that puts the right action first everywhere scores 1, the wrong one 0
    right = torch.nn.functional.one_hot(tr.targets, A).double()
    model.outputs = lambda states: right
    assert float(task.score(model, sim, tr)[0]) == 1.0
    model.outputs = lambda states: torch.roll(right, 1, -1)     # every argmax off by one
    assert float(task.score(model, sim, tr)[0]) == 0.0


def test_windowed_sums_of_a_population_equal_the_whole_sequence_loss_and_score():
    """The GA's loss and validation's score (tasks.flipflop.sequence_mean): 2 runs
    x 3 members sharing their run's trials, in windows that do not divide T,
    against one pass with the trials repeated for each member."""
    from rnn.arch import init_network
    from tasks.flipflop import SequenceTrials, sequence_mean
    task = parse("ngpdm").make()
    G = 3
    m = init_network("gru", Streams([5, 6], 0), task.n_inputs, per_stream=G, hidden=6,
                     n_outputs=task.n_outputs)
    m = m.replace(W_out=5.0 * m.W_out)
    tr = task.sample(5, Streams([7, 8], 7))
    x0 = 0.5 * torch.randn(2, 5, m.hidden, generator=torch.Generator().manual_seed(1))
    rep = SequenceTrials(*(t.repeat_interleave(G, dim=1) for t in
                           (tr.inputs, tr.targets, tr.mask, tr.hold)))
    sim = m.simulate(rep.inputs, x0.repeat_interleave(G, 0), keep="all")
    for terms, whole in ((task.loss_terms, task.loss), (task.score_terms, task.score)):
        want = whole(m, sim, rep)
        got = sequence_mean(m, tr, x0, terms, G, window=7)      # most windows score nothing
        assert torch.allclose(got.to(want.dtype), want, rtol=1e-5, atol=1e-7)
    # the members differ (each is scored on its own outputs, not member 0's)
    assert len(set(task.loss(m, sim, rep).tolist())) == 2 * G


def test_coherence_0_trials_are_not_scored():
    task = parse("ngpdm").make()
    env = make_env(ENVS["ngpdm"].env_id, 1.0)
    env.seed(0)
    cohs = [env.new_trial()["coh"] for _ in range(400)]
    tr = task._trials(0, 400)
    assert [s for *_, s in tr] == [c != 0 for c in cohs] and 0.0 in cohs


@pytest.mark.parametrize("family", ["ngpdm", "ngcdm"])
def test_static_inputs_are_the_stimulus_period_s_noise_free_input(family):
    """Known answer: with sigma 0 the environment's own observation during the
    stimulus equals the static input of the trial's signed coherence and context
    (the uncued modality, which the static inputs hold at coherence 0, aside)."""
    task = parse(family).make(noise=0.0)
    env, spec = task.env, ENVS[family]
    env.seed(5)
    for _ in range(30):
        info = env.new_trial()
        c, k = spec.evidence(info)
        ob = env.ob[int(env.start_ind["stimulus"])].copy()
        if family == "ngcdm":        # the static input sets the other modality at coherence 0
            ob[3 - 2 * k: 5 - 2 * k] = 0.5
        assert np.allclose(ob, spec.static(c, k), atol=1e-6)
    st = task.static_inputs("small")
    assert st.values.shape == (21 * task.n_contexts, task.n_inputs)
    assert np.allclose(sorted(set(np.round(st.evidence, 6))), np.linspace(-1, 1, 21)
                       * min(c for c in spec.cohs if c > 0) / 100)
    assert task.svcca_inputs(10).values.shape == (10 * task.n_contexts, task.n_inputs)


def test_mean_is_refused_and_noise_is_the_environment_s_sigma():
    with pytest.raises(UserError, match="does not apply"):
        parse("ngpdm").make(mean=0.2)
    task = parse("ngcdm").make(noise=0.5)
    assert task.noise == 0.5 and abs(task.env.sigma - 0.5 / np.sqrt(task.env.dt)) < 1e-12


def test_train_models_trains_a_neurogym_task_and_the_analyses_run_on_it(tmp_path):
    r = run_script("train_models.py", "bptt_pdm", "--task", "ngpdm", "--hidden", "6",
                   "--max-steps", "2", "--count", "2", "--seed", "1", "--quiet",
                   models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "bptt_pdm_000.json").read_text())
    assert meta["task"]["name"] == "ngpdm" and meta["task"]["env"] == ENVS["ngpdm"].env_id
    assert "coherence-0" in meta["validation"]["strengths"]
    from rnn.io import load_model
    lm = load_model("bptt_pdm_000", tmp_path)
    assert lm.task == parse("ngpdm").make() and lm.model.W_out.shape == (1, 3, 6)
    r = run_script("train_models.py", "ga_pdm", "--task", "ngpdm", "--hidden", "6", "--arch",
                   "gru", "--max-steps", "1", "--count", "2", "--seed", "2", "--quiet",
                   models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_script("analyze_dynamics.py", "bptt_pdm_000", "sparse", models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    for f in ("bptt_pdm_000_sparse_attractors.png", "bptt_pdm_000_outputs.png"):
        assert (tmp_path / f).stat().st_size > 0
    for script in ("fixed_point_input_topology.py", "svcca_analysis.py"):
        r = run_script(script, "bptt_pdm.txt", "ga_pdm.txt", "--bootstrap", "0",
                       models_dir=tmp_path)
        assert r.returncode == 0, f"{script}: {r.stderr}"
    r = run_script("train_models.py", "heb_pdm", "--task", "ngpdm", models_dir=tmp_path)
    assert r.returncode == 2 and "every step" in r.stderr


def test_the_descriptor_reads_the_choice_logits_not_a_single_output():
    """A neurogym network has one output per action: the input-topology
    descriptor orders points by logit(choice 1) - logit(choice 2) (the model
    here has no single ``output`` to fall back on)."""
    from rnn.analysis.compare import topology_descriptor
    task = parse("ngpdm").make()
    st = task.static_inputs("sparse")
    K = len(st.values)
    x = np.stack([np.repeat(10.0 * np.arange(K), 2), np.tile([1.0, -1.0], K)], axis=1)
    fp = SimpleNamespace(xstar=x, input_index=np.repeat(np.arange(K), 2),
                         evidence=np.repeat(st.evidence, 2))
    W = torch.tensor([[[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]], dtype=torch.float64)  # [1, A, S]
    model = SimpleNamespace(dtype=torch.float64,
                            outputs=lambda s: torch.einsum("...s,pas->...a", s, W))
    v, m = topology_descriptor(fp, model, n_points=4, k=2, task=task)
    assert m == 2 * K and np.allclose(v, np.repeat(st.evidence[:2], 4))
