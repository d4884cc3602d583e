import numpy as np
import torch
from scipy.optimize import brentq

from rnn.analysis.fixed_points import FixedPoints, SolverConfig, find_fixed_points, residual_and_jacobian
from rnn.model import RateRNN

CFG = SolverConfig(n_box=40, n_traj=20)


def net(W, b, act, I=1, W_in=None):
    W = torch.as_tensor(W, dtype=torch.float64)[None]
    H = W.shape[1]
    W_in = torch.zeros(1, H, I, dtype=torch.float64) if W_in is None else W_in
    return RateRNN(W_in, W, torch.zeros(1, 1, H, dtype=torch.float64),
                   torch.as_tensor(b, dtype=torch.float64)[None], act, "linear")


def test_two_unit_tanh_network_known_fixed_points():
    # x_i = w·tanh(x_i): roots 0 and ±x*, independently per unit -> 9 points
    w = 2.0
    xs = brentq(lambda x: w * np.tanh(x) - x, 0.5, 5.0, xtol=1e-15)
    fp = find_fixed_points(net(np.diag([w, w]), [0, 0], "tanh"), np.zeros((1, 1)), cfg=CFG)
    expected = {(a, b) for a in (-xs, 0.0, xs) for b in (-xs, 0.0, xs)}
    found = {tuple(np.round(p, 9)) for p in fp.xstar}
    assert found == {tuple(np.round(p, 9)) for p in expected}
    assert fp.residual.max() < 1e-8
    for p, stable, nun in zip(fp.xstar, fp.is_stable, fp.n_unstable):
        zeros = int(np.sum(np.abs(p) < 1e-9))   # units sitting at 0 are unstable directions
        assert nun == zeros
        assert stable == (zeros == 0)


def test_one_plus_tanh_bias_shifts_fixed_point():
    # x = w(1 + tanh x) + b, one unit: compare to a scalar root finder
    w, b = 0.5, -1.0
    f = lambda x: -x + w * (1 + np.tanh(x)) + b  # noqa: E731
    roots = []
    grid = np.linspace(-10, 10, 20001)
    for lo, hi in zip(grid[:-1], grid[1:]):
        if f(lo) * f(hi) < 0:
            roots.append(brentq(f, lo, hi, xtol=1e-15))
    fp = find_fixed_points(net([[w]], [b], "one_plus_tanh"), np.zeros((1, 1)), cfg=CFG)
    np.testing.assert_allclose(np.sort(fp.xstar[:, 0]), np.sort(roots), atol=1e-10)


def test_relu_mutual_inhibition_known_fixed_points():
    # x = W relu(x) + 1 with W = [[0,-2],[-2,0]]: (1/3,1/3) saddle, (1,-1), (-1,1) stable
    fp = find_fixed_points(net([[0, -2], [-2, 0]], [1, 1], "relu"), np.zeros((1, 1)), cfg=CFG)
    got = sorted((tuple(np.round(p, 9)), bool(s)) for p, s in zip(fp.xstar, fp.is_stable))
    want = sorted([((round(1 / 3, 9), round(1 / 3, 9)), False), ((1.0, -1.0), True),
                   ((-1.0, 1.0), True)])
    assert got == want


def test_inputs_are_solved_separately_and_labelled():
    W_in = torch.tensor([[[1.0], [0.0]]], dtype=torch.float64)
    model = net(np.diag([0.5, 0.5]), [0, 0], "tanh", W_in=W_in)
    u = np.array([[0.2], [-0.3]])
    fp = find_fixed_points(model, u, evidence=np.array([0.2, -0.3]), cfg=CFG)
    assert len(fp.xstar) == 2 and set(fp.input_index) == {0, 1}
    for k in range(2):
        x = fp.xstar[fp.input_index == k][0]
        assert abs(x[0] - (0.5 * np.tanh(x[0]) + u[k, 0])) < 1e-10
        assert fp.evidence[fp.input_index == k][0] == u[k, 0]


def test_random_network_roots_are_roots_and_stability_matches_simulation():
    gen = torch.Generator().manual_seed(1)
    H = 50
    W = 2.5 / np.sqrt(H) * torch.randn(H, H, generator=gen, dtype=torch.float64)
    b = 0.1 * torch.randn(H, generator=gen, dtype=torch.float64)
    model = net(W.numpy(), b.numpy(), "tanh")
    fp = find_fixed_points(model, np.zeros((1, 1)), cfg=SolverConfig(n_box=100, n_traj=50))
    assert len(fp.xstar) >= 5                       # a g = 2.5 network has many
    # every accepted point is a root, re-checked independently in float64
    x = torch.as_tensor(fp.xstar)
    F, _ = residual_and_jacobian(W, b.expand(len(x), H), "tanh", x, jacobian=False)
    assert float(F.abs().max()) < 1e-8
    # stability agrees with the forward dynamics from small perturbations
    checked, stable_checked = 0, 0
    rng = np.random.default_rng(0)
    for p, stable, ev in zip(fp.xstar, fp.is_stable, fp.eigvals):
        lead = ev.real.max()
        if abs(lead) < 0.05:
            continue                                  # too close to marginal to simulate
        d0 = 1e-6 * rng.standard_normal((1, 8, H))
        x0 = torch.as_tensor(p[None, None] + d0)
        sim = model.simulate(torch.zeros(400, 8, 1, dtype=torch.float64), x0)
        d = np.abs(sim.x_last.numpy() - p).max(-1)
        if stable:
            assert np.all(d < np.abs(d0).max(-1))       # perturbations decay
            stable_checked += 1
        else:
            assert np.max(d) > 100 * np.abs(d0).max()
        checked += 1
    assert checked >= 5 and stable_checked >= 1


def test_save_load_roundtrip(tmp_path):
    fp = find_fixed_points(net(np.diag([2.0, 2.0]), [0, 0], "tanh"), np.zeros((1, 1)), cfg=CFG)
    fp.save(tmp_path / "fp.npz")
    back = FixedPoints.load(tmp_path / "fp.npz")
    np.testing.assert_array_equal(back.xstar, fp.xstar)
    np.testing.assert_array_equal(back.eigvals, fp.eigvals)
    assert str(back.weights_hash) == str(fp.weights_hash)


def test_clamped_units_are_held_and_excluded_from_eigenvalues():
    gen = torch.Generator().manual_seed(1)
    H = 12
    W = 0.3 * torch.randn(1, H, H, generator=gen, dtype=torch.float64)
    m = RateRNN(torch.zeros(1, H, 1, dtype=torch.float64), W,
                torch.zeros(1, 1, H, dtype=torch.float64), torch.zeros(1, H, dtype=torch.float64),
                "tanh", "unit0", clamp_idx=(1, 10, 11), clamp_val=(1.0, 1.0, -1.0))
    fp = find_fixed_points(m, np.zeros((1, 1)), cfg=CFG)
    assert len(fp.xstar) >= 1
    assert np.all(fp.xstar[:, [1, 10, 11]] == [1.0, 1.0, -1.0])
    assert fp.eigvals.shape[1] == H - 3
    # the free units satisfy the clamped network's equation
    x = torch.as_tensor(fp.xstar)
    r = torch.tanh(x)
    F = -x + r @ W[0].T
    free = [i for i in range(H) if i not in (1, 10, 11)]
    assert float(F[:, free].abs().max()) < 1e-8
