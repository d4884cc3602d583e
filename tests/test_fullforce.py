import torch

from rnn.rules.fullforce import FFConfig, FFTrainer
from rnn.rng import Streams
from rnn.training import ValidationSet, fit
from tasks import ncdi, rdm


def output_errors(ff, trials, x0, update_from):
    """Squared error of W_out·r against the RLS output target at the update steps."""
    m = ff.model
    sim = m.simulate(trials.inputs, x0, keep="all")
    xs = torch.cat([x0[None], sim.states[:-1]])               # states x(0..T-1)
    pre = (m.phi(xs) * m.W_out[:, 0][None, :, None, :]).sum(-1)[:, 0, 0]
    y = float(trials.targets[0, 0])
    f = torch.full_like(pre, y)
    f[0] = 0.0
    steps = [0] + list(range(update_from, pre.shape[0]))
    return float(((pre - f)[steps] ** 2).mean())


def test_rls_trial_reduces_error_on_the_trial_it_was_fitted_to():
    task = rdm(0.1, steps=120)
    ff = FFTrainer(FFConfig(alpha=1.0, update_from=40), task, [0], "cpu")
    tr = task.sample(1, Streams([1], 2))
    x0 = 0.3 * Streams([2], 2).normal(1, 50)
    before = output_errors(ff, tr, x0, 40)
    assert before > 0.9                                   # W_out = 0: error = target²
    ff.train_trial(torch.tensor([0]), tr.inputs, x0, tr.targets)
    after = output_errors(ff, tr, x0, 40)
    assert after < 0.1 * before
    assert torch.count_nonzero(ff.model.W_rec) > 0


def test_tiny_ff_run_improves_validation_accuracy():
    task = rdm(0.05, steps=150)
    ff = FFTrainer(FFConfig(alpha=1.0, update_from=40), task, [3], "cpu")
    val = ValidationSet.make(task, [3], 50, "cpu")
    start = float(val.accuracy(ff.model, torch.tensor([0]))[0])   # W = 0: output 0
    res = fit(ff, val, max_steps=80, quiet=True)
    assert start == 0.0                 # output exactly 0: no trial counts as correct
    assert res.final_acc[0] > 0.8


def test_restart_after_attempt_budget_resets_learner():
    task = ncdi(2, 0.5, steps=250)
    ff = FFTrainer(FFConfig(trials_per_attempt=2), task, [0, 1], "cpu")
    for _ in range(2):
        ff.step(torch.arange(2))
    assert torch.count_nonzero(ff.model.W_rec) > 0
    ff.step(torch.tensor([1]))            # network 1 hits its attempt budget
    assert ff.attempts == [1, 2]
    assert ff.pop_restarts() == [1]
    assert ff.trials_in_attempt[1] == 1
