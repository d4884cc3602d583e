import torch

from rnn.rules.ga import GAConfig, GATrainer
from rnn.model import trial_loss
from rnn.rng import Streams
from rnn.training import ValidationSet, fit
from tasks import rdm


def tiny(seeds=(0,), pop=8, batch=64, task=None):
    task = task or rdm(0.1, steps=50)
    return GATrainer(GAConfig(population=pop, parents=3, mutation=0.05, batch=batch), task,
                     list(seeds), "cpu"), task


def test_best_loss_never_increases_on_a_fixed_batch():
    ga, task = tiny()
    tr = task.sample(64, Streams([7], 2))
    x0 = 0.3 * Streams([8], 2).normal(64, 50)
    runs = torch.tensor([0])
    best = [float(ga.generation(runs, tr.inputs, x0, tr.targets)) for _ in range(15)]
    assert all(b2 <= b1 + 1e-6 for b1, b2 in zip(best, best[1:]))
    assert best[-1] < best[0]


def test_population_batched_equals_each_member_alone():
    ga, task = tiny(pop=6)
    tr = task.sample(16, Streams([3], 2))
    x0 = 0.3 * Streams([4], 2).normal(16, 50)
    together = ga.evaluate(torch.tensor([0]), tr.inputs, x0, tr.targets)[0]
    for j in range(6):
        net = ga.pop.select(j)
        alone = trial_loss(net, net.simulate(tr.inputs, x0), tr.targets)[0]
        assert torch.allclose(alone, together[j], atol=1e-6)


def test_elite_is_kept_unchanged_and_children_mutate():
    ga, task = tiny(pop=6)
    tr = task.sample(16, Streams([3], 2))
    x0 = 0.3 * Streams([4], 2).normal(16, 50)
    before = ga.pop.W_rec.clone()
    loss = ga.evaluate(torch.tensor([0]), tr.inputs, x0, tr.targets)[0]
    ga.generation(torch.tensor([0]), tr.inputs, x0, tr.targets)
    best = int(loss.argmin())
    assert torch.equal(ga.pop.W_rec[0], before[best])
    assert torch.equal(ga.model.W_rec[0], before[best])
    # every child differs from every parent by a mutation
    for j in range(1, 6):
        assert min(float((ga.pop.W_rec[j] - before[k]).abs().max()) for k in range(6)) > 0


def test_run_inside_population_of_runs_matches_alone():
    many, _ = tiny(seeds=(1, 2, 3))
    alone, _ = tiny(seeds=(2,))
    for _ in range(3):
        many.step(torch.arange(3))
        alone.step(torch.tensor([0]))
    assert torch.allclose(many.pop.W_rec[8:16], alone.pop.W_rec, atol=1e-6)
    assert many.best_loss[1] == alone.best_loss[0]


def test_tiny_ga_improves_validation_accuracy():
    ga, task = tiny(seeds=(4,), pop=16, batch=128, task=rdm(0.05, steps=40))
    val = ValidationSet.make(task, [4], 50, "cpu")
    before = float(val.accuracy(ga.pop.select(0), torch.tensor([0]))[0])
    res = fit(ga, val, max_steps=40, quiet=True)
    assert res.final_acc[0] > before + 0.1
