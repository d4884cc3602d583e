import numpy as np
import pytest
import torch

from rnn.rng import Streams
from tasks import ncdi, rdm


def test_rdm_shapes_targets_and_noise():
    task = rdm(noise=0.5, steps=400)
    tr = task.sample(300, Streams([0, 1], stream=2))
    assert tr.inputs.shape == (400, 2, 300, 1)
    assert tr.targets.shape == (2, 300)
    assert set(tr.targets.unique().tolist()) == {-1.0, 1.0}
    assert float(tr.strength.min()) >= 0 and float(tr.strength.max()) <= task.mean
    mean = tr.inputs.mean(0)[..., 0]
    # the trial mean is s·μ; noise std is -v
    assert torch.allclose(mean, tr.targets * tr.strength, atol=5 * 0.5 / 400 ** 0.5)
    resid = tr.inputs[..., 0] - (tr.targets * tr.strength)[None]
    assert abs(float(resid.std()) - 0.5) < 0.01


def test_ncdi_context_and_cued_channel():
    N = 3
    task = ncdi(N, noise=0.1, steps=200)
    tr = task.sample(500, Streams([5], stream=2))
    assert tr.inputs.shape == (200, 1, 500, 2 * N)
    cue = tr.inputs[:, 0, :, N:]
    # cue: one-hot, constant over the trial, matching the context
    assert torch.all(cue.sum(-1) == 1)
    assert torch.equal(cue[0].argmax(-1), tr.context[0])
    assert torch.all(cue == cue[:1])
    # target = sign of the cued channel's mean (before noise)
    ch_mean = tr.inputs[:, 0, :, :N].mean(0)                     # [n, N]
    cued = ch_mean.gather(1, tr.context[0][:, None])[:, 0]
    strong = tr.strength[0] > 0.02
    assert torch.all(torch.sign(cued[strong]) == tr.targets[0][strong])
    # each sensory channel has its own sign
    assert (tr.signs[0, :, 0] != tr.signs[0, :, 1]).float().mean() > 0.3
    # contexts are all used
    assert set(tr.context[0].tolist()) == set(range(N))


def test_same_seed_same_batch_and_noise_free():
    task = ncdi(2, noise=0.5, steps=50)
    a = task.sample(10, Streams([3], stream=2))
    b = task.sample(10, Streams([3], stream=2))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    c = task.sample(10, Streams([4], stream=2))
    assert not torch.equal(a.inputs, c.inputs)
    clean = task.build(a.strength, a.signs, a.context, None)
    assert torch.all(clean.inputs == clean.inputs[:1])


def test_validation_set_cycles_strengths():
    task = ncdi(2, 0.5, steps=20)
    v = task.validation_set(Streams([0], stream=3))
    levels = np.linspace(0, 0.1875, 20)
    assert v.targets.shape == (1, 2000)
    np.testing.assert_allclose(v.strength[0, :40].numpy(), np.tile(levels, 2), atol=1e-6)


def test_static_input_sets():
    r = rdm()
    assert len(r.static_inputs("large").values) == 5
    assert len(r.static_inputs("small").values) == 21
    sp = r.static_inputs("sparse")
    assert len(sp.values) == 11
    np.testing.assert_allclose(sorted(sp.values[:, 0]), 0.03 * np.linspace(-1, 1, 11), atol=1e-12)
    c = ncdi(2)
    small = c.static_inputs("small")
    assert small.values.shape == (42, 4)
    # context k: cue k on, cued channel k carries the value, the other channel 0
    row = small.values[small.context == 1][0]
    assert row[3] == 1 and row[2] == 0 and row[0] == 0
    with pytest.raises(ValueError):
        c.static_inputs("huge")
    sv = c.svcca_inputs()
    assert sv.values.shape == (20, 4)
    np.testing.assert_allclose(sv.evidence[:10], np.linspace(-c.mean, c.mean, 10))


def test_task_roundtrip_dict():
    for t in (rdm(0.1, 0.2), ncdi(4, 1.0)):
        assert type(t).from_dict(t.to_dict()) == t
