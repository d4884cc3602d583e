import pytest
import torch

from helpers import reference_simulate
from rnn.errors import UserError
from rnn.io import load_model, save_model
from rnn.model import RateRNN, accuracy
from rnn.rng import Streams
from tasks import ncdi, rdm


def make(act, readout="linear", P=3, I=4, seed=0, scale=30.0):
    m = RateRNN.init(Streams(list(range(seed, seed + P)), 1), I, activation=act, readout=readout)
    b = 0.1 * Streams([seed + 100], 1).normal(P * 50).view(P, 50)
    return m.replace(W_rec=m.W_rec * scale, b=b)   # strong enough recurrence to matter


@pytest.mark.parametrize("act", ["one_plus_tanh", "tanh", "relu"])
def test_simulate_matches_literal_euler(act):
    m = make(act, scale=30.0 if act != "relu" else 10.0)
    task = ncdi(2, 0.5, steps=60)
    tr = task.sample(5, Streams([0, 1, 2], 2))
    x0 = 0.3 * Streams([9, 8, 7], 2).normal(5, 50)
    ref = reference_simulate(m, tr.inputs, x0)
    sim = m.to(dtype=torch.float64).simulate(tr.inputs, x0, keep="all")
    assert torch.allclose(sim.states, ref, atol=1e-10)
    assert torch.allclose(sim.x_first, ref[0], atol=1e-10)
    assert torch.allclose(sim.x_last, ref[-1], atol=1e-10)
    sim32 = m.simulate(tr.inputs, x0)
    # float32 (σ-based fast path) agrees to float32 accuracy, amplified by the
    # strongly recurrent (chaotic) weights over 60 steps
    err = (sim32.x_last.double() - ref[-1]).abs().max()
    assert err < 1e-4 * ref.abs().max()


def test_stack_equals_each_network_alone_and_shared_inputs():
    m = make("one_plus_tanh", P=6, I=1, scale=5.0)
    task = rdm(0.5, steps=50)
    tr = task.sample(7, Streams([1, 2], 2))       # two input sequences, 3 networks each
    x0 = torch.randn(2, 7, 50, generator=torch.Generator().manual_seed(0))
    together = m.simulate(tr.inputs, x0).x_last
    for p in range(6):
        alone = m.select(p).simulate(tr.inputs[:, p // 3], x0[p // 3]).x_last
        assert torch.allclose(alone[0], together[p], atol=1e-6)


def test_keep_stride():
    m = make("tanh", P=1)
    u = torch.zeros(25, 2, 4)
    sim = m.simulate(u, torch.zeros(2, 50), keep=10)
    assert sim.steps.tolist() == [10, 20, 25]
    full = m.simulate(u, torch.zeros(2, 50), keep="all")
    assert torch.allclose(sim.states[1], full.states[19])


def test_clamped_units_held_and_reduced_network_equivalent():
    m = make("tanh", readout="unit0", P=2).replace(clamp_idx=(1, 10, 11),
                                                   clamp_val=(1.0, 1.0, -1.0))
    task = ncdi(2, 0.5, steps=40)
    tr = task.sample(4, Streams([0, 1], 2))
    x0 = 0.3 * torch.randn(2, 4, 50, generator=torch.Generator().manual_seed(1))
    sim = m.to(dtype=torch.float64).simulate(tr.inputs, x0, keep="all")
    ref = reference_simulate(m, tr.inputs, x0)
    assert torch.allclose(sim.states, ref, atol=1e-10)
    assert torch.all(sim.states[..., 1] == 1) and torch.all(sim.states[..., 11] == -1)
    red = m.reduced()
    assert red.hidden == 47 and not red.clamp_idx


def test_readouts():
    m = make("tanh", readout="tanh_rates", P=1)
    x = torch.randn(1, 3, 50)
    z = m.output(x)
    assert torch.allclose(z, torch.tanh(torch.tanh(x) @ m.W_out[0, 0]), atol=1e-6)
    m0 = m.replace(readout="unit0")
    assert torch.allclose(m0.output(x), torch.tanh(x[..., 0]))


def test_save_load_identical_outputs(tmp_path):
    m = make("one_plus_tanh", P=1)
    task = ncdi(2, 0.5, steps=30)
    tr = task.sample(8, Streams([0], 2))
    x0 = torch.zeros(1, 8, 50)
    meta = {"task": task.to_dict(), "rule": "bptt", "final_accuracy": float("nan")}
    save_model("bptt_x", m, meta, {"loss": torch.arange(3.0)}, tmp_path)
    payload = torch.load(tmp_path / "bptt_x.pt", weights_only=True)
    assert payload["format"] == "rnn-learning-rules/model"
    lm = load_model("bptt_x", tmp_path)
    a = m.simulate(tr.inputs, x0).x_last
    b = lm.model.simulate(tr.inputs, x0).x_last
    assert torch.equal(a, b)
    assert lm.task == task
    assert lm.meta["final_accuracy"] is None          # NaN is stored as null in JSON
    assert (tmp_path / "bptt_x.json").read_text().startswith("{")
    assert accuracy(lm.model, tr.inputs, x0, tr.targets).shape == (1,)


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="no model 'nothing'"):
        load_model("nothing", tmp_path)
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 truncated garbage")
    with pytest.raises(UserError, match="cannot read model file"):
        load_model("broken", tmp_path)
    torch.save({"weights": {"rec": torch.zeros(2, 2)}}, tmp_path / "legacy.pt")
    with pytest.raises(UserError, match="original research code"):
        load_model("legacy", tmp_path)
    torch.save([1, 2, 3], tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not a model file"):
        load_model("foreign", tmp_path)
    with pytest.raises(UserError, match="path separators"):
        load_model("../etc/passwd", tmp_path)


def _unscaled_simulate(m: RateRNN, inputs, x0, rate_buffer=None):
    """The sweep as it ran before the state was carried as y = 2x: g = σ(2x)
    by its own pass (the committed networks were trained by this)."""
    mode, M, c = m.recurrence()
    P, n, H, I = m.n_networks, x0.shape[-2], m.hidden, m.n_inputs
    x = x0.expand(P, n, H).clone()
    Min = torch.cat([m.W_in.transpose(1, 2), c[:, None, :]], dim=1)
    U = torch.empty(P, n, I + 1, dtype=x.dtype)
    U[..., I] = 1.0
    g_own = torch.empty_like(x)
    states = []
    for t in range(inputs.shape[0]):
        g = g_own if rate_buffer is None else rate_buffer[:, t]
        torch.mul(x, 2.0, out=g)
        g.sigmoid_()
        U[..., :I] = inputs[t]
        x.baddbmm_(g, M, beta=1.0 - m.dt, alpha=m.dt)
        x.baddbmm_(U, Min, alpha=m.dt)
        states.append(x.clone())
    return torch.stack(states)


@pytest.mark.parametrize("act", ["one_plus_tanh", "tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_doubled_state_sweep_is_bit_for_bit_the_plain_one(act, dtype):
    m = RateRNN.init(Streams([3, 4, 5], 1), 4, hidden=20, activation=act).to(dtype=dtype)
    m = m.replace(W_rec=m.W_rec * 8)            # strong recurrence: large states
    u = torch.randn(60, 3, 7, 4, generator=torch.Generator().manual_seed(2)).to(dtype)
    x0 = 2 * torch.randn(3, 7, 20, generator=torch.Generator().manual_seed(3)).to(dtype)
    want = _unscaled_simulate(m, u, x0)
    sim = m.simulate(u, x0, keep="all")
    assert torch.equal(sim.states, want)
    assert torch.equal(sim.x_first, want[0]) and torch.equal(sim.x_last, want[-1])
    assert torch.equal(m.simulate(u, x0).x_last, want[-1])
    # with the rates kept for BPTT (the products then read a strided buffer)
    want_buf = torch.empty(3, 60, 7, 20, dtype=dtype)
    want = _unscaled_simulate(m, u, x0, want_buf)
    buf = torch.empty(3, 60, 7, 20, dtype=dtype)
    sim = m.simulate(u, x0, keep="all", rate_buffer=buf)
    assert torch.equal(sim.states, want) and torch.equal(buf, want_buf)
