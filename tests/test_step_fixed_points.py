"""rnn/analysis/step_fixed_points.py: fixed points of any step map, on maps with
known answers, and the rate network's roots found again from its Euler step."""
import numpy as np
import pytest
import torch

from rnn.analysis.fixed_points import SolverConfig, find_fixed_points
from rnn.analysis.step_fixed_points import find_step_fixed_points
from rnn.model import RateRNN


def test_a_linear_map_has_its_one_fixed_point_with_the_map_s_eigenvalues():
    """h' = A h + B u: the fixed point (I − A)⁻¹ B u, eigenvalues those of A."""
    rng = np.random.default_rng(0)
    H, I = 5, 2
    Q = np.linalg.qr(rng.normal(size=(H, H)))[0]
    lam = np.array([0.9, 0.5, -0.3, 0.2, 1.5])         # one direction expands
    A = Q @ np.diag(lam) @ Q.T
    B = rng.normal(size=(H, I))
    At, Bt = torch.as_tensor(A), torch.as_tensor(B)
    inputs = rng.normal(size=(3, I))
    fp = find_step_fixed_points(lambda h, u: h @ At.T + u @ Bt.T, inputs,
                                rng.uniform(-3, 3, size=(4, H)))
    assert sorted(fp.input_index.tolist()) == [0, 1, 2]           # one point per input
    for x, k in zip(fp.xstar, fp.input_index):
        want = np.linalg.solve(np.eye(H) - A, B @ inputs[k])
        assert np.abs(x - want).max() < 1e-9
    np.testing.assert_allclose(np.sort(fp.eigvals.real, axis=1), np.tile(np.sort(lam), (3, 1)),
                               atol=1e-9)
    assert not fp.is_stable.any() and (fp.n_unstable == 1).all()


def test_two_units_in_closed_form():
    """h_i' = h_i − (h_i² − 1)/2 for each unit: roots (±1, ±1); ∂f/∂h = diag(1 − h),
    so (1, 1) is stable (eigenvalues 0), (−1, −1) has two unstable directions
    (eigenvalues 2) and the mixed ones one each."""
    def step(h, u):
        return h - 0.5 * (h * h - 1) + 0 * u.sum(1, keepdim=True)
    g = np.linspace(-1.8, 1.8, 7)
    starts = np.array([(a, b) for a in g for b in g])
    fp = find_step_fixed_points(step, np.zeros((1, 1)), starts)
    got = {tuple(np.round(x).astype(int)): (st, n) for x, st, n in
           zip(fp.xstar, fp.is_stable, fp.n_unstable)}
    assert got == {(1, 1): (True, 0), (1, -1): (False, 1), (-1, 1): (False, 1),
                   (-1, -1): (False, 2)}
    assert fp.residual.max() < 1e-8


def test_the_rate_network_s_euler_step_has_the_analytic_solver_s_roots_and_stability():
    from rnn.rng import WEIGHTS, Streams
    # strong recurrence: 18 fixed points over the two inputs, 8 of them stable
    m = RateRNN.init(Streams([1], WEIGHTS, "cpu"), 2, hidden=6, g=4.0, activation="tanh")
    m = m.to(dtype=torch.float64)
    inputs = np.array([[0.0, 0.0], [0.05, -0.02]])
    ref = find_fixed_points(m, inputs, cfg=SolverConfig(n_box=60, n_traj=30))
    assert len(ref.residual) == 18 and ref.is_stable.sum() == 8
    W, Win, b, dt = m.W_rec[0], m.W_in[0], m.b[0], m.dt

    def euler(x, u):
        phi = 1 + torch.tanh(x) if m.activation == "one_plus_tanh" else torch.tanh(x)
        return x + dt * (-x + phi @ W.T + u @ Win.T + b)
    rng = np.random.default_rng(1)
    starts = np.concatenate([ref.xstar[ref.input_index == k] for k in range(2)])
    starts = np.stack([starts + 1e-3 * rng.normal(size=starts.shape)] * 2)   # near every root
    fp = find_step_fixed_points(euler, inputs, starts, dt=dt)
    for k in range(2):
        a = ref.xstar[ref.input_index == k]
        b_ = fp.xstar[fp.input_index == k]
        # every analytic root is found (starting near the roots of both inputs, the
        # step solver may find a root the analytic run's random starts missed: a
        # true root of F too)
        assert len(b_) >= len(a) > 0
        for x in b_:
            F = -x + np.tanh(x) @ W.numpy().T + inputs[k] @ Win.numpy().T + b.numpy()
            assert np.abs(F).max() < 1e-8
        for x in a:
            j = np.abs(b_ - x).max(1).argmin()
            assert np.abs(b_[j] - x).max() < 1e-7
            i = np.flatnonzero(fp.input_index == k)[j]
            r = np.flatnonzero((ref.input_index == k) & (np.abs(ref.xstar - x).max(1) == 0))[0]
            assert fp.is_stable[i] == ref.is_stable[r] and fp.n_unstable[i] == ref.n_unstable[r]
            np.testing.assert_allclose(np.sort_complex(fp.eigvals[i]),
                                       np.sort_complex(ref.eigvals[r]), atol=1e-6)


def test_starts_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="starts"):
        find_step_fixed_points(lambda h, u: h, np.zeros((2, 1)), np.zeros((3, 4, 5)))


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_torch_cells_step_as_pytorch_does_and_a_silent_cell_rests_at_zero(kind):
    """The step map of each PyTorch cell equals PyTorch's own step (cell and
    one-layer module); with every weight zero a cell's one fixed point is 0 with
    known eigenvalues: RNN 0; GRU h' = h/2, so 1/2; LSTM c' = c/2, h' = tanh(c')/2,
    so 1/2 (c) and 0 (h)."""
    from rnn.analysis.step_fixed_points import torch_cell_step
    torch.manual_seed(0)
    cell = getattr(torch.nn, f"{kind}Cell")(3, 4).double()
    net = getattr(torch.nn, kind)(3, 4, batch_first=True).double()
    u, h = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    c = torch.randn(5, 4, dtype=torch.float64)
    for mod in (cell, net):
        step, H = torch_cell_step(mod)
        if kind == "LSTM":
            assert H == 8
            if mod is cell:
                want = torch.cat(cell(u, (h, c)), dim=1)
            else:
                _, (hn, cn) = net(u[:, None], (h[None], c[None]))
                want = torch.cat([hn[0], cn[0]], dim=1)
            got = step(torch.cat([h, c], dim=1), u)
        else:
            want = cell(u, h) if mod is cell else net(u[:, None], h[None])[1][0]
            got = step(h, u)
        assert torch.allclose(got, want, atol=1e-12), (kind, type(mod).__name__)
    with torch.no_grad():
        for prm in cell.parameters():
            prm.zero_()
    step, H = torch_cell_step(cell)
    fp = find_step_fixed_points(step, np.zeros((1, 3)), np.random.default_rng(0).uniform(
        -1, 1, size=(6, H)))
    assert len(fp.residual) == 1 and np.abs(fp.xstar).max() < 1e-9 and fp.is_stable.all()
    want = {"RNN": [0.0] * 4, "GRU": [0.5] * 4, "LSTM": [0.0] * 4 + [0.5] * 4}[kind]
    np.testing.assert_allclose(np.sort(np.abs(fp.eigvals[0])), want, atol=1e-9)
    with pytest.raises(TypeError):
        torch_cell_step(torch.nn.Linear(2, 2))


def _flip_flop(kind):
    """A hand-built 3-bit flip-flop of each PyTorch architecture: 3 decoupled
    units, each h = tanh(2h) (bistable at ±0.9575, unstable at 0); the GRU with
    its update gate shut (z ≈ 0) and its reset gate open (r ≈ 1), the LSTM with
    its forget gate shut and its input and output gates open (h = tanh(tanh(2h)))."""
    H, big = 3, 30.0
    m = getattr(torch.nn, kind)(3, H).double()
    with torch.no_grad():
        for prm in m.parameters():
            prm.zero_()
        eye = 2.0 * torch.eye(H, dtype=torch.float64)
        if kind == "RNN":
            m.weight_hh_l0.copy_(eye)
        elif kind == "GRU":                      # gates r, z, n
            m.bias_ih_l0[:H] = big               # r = 1
            m.bias_ih_l0[H:2 * H] = -big         # z = 0: h' = n
            m.weight_hh_l0[2 * H:] = eye         # n = tanh(2 h)
        else:                                    # gates i, f, g, o
            m.bias_ih_l0[:H] = big               # i = 1
            m.bias_ih_l0[H:2 * H] = -big         # f = 0
            m.weight_hh_l0[2 * H:3 * H] = eye    # g = tanh(2 h)
            m.bias_ih_l0[3 * H:] = big           # o = 1
    return m


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_a_hand_built_3_bit_flip_flop_has_8_stable_points_in_every_architecture(kind):
    """3 bistable units: 3³ = 27 fixed points, C(3, k)·2^(3−k) of them with k
    unstable directions — 8 stable (every corner), 12, 6 and 1."""
    from rnn.analysis.step_fixed_points import torch_cell_step
    step, H = torch_cell_step(_flip_flop(kind))
    g = np.array([-1.2, -0.3, 0.3, 1.2])
    starts = np.array([(a, b, c) for a in g for b in g for c in g])
    if kind == "LSTM":                              # the state is [h, c]
        starts = np.concatenate([starts, np.tanh(2 * starts)], axis=1)
    starts = np.concatenate([starts, np.zeros((1, H))])
    fp = find_step_fixed_points(step, np.zeros((1, 3)), starts)
    assert len(fp.residual) == 27
    assert np.bincount(fp.n_unstable, minlength=4).tolist() == [8, 12, 6, 1]
    corners = fp.xstar[fp.is_stable][:, :3]
    assert len({tuple(np.sign(x)) for x in corners}) == 8
    # each unit's stable value, the positive root of its scalar equation (bisection)
    from scipy.optimize import brentq
    unit = (lambda h: h - np.tanh(np.tanh(2 * h))) if kind == "LSTM" else \
        (lambda h: h - np.tanh(2 * h))
    assert np.abs(np.abs(corners) - brentq(unit, 0.3, 1.5)).max() < 1e-9


def test_without_starts_the_network_s_own_trajectories_find_its_stable_points():
    """Without starts (the states the network visits, and uniform in the box
    they span): the flip-flop GRU's 8 stable corners, each once (its unstable
    points are found as far as the uniform starts reach them: 24 of 27 here)."""
    from rnn.analysis.step_fixed_points import torch_cell_step
    step, H = torch_cell_step(_flip_flop("GRU"))
    fp = find_step_fixed_points(step, np.zeros((1, 3)), hidden=H)
    corners = {tuple(np.sign(x)) for x in fp.xstar[fp.is_stable]}
    assert len(corners) == 8 == fp.is_stable.sum()
    assert fp.residual.max() < 1e-8
    with pytest.raises(ValueError, match="hidden"):
        find_step_fixed_points(step, np.zeros((1, 3)))


@pytest.mark.parametrize("arch,rows", [("gru", 7), ("lstm", 13)])
def test_the_solver_s_chunks_of_rows_change_no_root(monkeypatch, arch, rows):
    """Levenberg–Marquardt builds its [B, S, S] systems a chunk of rows at a
    time (rnn.analysis.fixed_points.LM_CHUNK_FLOATS): 7 or 13 rows at a time
    give the roots and stability of the whole batch at once, on a random
    network whose 2 x 30 starts do not divide into the chunks."""
    import rnn.analysis.fixed_points as F
    from rnn.arch import CellRNN
    from rnn.rng import Streams
    m = CellRNN.init(arch, Streams([3], 0), 2, hidden=6)
    m = m.replace(weight_hh=4.0 * m.weight_hh)        # several fixed points
    step = m.step_map(0)
    inputs = np.array([[0.0, 0.0], [0.5, -0.5]])
    starts = np.random.default_rng(0).uniform(-1.5, 1.5, (30, m.hidden))
    whole = find_step_fixed_points(step, inputs, starts)
    monkeypatch.setattr(F, "LM_CHUNK_FLOATS", rows * m.hidden ** 2)
    part = find_step_fixed_points(step, inputs, starts)
    assert len(whole.residual) >= 2 and len(part.residual) == len(whole.residual)
    assert np.allclose(part.xstar, whole.xstar, atol=1e-10, rtol=0)
    assert (part.is_stable == whole.is_stable).all()
