"""The CUDA path (marked ``cuda``; skipped where no GPU is visible, as in CI).

Every rule trains on the GPU and agrees with the CPU for its first updates
(the random streams are the same on every device by design); the fixed-point
solver and SVCCA run on a GPU-trained network."""
import numpy as np
import pytest
import torch

from rnn.protocol import Protocol
from rnn.rules import RULES, get
from tasks import ncdi

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
SMALL = Protocol(hidden=16)


def trainer(rule, device, seeds=(3, 4)):
    task = ncdi(2, 0.5)
    cfg = get(rule).make_config(task, 5)
    return get(rule).make(cfg, task, list(seeds), device, protocol=SMALL)


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_trains_on_cuda_like_on_the_cpu(rule):
    cpu, gpu = trainer(rule, "cpu"), trainer(rule, "cuda")
    for k in range(2):
        lc = cpu.step(torch.arange(2))
        lg = gpu.step(torch.arange(2, device="cuda"))
        assert torch.isfinite(lg).all()
        # float32 on different hardware: agreement to a tolerance, first updates only
        assert torch.allclose(lc.double(), lg.double().cpu(), rtol=2e-3, atol=1e-4), (rule, k)
    if rule != "ga":      # GA: a tie in the ranking may legitimately differ
        for name in ("W_rec", "W_in", "W_out"):
            a, b = getattr(cpu.model, name), getattr(gpu.model, name).cpu()
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), (rule, name)


def test_fixed_points_and_svcca_of_a_cuda_trained_network():
    from rnn.analysis.fixed_points import SolverConfig, find_fixed_points
    from rnn.analysis.similarity import pair_distances, represent
    from rnn.analysis.svcca import SVCCAOptions
    tr = trainer("bptt", "cuda", seeds=(5,))
    for _ in range(3):
        tr.step(torch.arange(1, device="cuda"))
    model = tr.model                       # on the GPU: the analyses take it as it is
    assert model.W_rec.is_cuda
    task = ncdi(2, 0.5)
    st = task.static_inputs("large")
    fp = find_fixed_points(model, st.values, st.evidence, st.context,
                           SolverConfig(n_box=10, n_traj=10))
    assert len(fp.xstar) > 0 and np.all(fp.residual < 1e-6)
    cpu = find_fixed_points(model.to(device="cpu"), st.values, st.evidence, st.context,
                            SolverConfig(n_box=10, n_traj=10))
    assert np.allclose(np.sort(fp.xstar, axis=0), np.sort(cpu.xstar, axis=0), atol=1e-6)
    opts = SVCCAOptions()
    a = represent(opts.activity(model, task, "k"), opts, "kept")
    assert pair_distances([a, a], ["svcca"])["svcca"][0, 1] < 1e-9
