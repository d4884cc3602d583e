import numpy as np
import pytest

from helpers import run_script
from rnn.io import save_model
from rnn.model import RateRNN
from rnn.rng import Streams
from tasks import ncdi, rdm


def write_model(directory, name, task, rule="bptt", scale=60.0, seed=0):
    act = "one_plus_tanh" if rule in ("bptt", "ga") else "tanh"
    m = RateRNN.init(Streams([seed], 1), task.n_inputs, activation=act)
    m = m.replace(W_rec=m.W_rec * scale)
    save_model(name, m, {"rule": rule, "task": task.to_dict()}, {}, directory)
    return m


def test_end_to_end_writes_figures_and_cache(models_tmp):
    write_model(models_tmp, "bptt_tiny", rdm(0.5))
    r = run_script("analyze_dynamics.py", "bptt_tiny", "sparse", "--trials", "20",
                   models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    pngs = sorted(p.name for p in models_tmp.glob("*.png"))
    assert pngs == ["bptt_tiny_pc1_time.png", "bptt_tiny_psychometric.png",
                    "bptt_tiny_sparse_attractors.png", "bptt_tiny_sparse_trajectories.png"]
    for p in models_tmp.glob("*.png"):
        assert f"wrote {p}" in r.stdout
        assert p.stat().st_size > 5000
    cache = models_tmp / "bptt_tiny_fixed_points_sparse.npz"
    z = np.load(cache)
    assert set(z.files) >= {"xstar", "inputs", "residual", "eigvals", "is_stable"}
    assert np.all(z["residual"] < 1e-8)
    # second run reuses the cache
    r2 = run_script("analyze_dynamics.py", "bptt_tiny", "sparse", "--no-psychometric",
                    models_dir=models_tmp)
    assert r2.returncode == 0 and "(cached)" in r2.stdout


def test_ncdi_model_gets_one_figure_set_per_context_and_accepts_N(models_tmp):
    write_model(models_tmp, "ff_ctx", ncdi(3, 0.5), rule="ff", scale=20.0)
    r = run_script("analyze_dynamics.py", "ff_ctx", "large", "--N", "3", "--no-psychometric",
                   models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    for k in range(3):
        assert (models_tmp / f"ff_ctx_large_trajectories_ctx{k}.png").exists()
    bad = run_script("analyze_dynamics.py", "ff_ctx", "large", "--N", "2",
                     models_dir=models_tmp)
    assert bad.returncode == 2 and "disagrees" in bad.stderr


@pytest.mark.parametrize("args, message", [
    (["nosuch", "large"], "no model 'nosuch'"),
    (["bptt_tiny", "medium"], "unknown input set"),
    (["broken", "large"], "cannot read model file"),
])
def test_bad_input_one_line_exit_2(args, message, models_tmp):
    write_model(models_tmp, "bptt_tiny", rdm(0.5))
    (models_tmp / "broken.pt").write_bytes(b"\x80\x02garbage")
    r = run_script("analyze_dynamics.py", *args, models_dir=models_tmp)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    if args[0] == "nosuch":
        assert "bptt_tiny" in r.stderr           # lists the models that exist
