"""e-prop (and what RFLO shares with it): tests that would catch a wrong rule
(derivation in rnn/rules/eprop.py); RFLO's own in tests/test_rflo.py."""
import json

import pytest
import torch

from helpers import autograd_loss_and_grads, run_script
from rnn.rules.eprop import EpropConfig, EpropTrainer, loss_and_updates, traces
from rnn.io import load_model
from rnn.model import RateRNN
from rnn.protocol import Protocol
from rnn.rules.rflo import RFLOConfig, RFLOTrainer
from tasks import ncdi, rdm

ACTS = ["one_plus_tanh", "tanh", "relu"]
SMALL = Protocol(hidden=8)


def tiny(act, w_rec_scale=1.0, T=12, n=3, seed=1):
    """A float64 stack of 2 networks of 4 units with 3 inputs, its inputs, x0, targets."""
    g = torch.Generator().manual_seed(seed)
    P, H, I = 2, 4, 3
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    m = RateRNN(r(P, H, I), w_rec_scale * r(P, H, H), r(P, 1, H), 0.2 * r(P, H), act, "linear")
    return m, r(T, P, n, I), 0.3 * r(P, n, H), torch.sign(r(P, n))


def direct(m, u, x0, y, f):
    """Traces and update written out per synapse, step by step (the module doc's
    recursions, no vectorised shortcut)."""
    P, H, dt = m.n_networks, m.hidden, m.dt
    T, n = u.shape[0], u.shape[2]
    eps = torch.zeros(P, n, H, H, dtype=torch.float64)          # ε_{ij} per trial
    x = x0.clone()
    kept = {}
    for t in range(1, T + 1):
        r = m.phi(x)
        new = torch.zeros_like(eps)
        for i in range(H):
            for j in range(H):
                new[:, :, i, j] = (1 - dt) * eps[:, :, i, j] + dt * r[:, :, j]
        eps = new
        x = x + dt * (-x + torch.einsum("pij,pnj->pni", m.W_rec, r)
                      + torch.einsum("pij,pnj->pni", m.W_in, u[t - 1]) + m.b[:, None])
        if t in (1, T):
            kept[t] = (eps.clone(), x.clone())
    (e1, x1), (eT, xT) = kept[1], kept[T]
    w = m.W_out[:, 0]
    z1, zT = (x1 * w[:, None]).sum(-1), (xT * w[:, None]).sum(-1)
    LT = 2 * (zT - y)[..., None] * f[:, None, :]                  # [P, n, H]: L_{i,T}
    L1 = 2 * z1[..., None] * f[:, None, :]
    upd = ((LT[..., None] * eT).sum(1) + (L1[..., None] * e1).sum(1)) / n
    return e1, eT, upd


@pytest.mark.parametrize("act", ACTS)
def test_traces_and_update_equal_the_direct_computation(act):
    m, u, x0, y = tiny(act)
    f = torch.randn(2, 4, dtype=torch.float64)
    e1, eT, upd = direct(m, u, x0, y, f)
    tr = traces(m, u, x0)
    for i in range(4):     # the trace is the same for every postsynaptic unit
        torch.testing.assert_close(tr.eps_first, e1[:, :, i, :], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(tr.eps_last, eT[:, :, i, :], rtol=1e-12, atol=1e-14)
    _, g_rec, _ = loss_and_updates(m, u, x0, y, f)
    torch.testing.assert_close(g_rec, upd, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act", ACTS)
def test_with_zero_recurrent_weights_eprop_is_the_exact_gradient(act):
    m, u, x0, y = tiny(act, w_rec_scale=0.0)
    loss, g_rec, g_out = loss_and_updates(m, u, x0, y, m.W_out[:, 0])
    ref_loss, ref_rec, ref_out = autograd_loss_and_grads(m, u, x0, y)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_rec, ref_rec, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_out, ref_out, rtol=1e-10, atol=1e-12)


def test_with_recurrent_weights_eprop_is_not_the_gradient_but_the_readout_is():
    """The dropped term matters once W_rec ≠ 0 (so the test above can tell e-prop
    from BPTT); W_out's gradient stays exact."""
    m, u, x0, y = tiny("one_plus_tanh", w_rec_scale=1.0)
    _, g_rec, g_out = loss_and_updates(m, u, x0, y, m.W_out[:, 0])
    _, ref_rec, ref_out = autograd_loss_and_grads(m, u, x0, y)
    assert (g_rec - ref_rec).abs().max() > 1e-3 * ref_rec.abs().max()
    torch.testing.assert_close(g_out, ref_out, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls,cfg_cls", [(EpropTrainer, EpropConfig), (RFLOTrainer, RFLOConfig)])
def test_loss_falls_on_a_tiny_task(cls, cfg_cls):
    task = rdm(0.5, steps=60)
    tr = cls(cfg_cls(batch=64, lr=3e-3), task, [11], "cpu", protocol=Protocol(hidden=16))
    losses = [float(tr.step(torch.arange(1))) for _ in range(100)]
    assert sum(losses[-10:]) < 0.85 * sum(losses[:10])


@pytest.mark.parametrize("cls,cfg_cls", [(EpropTrainer, EpropConfig), (RFLOTrainer, RFLOConfig)])
def test_same_seed_same_network_and_a_population_member_equals_it_alone(cls, cfg_cls):
    task = ncdi(2, 0.5, steps=40)
    cfg = cfg_cls(batch=8)
    pop = cls(cfg, task, [3, 4], "cpu", protocol=SMALL)
    alone = cls(cfg, task, [4], "cpu", protocol=SMALL)
    again = cls(cfg, task, [4], "cpu", protocol=SMALL)
    for _ in range(3):
        pop.step(torch.arange(2))
        alone.step(torch.tensor([0]))
        again.step(torch.tensor([0]))
    for k in ("W_rec", "W_out"):
        assert torch.equal(getattr(alone.model, k), getattr(again.model, k))
        torch.testing.assert_close(getattr(pop.model, k)[1], getattr(alone.model, k)[0])
    # a stopped member does not move while the other trains
    frozen = pop.model.W_rec[0].clone()
    pop.step(torch.tensor([1]))
    alone.step(torch.tensor([0]))
    assert torch.equal(pop.model.W_rec[0], frozen)
    torch.testing.assert_close(pop.model.W_rec[1], alone.model.W_rec[0])


def test_eprop_starts_from_the_bptt_network_of_its_seed():
    """Same initial weights and training batches as BPTT: only the gradient differs."""
    from rnn.rules.bptt import BPTTConfig, BPTTTrainer
    task = rdm(0.5, steps=30)
    a = BPTTTrainer(BPTTConfig(batch=4), task, [9], "cpu", protocol=SMALL)
    b = EpropTrainer(EpropConfig(batch=4), task, [9], "cpu", protocol=SMALL)
    for k in ("W_in", "W_rec", "W_out", "b"):
        assert torch.equal(getattr(a.model, k), getattr(b.model, k))
    assert a.data.seeds == b.data.seeds


def test_readout_can_be_fixed():
    task = rdm(0.5, steps=30)
    tr = EpropTrainer(EpropConfig(batch=4, train_readout=False), task, [2], "cpu",
                      protocol=SMALL)
    w = tr.model.W_out.clone()
    tr.step(torch.arange(1))
    assert torch.equal(tr.model.W_out, w) and tr.trainable == ("W_rec",)


@pytest.mark.parametrize("name,rule", [("eprop_a", "eprop"), ("rflo_a", "rflo")])
def test_train_models_trains_and_saves_each_new_rule(models_tmp, name, rule):
    r = run_script("train_models.py", name, "-v", "0.5", "--N", "2", "--hidden", "8",
                   "--max-steps", "3", "--seed", "4", "--quiet", models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    meta = json.loads((models_tmp / f"{name}.json").read_text())
    assert meta["rule"] == rule and meta["steps"] == 3
    assert meta["trainer"]["train_readout"] is True and meta["trainer"]["lr"] == 5e-4
    m = load_model(name, models_tmp)
    assert m.model.activation == "one_plus_tanh" and m.model.readout == "linear"
    assert ("feedback" in m.history) == (rule == "rflo")
