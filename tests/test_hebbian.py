import math

import torch

from rnn.rules.hebbian import BIAS_UNITS, BIAS_VALUES, HebbConfig, HebbTrainer
from rnn.protocol import X0_SCALE
from rnn.rng import PERTURB, Streams
from tasks import ncdi, rdm

TINY = HebbConfig(batch=64, eval_steps=30, warmup=2)


def fixed_error(tr, task, n=256):
    """Mean |z - target| over the last eval steps, without perturbations."""
    rng = Streams([123], 2)
    trials = task.sample(n, rng)
    x0 = X0_SCALE * rng.normal(n, 50)
    sim = tr.model.simulate(trials.inputs, x0, keep="all")
    z = torch.tanh(sim.states[-tr.cfg.eval_steps:, 0, :, 0])
    return float((z - trials.targets[0]).abs().mean())


def test_tiny_network_error_falls_over_training():
    task = rdm(0.1, steps=200)
    tr = HebbTrainer(HebbConfig(batch=64, eval_steps=30, warmup=2, lr=0.2, max_dw=0.005), task,
                     [0], "cpu")
    before = fixed_error(tr, task)
    for _ in range(40):
        tr.step(torch.tensor([0]))
    after = fixed_error(tr, task)
    assert after < 0.8 * before


def test_clamped_units_stay_clamped_in_every_step():
    task = ncdi(2, 0.5, steps=60)
    tr = HebbTrainer(TINY, task, [0], "cpu")
    rng = Streams([1], 2)
    trials = task.sample(8, rng)
    x0 = X0_SCALE * rng.normal(8, 50)
    _, dX3, R3 = tr.run_batch(tr.model, trials.inputs, x0, trials.targets, Streams([0], PERTURB))
    for u, v in zip(BIAS_UNITS, BIAS_VALUES):
        assert torch.allclose(R3[..., u], torch.full_like(R3[..., u], math.tanh(v) ** 3))
        assert torch.all(dX3[..., u] == 0)
    sim = tr.model.simulate(trials.inputs, x0, keep="all")
    assert torch.all(sim.states[..., list(BIAS_UNITS)] == torch.tensor(BIAS_VALUES))
    assert tr.model.clamp_idx == BIAS_UNITS and tr.model.readout == "unit0"


def test_same_seed_same_weights_and_only_w_rec_learns():
    task = rdm(0.5, steps=60)
    a = HebbTrainer(TINY, task, [4], "cpu")
    b = HebbTrainer(TINY, task, [4], "cpu")
    W_in = a.model.W_in.clone()
    W0 = a.model.W_rec.clone()
    for _ in range(4):
        a.step(torch.tensor([0]))
        b.step(torch.tensor([0]))
    assert torch.equal(a.model.W_rec, b.model.W_rec)
    assert not torch.equal(a.model.W_rec, W0)
    assert torch.equal(a.model.W_in, W_in)
    assert float((a.model.W_rec - W0).abs().max()) <= 2 * TINY.max_dw + 1e-7


def test_eligibility_is_the_sum_of_cubed_products():
    # the batched matrix product equals e_ij = sum_t (r_j(t-1) dx_i(t))^3 written out
    task = rdm(0.5, steps=30)
    tr = HebbTrainer(TINY, task, [0], "cpu")
    rng = Streams([2], 2)
    trials = task.sample(3, rng)
    x0 = X0_SCALE * rng.normal(3, 50)
    _, dX3, R3 = tr.run_batch(tr.model, trials.inputs, x0, trials.targets, Streams([5], PERTURB))
    dx = dX3.sign() * dX3.abs() ** (1 / 3)
    r = R3.sign() * R3.abs() ** (1 / 3)
    e_literal = ((r[0, :, 1, None, :] * dx[0, :, 1, :, None]) ** 3).sum(0)     # trial 1
    e_fast = dX3[0, :, 1].T @ R3[0, :, 1]
    assert torch.allclose(e_literal, e_fast, rtol=1e-3, atol=1e-6)


def _dense_run_batch(tr: HebbTrainer, model, inputs, x0, targets, pert_rng: Streams):
    """The batch as it ran before the kicks were added sparsely and the error
    scored after the sweep (the committed Hebbian networks were trained by it):
    a dense perturbation tensor, a list-indexed clamp, the error step by step."""
    cfg, dt = tr.cfg, model.dt
    T, _, n, _ = inputs.shape
    P, H = model.n_networks, model.hidden
    cidx, cval = list(model.clamp_idx), torch.tensor(model.clamp_val)
    u = pert_rng.uniform(T, n, H)
    p = cfg.perturb_prob
    pert = torch.where(u < p, (u * (2.0 / p) - 1.0) * cfg.perturb_amp, 0.0)
    pert[:, :4] = 0.0
    x = x0.clone()
    x[..., cidx] = cval
    r = model.phi(x)
    xbar = x.clone()
    drive = torch.matmul(inputs, model.W_in.transpose(1, 2)) + model.b[:, None, :]
    drive.add_(pert.transpose(0, 1))
    dX3, R3 = torch.empty(P, T, n, H), torch.empty(P, T, n, H)
    err = torch.zeros(P, n)
    step = torch.empty(P, n, H)
    for t in range(T):
        torch.pow(r, 3, out=R3[:, t])
        torch.baddbmm(drive[t], r, model.W_rec.transpose(1, 2), out=step)
        x.mul_(1.0 - dt).add_(step, alpha=dt)
        x[..., cidx] = cval
        r = model.phi(x)
        torch.sub(x, xbar, out=dX3[:, t])
        dX3[:, t].pow_(3)
        xbar.mul_(cfg.trace).add_(x, alpha=1.0 - cfg.trace)
        if t >= T - cfg.eval_steps:
            err += (torch.tanh(x[..., 0]) - targets).abs()
    dX3[:, :3] = 0.0
    return err / cfg.eval_steps, dX3, R3


def test_the_sparse_kicks_batch_is_bit_for_bit_the_dense_one():
    for task, seeds in ((ncdi(2, 0.5, steps=300), [1, 2]), (rdm(0.5, steps=150), [3])):
        tr = HebbTrainer(HebbConfig.for_task(task), task, seeds, "cpu")
        idx = list(range(len(seeds)))
        trials, x0 = tr.draw_batch(idx, 40, tr.model.hidden)
        got = tr.run_batch(tr.model, trials.inputs, x0, trials.targets, Streams(seeds, PERTURB))
        want = _dense_run_batch(tr, tr.model, trials.inputs, x0, trials.targets,
                                Streams(seeds, PERTURB))
        for g, w in zip(got, want):
            assert torch.equal(g, w)
