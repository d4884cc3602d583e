import pytest
import torch

from helpers import autograd_loss_and_grads
from rnn.rules.bptt import BatchedAdam, BPTTConfig, BPTTTrainer, loss_and_grad
from rnn.model import RateRNN
from rnn.rng import Streams
from rnn.training import ValidationSet, fit
from tasks import ncdi, rdm


@pytest.mark.parametrize("act", ["one_plus_tanh", "tanh", "relu"])
def test_hand_written_backward_matches_autograd(act):
    task = ncdi(2, 0.5, steps=80)
    rng = Streams([1, 2], 2)
    tr = task.sample(6, rng)
    m = RateRNN.init(Streams([1, 2], 1), task.n_inputs, activation=act).to(dtype=torch.float64)
    m = m.replace(W_rec=m.W_rec * (20 if act != "relu" else 5))
    x0 = 0.3 * rng.normal(6, 50).double()
    inputs, targets = tr.inputs.double(), tr.targets.double()
    l1, g1 = loss_and_grad(m, inputs, x0, targets)
    l2, g2, _ = autograd_loss_and_grads(m, inputs, x0, targets)
    assert torch.allclose(l1, l2, rtol=1e-10)
    assert torch.allclose(g1, g2, atol=1e-10 * float(g2.abs().max()))


def test_batched_adam_matches_torch_adam():
    cfg = BPTTConfig(lr=1e-2)
    p_ref = torch.nn.Parameter(torch.randn(1, 5, 5, dtype=torch.float64))
    opt = torch.optim.Adam([p_ref], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    p = p_ref.detach().clone()
    adam = BatchedAdam(p, cfg)
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        g = torch.randn(1, 5, 5, generator=gen, dtype=torch.float64)
        p_ref.grad = g.clone()
        opt.step()
        p = adam.update(p, g, torch.tensor([0]))
    assert torch.allclose(p, p_ref.detach(), atol=1e-12)


def tiny(task=None, seeds=(0,), batch=64, lr=5e-3):
    task = task or rdm(0.3, steps=60)
    return BPTTTrainer(BPTTConfig(batch=batch, lr=lr), task, list(seeds), "cpu"), task


def test_tiny_bptt_run_lowers_its_loss():
    tr, task = tiny()
    fixed = task.sample(256, Streams([99], 2))
    x0 = 0.3 * Streams([98], 2).normal(256, 50)
    before = loss_and_grad(tr.model, fixed.inputs, x0, fixed.targets)[0].item()
    for _ in range(80):
        tr.step(torch.tensor([0]))
    after = loss_and_grad(tr.model, fixed.inputs, x0, fixed.targets)[0].item()
    assert after < 0.6 * before


def test_network_in_population_matches_same_seed_alone():
    pop, _ = tiny(seeds=(10, 11, 12, 13))
    alone, _ = tiny(seeds=(12,))
    for _ in range(3):
        pop.step(torch.arange(4))
        alone.step(torch.tensor([0]))
    assert torch.allclose(pop.model.W_rec[2], alone.model.W_rec[0], atol=1e-6)


def test_stopped_network_does_not_change_the_others():
    a, _ = tiny(seeds=(0, 1, 2))
    b, _ = tiny(seeds=(0, 1, 2))
    for _ in range(2):
        a.step(torch.arange(3))
        b.step(torch.arange(3))
    frozen = b.model.W_rec[1].clone()
    for _ in range(2):
        a.step(torch.arange(3))
        b.step(torch.tensor([0, 2]))
    assert torch.equal(b.model.W_rec[1], frozen)
    assert torch.allclose(a.model.W_rec[0], b.model.W_rec[0], atol=1e-7)
    assert torch.allclose(a.model.W_rec[2], b.model.W_rec[2], atol=1e-7)


def test_same_seed_same_model_and_fit_stops_by_rule():
    task = rdm(0.05, steps=40)
    runs = []
    for _ in range(2):
        tr = BPTTTrainer(BPTTConfig(batch=64, lr=2e-2), task, [5], "cpu")
        val = ValidationSet.make(task, [5], 50, "cpu")
        res = fit(tr, val, max_steps=150, quiet=True)
        runs.append((tr.model.W_rec.clone(), res))
    assert torch.equal(runs[0][0], runs[1][0])
    res = runs[0][1]
    assert res.status == ["converged"]
    vs, va = res.history.validation(0)
    stop = res.history.stop_step[0]
    # the last ten updates were all validated at >= 0.9
    assert vs[-10:].tolist() == list(range(stop - 9, stop + 1))
    assert float(va[-10:].min()) >= 0.9
    assert res.final_acc[0] == pytest.approx(float(va[-1]))


def test_stop_accuracy_is_kept_while_the_population_trains_on():
    task = rdm(0.05, steps=40)
    tr = BPTTTrainer(BPTTConfig(batch=64, lr=2e-2), task, [5, 6], "cpu")
    # network 1 can never stop: its validation targets are flipped
    val = ValidationSet.make(task, [5, 6], 50, "cpu")
    val.trials = val.trials.__class__(val.trials.inputs, torch.stack(
        [val.trials.targets[0], -val.trials.targets[1]]), val.trials.strength,
        val.trials.signs, val.trials.context)
    seen = []
    res = fit(tr, val, max_steps=100, quiet=True, checkpoint=seen.append, checkpoint_every=20)
    assert res.status == ["converged", "budget"]
    assert res.history.stop_step[0] < 80
    # every checkpoint after the stop reports network 0's accuracy at its stop
    later = [r for r in seen if r.steps_run[1] > res.history.stop_step[0]]
    assert later and all(r.final_acc[0] == res.final_acc[0] >= 0.9 for r in later)
