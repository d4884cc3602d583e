"""rnn/arch.py: the vanilla RNN, GRU and LSTM beside the rate network — their
steps against PyTorch's own modules, training by BPTT (autograd) and the GA,
their files, their fixed points, and a PyTorch network imported."""
import json

import numpy as np
import pytest
import torch

from rnn.analysis.fixed_points import FixedPoints, SolverConfig, find_fixed_points
from rnn.arch import PARAMS, CellRNN
from rnn.rng import Streams
from tests.helpers import run_script

KINDS = {"vanilla": "RNN", "gru": "GRU", "lstm": "LSTM"}


def _pair(arch, H=5, I=3, seed=1):
    """A stack of two networks and a PyTorch module holding network 1's weights."""
    m = CellRNN.init(arch, Streams([seed, seed + 1], 0), I, hidden=H)
    gen = torch.Generator().manual_seed(seed)
    m = m.replace(bias_ih=torch.randn(m.bias_ih.shape, generator=gen),
                  bias_hh=torch.randn(m.bias_hh.shape, generator=gen))
    mod = getattr(torch.nn, KINDS[arch])(I, H)
    mod.load_state_dict({"weight_ih_l0": m.weight_ih[1], "weight_hh_l0": m.weight_hh[1],
                         "bias_ih_l0": m.bias_ih[1], "bias_hh_l0": m.bias_hh[1]})
    return m, mod


@pytest.mark.parametrize("arch", list(KINDS))
def test_every_architecture_steps_as_pytorch_s_module_and_its_step_map_agrees(arch):
    from rnn.analysis.step_fixed_points import torch_cell_step
    m, mod = _pair(arch)
    u = torch.randn(7, 4, 3, generator=torch.Generator().manual_seed(2))
    x0 = 0.3 * torch.randn(2, 4, m.hidden, generator=torch.Generator().manual_seed(3))
    sim = m.simulate(u, x0, keep="all")
    H = m.units
    with torch.no_grad():
        if arch == "lstm":
            out, (_, c) = mod(u, (x0[1:2, :, :H].contiguous(), x0[1:2, :, H:].contiguous()))
            assert torch.allclose(sim.x_last[1, :, H:], c[0], atol=1e-6)
        else:
            out, _ = mod(u, x0[1:2].contiguous())
    assert torch.allclose(sim.states[:, 1, :, :H], out, atol=1e-6)
    assert torch.equal(sim.states[0], sim.x_first) and torch.equal(sim.states[-1], sim.x_last)
    # the step taken under autograd (BPTT's, with fresh tensors where a backward
    # pass reads them) gives the same states as the one without
    assert torch.allclose(m.unroll(u, x0, keep="all").states.detach(), sim.states, atol=1e-6)
    # network 0 is unaffected by network 1 (a stack is independent networks)
    alone = m.select(0).simulate(u, x0[:1]).x_last
    assert torch.allclose(alone[0], sim.x_last[0], atol=1e-6)
    step, size = torch_cell_step(mod)
    assert size == m.hidden
    h = torch.randn(6, size, dtype=torch.float64)
    uu = torch.randn(6, 3, dtype=torch.float64)
    assert torch.allclose(m.step_map(1)(h, uu), step(h, uu), atol=1e-12)


@pytest.mark.parametrize("arch,nonlin", [("vanilla", "tanh"), ("vanilla", "relu"),
                                          ("gru", "tanh"), ("lstm", "tanh")])
@pytest.mark.filterwarnings("ignore:There is a performance drop")   # vmap of addcmul_
def test_the_closed_form_jacobian_of_each_step_equals_autograd(arch, nonlin):
    from torch.func import jacrev, vmap

    from rnn.analysis.step_fixed_points import step_jacobian
    m, _ = _pair(arch)
    m = m.replace(nonlinearity=nonlin)
    gen = torch.Generator().manual_seed(4)
    # weights large enough that the gates saturate unevenly (every term matters)
    m = m.replace(weight_hh=2.0 * m.weight_hh)
    step = m.step_map(1)
    h = torch.randn(9, m.hidden, dtype=torch.float64, generator=gen)
    u = torch.randn(9, 3, dtype=torch.float64, generator=gen)
    auto = vmap(jacrev(lambda hh, uu: step(hh[None], uu[None])[0]))(h, u)
    closed = step.jacobian(h, u)
    assert closed.shape == (9, m.hidden, m.hidden)
    assert torch.allclose(closed, auto, atol=1e-12, rtol=0)
    assert torch.equal(step_jacobian(step, h, u), closed)      # the solver takes it
    assert auto.abs().max() > 0.1                               # not a trivial map


def test_the_readout_is_linear_in_h_and_a_wrong_shape_is_refused():
    m, _ = _pair("lstm")
    x = torch.randn(2, 4, m.hidden)
    want = (x[..., :m.units] * m.W_out[:, 0, None, :]).sum(-1) + m.b_out
    assert torch.allclose(m.output(x), want)
    # every output of a 3-output readout, over a window of steps [c, P, n, S]
    m3 = CellRNN.init("lstm", Streams([1, 2], 0), 3, hidden=m.units, n_outputs=3)
    m3 = m3.replace(b_out=torch.randn(2, 3, generator=torch.Generator().manual_seed(4)))
    xs = torch.randn(5, 2, 4, m3.hidden)
    want3 = torch.stack([torch.stack([xs[t, p, :, :m3.units] @ m3.W_out[p].T + m3.b_out[p]
                                      for p in range(2)]) for t in range(5)])
    assert m3.outputs(xs).shape == (5, 2, 4, 3)
    assert torch.allclose(m3.outputs(xs), want3, atol=1e-6)
    assert torch.allclose(m3.outputs(xs[0]), want3[0], atol=1e-6)
    with pytest.raises(ValueError, match="shapes"):
        m.replace(W_out=torch.zeros(2, 1, m.units + 1))
    with pytest.raises(ValueError, match="nonlinearity"):
        m.replace(nonlinearity="relu")                # a vanilla RNN's choice only


def _tiny_trainer(rule, arch, seeds=(0, 1)):
    from rnn.protocol import CLEAN
    from rnn.rules import get
    from tasks import ncdi
    import dataclasses
    task = ncdi(2, 0.5, steps=30)
    cfg = dataclasses.replace(get(rule).make_config(task), batch=32)
    if rule == "ga":
        cfg = dataclasses.replace(cfg, population=6, parents=2, mutation=0.05)
    proto = dataclasses.replace(CLEAN, hidden=6)
    return get(rule).make(cfg, task, list(seeds), "cpu", None, proto, arch), task


@pytest.mark.parametrize("arch", list(KINDS))
def test_bptt_by_autograd_matches_finite_differences_and_trains_every_weight(arch):
    from rnn.rules.bptt import cell_loss_and_grads
    tr, task = _tiny_trainer("bptt", arch)
    assert tr.trainable == PARAMS
    m = tr.model.to(dtype=torch.float64)
    trials = task.sample(8, Streams([0, 1], 2))
    x0 = torch.zeros(2, 8, m.hidden, dtype=torch.float64)
    loss, grads = cell_loss_and_grads(m, trials.inputs.double(), x0, trials.targets)
    # one weight of each tensor of network 1, by central differences
    for k in PARAMS:
        W = getattr(m, k)
        idx = (1,) + tuple(0 for _ in W.shape[1:])
        eps = 1e-6
        moved = []
        for s in (1, -1):
            Wm = W.clone()
            Wm[idx] += s * eps
            moved.append(cell_loss_and_grads(m.replace(**{k: Wm}), trials.inputs.double(),
                                                 x0, trials.targets)[0][1])
        fd = (moved[0] - moved[1]) / (2 * eps)
        assert abs(float(fd) - float(grads[k][idx])) < 1e-6 * max(1.0, abs(float(fd))), k
    before = {k: v.clone() for k, v in tr.model.tensors().items()}
    tr.step(torch.tensor([0, 1]))
    assert all(not torch.equal(before[k], getattr(tr.model, k)) for k in PARAMS)


@pytest.mark.parametrize("arch", ["gru", "lstm"])
def test_the_ga_mutates_every_weight_of_a_cell_and_keeps_its_elite(arch):
    tr, task = _tiny_trainer("ga", arch, seeds=(0,))
    before = tr.pop.select(list(range(tr.G)))
    best = tr.step(torch.tensor([0]))
    assert torch.isfinite(best).all()
    old = [j for j in range(tr.G) if torch.equal(before.weight_hh[j], tr.pop.weight_hh[0])]
    assert len(old) == 1                              # slot 0: the elite, one old member ...
    for k in PARAMS:
        new, was = getattr(tr.pop, k).flatten(1), getattr(before, k).flatten(1)
        assert torch.equal(new[0], was[old[0]]), k    # ... unchanged in every weight
        # every child differs from every old member in this tensor: all weights mutate
        assert (torch.cdist(new[1:], was) > 0).all(), k
    # the candidate is the elite
    assert torch.equal(tr.model.weight_hh[0], tr.pop.weight_hh[0])


def test_a_rule_that_cannot_train_an_architecture_says_so_in_one_line(tmp_path):
    r = run_script("train_models.py", "heb_l", "--arch", "lstm", "-v", "0.5", "--N", "2",
                   models_dir=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "trains only the rate network" in r.stderr
    assert "bptt or ga" in r.stderr
    r = run_script("train_models.py", "bptt_l", "--arch", "gru", "--relu", "--N", "2",
                   models_dir=tmp_path)
    assert r.returncode == 2 and "--relu" in r.stderr


def test_train_save_load_and_analyse_a_gru_end_to_end(tmp_path):
    """train_models.py gru_x --arch gru (no rule prefix: BPTT, said in a note), the
    same seed twice gives the same weights, the file loads to the same network,
    and analyze_dynamics runs on it."""
    args = ("gru_x", "--arch", "gru", "-v", "0.5", "--N", "2", "--hidden", "6",
            "--max-steps", "2", "--seed", "4", "--quiet")
    r = run_script("train_models.py", *args, models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "picks no learning rule" in r.stderr and "bptt" in r.stderr
    meta = json.loads((tmp_path / "gru_x.json").read_text())
    assert meta["rule"] == "bptt" and meta["network"]["arch"] == "gru"
    assert meta["network"]["hidden"] == 6 and meta["network"]["state_size"] == 6
    first = torch.load(tmp_path / "gru_x.pt", weights_only=True)["network"]
    r = run_script("train_models.py", *args, "--force", models_dir=tmp_path)
    again = torch.load(tmp_path / "gru_x.pt", weights_only=True)["network"]
    assert all(torch.equal(first[k], again[k]) for k in PARAMS)
    from rnn.io import load_model
    lm = load_model("gru_x", tmp_path)
    assert isinstance(lm.model, CellRNN) and lm.model.arch == "gru"
    assert all(torch.equal(getattr(lm.model, k)[0], first[k]) for k in PARAMS)
    r = run_script("analyze_dynamics.py", "gru_x", "sparse", "--no-psychometric",
                   models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "bptt gru network" in r.stdout and "fixed points" in r.stdout
    assert (tmp_path / "gru_x_fixed_points_sparse.npz").exists()


def test_a_damaged_cell_model_file_is_refused_in_one_line(tmp_path):
    from rnn.errors import UserError
    from rnn.io import load_model, save_model
    from rnn.run import identity, record
    from tasks import ncdi
    m, _ = _pair("gru", I=4)
    task = ncdi(2, 0.5)
    one = m.select(1)
    save_model("bptt_c", one, record("bptt_c", identity("bptt", task, one), "imported"), {},
               tmp_path)
    assert torch.equal(load_model("bptt_c", tmp_path).model.weight_hh, one.weight_hh)
    payload = torch.load(tmp_path / "bptt_c.pt", weights_only=True)
    payload["network"]["weight_hh"] = payload["network"]["weight_hh"][:-1]
    torch.save(payload, tmp_path / "bptt_c.pt")
    with pytest.raises(UserError, match="weight_hh"):
        load_model("bptt_c", tmp_path)


def _flip_flop_module(kind):
    from tests.test_step_fixed_points import _flip_flop
    return _flip_flop(kind)


@pytest.mark.parametrize("arch", list(KINDS))
def test_an_imported_pytorch_flip_flop_has_its_8_stable_points(arch, tmp_path):
    """import_model.py torch: a hand-built 3-bit flip-flop of each architecture,
    saved as a state dict with a readout, imported and solved by the tool's own
    fixed-point search (find_fixed_points on the imported network): the 8 stable
    corners, stability by |λ| < 1 of the step map; the cache reads back."""
    mod = _flip_flop_module(KINDS[arch]).float()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.fc = mod, torch.nn.Linear(3, 1)
    torch.save(Net().state_dict(), tmp_path / "ff.pt")
    # a flip-flop has 3 inputs: as a task of this tool it is read as ... none, so
    # check the importer's network directly and the CLI on a 4-input copy below
    from rnn.io.importers import import_torch
    net, read = import_torch(tmp_path / "ff.pt")
    assert net.arch == arch and read["readout"] == "fc.weight"
    g = np.array([-1.2, 1.2])
    corners = np.array([(a, b, c) for a in g for b in g for c in g])
    fp = find_fixed_points(net, np.zeros((1, 3)), cfg=SolverConfig(n_box=100, n_traj=100))
    assert fp.is_discrete and fp.residual.max() < 1e-8
    stable = fp.xstar[fp.is_stable][:, :3]
    assert len(stable) == 8 and {tuple(np.sign(x)) for x in stable} == \
        {tuple(c) for c in np.sign(corners)}
    assert (np.abs(fp.eigvals[fp.is_stable]) < 1).all()
    fp.save(tmp_path / "c.npz")
    back = FixedPoints.load(tmp_path / "c.npz")
    assert back.is_discrete and np.array_equal(back.xstar, fp.xstar)


def test_import_model_torch_writes_a_model_the_analyses_read(tmp_path):
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru, self.head = torch.nn.GRU(4, 7, batch_first=True), torch.nn.Linear(7, 2)
    torch.save({"model_state_dict": Net().state_dict(), "epoch": 3}, tmp_path / "mine.pt.bin")
    r = run_script("import_model.py", "torch", tmp_path / "mine.pt.bin", "--as", "bptt_mine",
                   "-v", "0.5", "--N", "2", models_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "bptt gru network" in r.stdout and "7 units" in r.stdout
    assert "2 outputs; the first is read as the decision" in r.stderr
    meta = json.loads((tmp_path / "bptt_mine.json").read_text())
    assert meta["status"] == "imported" and meta["source"]["readout"] == "head.weight"
    from rnn.io import load_model
    m = load_model("bptt_mine", tmp_path).model
    sd = Net().state_dict()           # the same seed is not re-drawn: compare to the file
    saved = torch.load(tmp_path / "mine.pt.bin", weights_only=True)["model_state_dict"]
    assert torch.equal(m.weight_hh[0], saved["gru.weight_hh_l0"])
    assert torch.equal(m.W_out[0], saved["head.weight"][:1]) and sd is not None
    # refused in one line: again without --force, a file that is not a state dict
    r = run_script("import_model.py", "torch", tmp_path / "mine.pt.bin", "--as", "bptt_mine",
                   "-v", "0.5", "--N", "2", models_dir=tmp_path)
    assert r.returncode == 2 and "already exists" in r.stderr
    (tmp_path / "junk.pt").write_bytes(b"not a file")
    r = run_script("import_model.py", "torch", tmp_path / "junk.pt", "-v", "0.5",
                   models_dir=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_the_api_trains_imports_and_compares_architectures(tmp_path):
    from rnn import api
    from rnn.errors import UserError
    task = api.task("cdi", steps=30)
    grus = api.train("bptt", task, seeds=[0, 1], max_steps=2, hidden=6, arch="gru")
    assert all(isinstance(n.model, CellRNN) and n.model.arch == "gru" for n in grus)
    torch.manual_seed(0)
    mine = [api.import_torch(torch.nn.LSTM(4, 5), torch.nn.Linear(5, 2), task, name=f"m{i}")
            for i in range(2)]
    assert mine[0].model.arch == "lstm" and mine[0].model.W_out.shape == (1, 1, 5)
    fp = api.fixed_points(mine[0], "sparse")
    assert fp.is_discrete and len(fp.residual) > 0
    cmp = api.compare({"gru": grus, "mine": mine}, metric="svcca", n_boot=20)
    assert cmp.distances.shape == (4, 4) and np.isfinite(cmp.distances).all()
    api.save(mine[0], tmp_path)
    assert torch.equal(api.load("m0", tmp_path).model.weight_hh, mine[0].model.weight_hh)
    with pytest.raises(UserError, match="trains only the rate network"):
        api.train("ff", task, seeds=[0], max_steps=1, arch="lstm")
    with pytest.raises(UserError, match="inputs"):
        api.import_torch(torch.nn.GRU(3, 5), torch.nn.Linear(5, 1), task)


def test_gradients_by_autograd_are_clipped_per_network():
    from rnn.rules.bptt import CLIP_NORM, clip_per_network
    g = {"a": torch.tensor([[3.0, 0.0], [0.3, 0.0]]), "b": torch.tensor([[[4.0]], [[0.4]]])}
    out = clip_per_network(g, 1.0)
    assert torch.allclose(out["a"][0], torch.tensor([0.6, 0.0]))      # norm 5 -> 1
    assert torch.allclose(out["b"][0], torch.tensor([[0.8]]))
    assert torch.equal(out["a"][1], g["a"][1]) and torch.equal(out["b"][1], g["b"][1])  # 0.5
    tr, _ = _tiny_trainer("bptt", "gru")
    assert tr.clip == CLIP_NORM and tr.extra_meta(0)["gradient_clip_norm"] == CLIP_NORM
    rate, _ = _tiny_trainer("bptt", "rate")
    assert rate.clip is None and "gradient_clip_norm" not in rate.extra_meta(0)


def test_subnormals_are_flushed_only_inside_the_block_and_blocks_nest():
    from rnn.arch import flush_denormals
    tiny = torch.tensor([1e-39])
    assert float(tiny * 1.0) > 0
    with flush_denormals():
        with flush_denormals():
            pass
        assert float(torch.tensor([1e-39]) * 1.0) == 0      # still flushed after the inner
    assert float(tiny * 1.0) > 0


@pytest.mark.parametrize("P,S,most", [(100, 2, 3), (100, 1, 7), (6, 6, 4), (12, 3, 8), (9, 3, 2),
                                      (5, 1, 2), (40, 2, 100), (7, 7, 1)])
def test_network_chunks_cover_every_network_once_with_its_own_input_sequence(P, S, most):
    from rnn.model import network_chunks
    chunks = network_chunks(P, S, most)
    assert chunks[0][0] == 0 and chunks[-1][1] == P
    B = P // S
    for (a, e, j0, j1), nxt in zip(chunks, chunks[1:] + [(P,)]):
        assert e == nxt[0] and 0 < e - a <= max(most, 1)           # consecutive, no gap
        per = (e - a) // (j1 - j0)                                  # a chunk's own blocks
        assert per * (j1 - j0) == e - a
        for p in range(a, e):      # the sequence a network reads in its chunk is its own
            assert j0 + (p - a) // per == p // B
    sizes = [e - a for a, e, _, _ in chunks]
    assert max(sizes) - min(sizes) <= (B if B < most else 1)     # as even as they can be


@pytest.mark.parametrize("arch", list(KINDS))
@pytest.mark.parametrize("S", [1, 2, 6])
def test_a_population_simulated_in_chunks_equals_one_pass(arch, S, monkeypatch):
    """Without gradients a large stack runs a chunk of networks at a time
    (rnn.arch.CHUNK_FLOATS); states, first and last steps equal one pass, with
    inputs shared, one per block of networks, or one per network."""
    import rnn.arch
    m = CellRNN.init(arch, Streams([4, 5], 0), 3, per_stream=3, hidden=5)
    gen = torch.Generator().manual_seed(6)
    u = torch.randn(9, S, 4, 3, generator=gen)
    x0 = 0.3 * torch.randn(6, 4, m.hidden, generator=gen)
    for keep in (None, "all", 4):
        monkeypatch.setattr(rnn.arch, "CHUNK_FLOATS", 10 ** 12)
        assert m.chunk(4) >= 6
        whole = m.simulate(u, x0, keep=keep)
        monkeypatch.setattr(rnn.arch, "CHUNK_FLOATS", 1)
        assert m.chunk(4) == 2                                      # 3 chunks (2 per run)
        part = m.simulate(u, x0, keep=keep)
        for k in ("x_first", "x_last", "states"):
            a, b = getattr(whole, k), getattr(part, k)
            assert (a is None) == (b is None) and (a is None or (
                a.shape == b.shape and torch.allclose(a, b, atol=1e-6)))
        assert keep is None or torch.equal(whole.steps, part.steps)
    # with gradients it is one pass: autograd reaches every network's weights
    w = m.weight_hh.clone().requires_grad_(True)
    m.replace(weight_hh=w).unroll(u, x0).x_last.sum().backward()
    assert bool((w.grad.flatten(1).abs().sum(1) > 0).all())


@pytest.mark.parametrize("S", [2, 6])
def test_the_rate_network_s_groups_of_whole_runs_equal_one_pass(S, monkeypatch):
    """rnn.model.RateRNN.simulate on a CPU runs a large stack in groups of whole
    blocks (_CPU_CHUNK_FLOATS), through the same network_chunks as the cells."""
    import rnn.model
    from rnn.model import RateRNN
    m = RateRNN.init(Streams([4, 5], 0), 3, per_stream=3, hidden=5)
    gen = torch.Generator().manual_seed(7)
    u = torch.randn(9, S, 4, 3, generator=gen)
    x0 = 0.3 * torch.randn(6, 4, 5, generator=gen)
    whole = m.simulate(u, x0, keep="all")
    monkeypatch.setattr(rnn.model, "_CPU_CHUNK_FLOATS", 1)     # one block per group
    part = m.simulate(u, x0, keep="all")
    for k in ("x_first", "x_last", "states"):
        assert torch.allclose(getattr(whole, k), getattr(part, k), atol=1e-6)
    # one network's own inputs and state, alone: what its place in a group gives
    alone = m.select(5).simulate(u[:, 5 // (6 // S)], x0[5:6]).x_last
    assert torch.allclose(alone[0], part.x_last[5], atol=1e-6)


def test_on_a_gpu_a_population_is_never_chunked():
    m = CellRNN.init("gru", Streams([4, 5], 0), 3, per_stream=20, hidden=50)
    assert m.chunk(500) == 3
    assert m.to(device="meta").chunk(500) == 40
    from rnn.model import RateRNN
    r = RateRNN.init(Streams([4, 5], 0), 3, per_stream=50, hidden=50)
    assert r.chunk(500) == 5 and r.to(device="meta").chunk(500) == 100


def test_a_simulation_of_no_trials_is_empty_not_a_division_by_zero():
    from rnn.model import RateRNN
    for m in (CellRNN.init("gru", Streams([1, 2], 0), 3, per_stream=5, hidden=4),
              RateRNN.init(Streams([1, 2], 0), 3, per_stream=5, hidden=4)):
        sim = m.simulate(torch.zeros(5, 2, 0, 3), torch.zeros(10, 0, m.hidden), keep="all")
        assert sim.x_last.shape == (10, 0, m.hidden) and sim.states.shape == (5, 10, 0, m.hidden)
