"""RFLO's own behaviour: its fixed random feedback vector (rnn/rules/rflo.py)."""
import torch

from rnn.protocol import Protocol
from rnn.rng import Streams
from rnn.rules.rflo import RFLOConfig, RFLOTrainer
from tasks import rdm

SMALL = Protocol(hidden=8)


def test_rflo_feedback_is_random_fixed_and_carries_every_update():
    task = rdm(0.5, steps=60)
    cfg = RFLOConfig(batch=16)
    tr = RFLOTrainer(cfg, task, [5, 6], "cpu", protocol=SMALL)
    B = tr.B.clone()
    w = tr.model.W_out[:, 0].clone()
    cos = (B * w).sum(1) / (B.norm(dim=1) * w.norm(dim=1))
    assert cos.abs().max() < 0.99            # not the readout
    assert not torch.equal(B[0], B[1])       # its own per network
    for _ in range(4):
        tr.step(torch.arange(2))
    assert torch.equal(tr.B, B)              # fixed across updates
    # the W_rec gradient estimate is B ⊗ v: every column is a multiple of B
    trials = task.sample(16, Streams([5, 6], 2))
    x0 = 0.3 * Streams([5, 6], 2).normal(16, 8)
    _, grads = tr.gradients(tr.model, torch.arange(2), trials.inputs, x0, trials.targets)
    g = grads["W_rec"].double()
    for p in range(2):
        s = torch.linalg.svdvals(g[p])
        assert s[1] < 1e-5 * s[0]
        u = torch.linalg.svd(g[p]).U[:, 0]
        assert abs(float(u @ B[p].double() / B[p].double().norm())) > 1 - 1e-6
    # and it is what the record saves
    torch.testing.assert_close(tr.extra_history(1)["feedback"], B[1])


def test_the_feedback_stream_is_independent_of_the_weights():
    """B is the weight stream's next draw: not a copy of any initial weight."""
    tr = RFLOTrainer(RFLOConfig(batch=4), rdm(0.5, steps=10), [1], "cpu", protocol=SMALL)
    fresh = Streams([1], 1)
    drawn = [fresh.normal(8, 1), fresh.normal(8, 8), fresh.normal(1, 8), fresh.normal(8)]
    torch.testing.assert_close(tr.B, 0.1 * drawn[3])
