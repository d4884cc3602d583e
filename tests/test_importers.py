import datetime
import io
import zipfile

import numpy as np
import pytest
import torch

from helpers import reference_simulate, run_script
from rnn.io import load_model
from tasks import ncdi, rdm


def test_miconi_text_weights_round_trip(models_tmp):
    rng = np.random.default_rng(0)
    H = 14
    win = rng.standard_normal((H, 2))
    J = 0.2 * rng.standard_normal((H, H))
    np.savetxt(models_tmp / "heb_m_win.txt", win)
    np.savetxt(models_tmp / "heb_m_J.txt", J)
    r = run_script("import_model.py", "miconi", "heb_m", "-v", "0.5", models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    lm = load_model("heb_m", models_tmp)
    np.testing.assert_allclose(lm.model.W_in[0].numpy(), win[:, 1:], rtol=1e-6)
    np.testing.assert_allclose(lm.model.W_rec[0].numpy(), J, rtol=1e-6)
    assert lm.model.clamp_idx == (1, 10, 11) and lm.model.clamp_val == (1.0, 1.0, -1.0)
    assert lm.model.readout == "unit0" and lm.model.activation == "tanh"
    assert lm.task == rdm(0.5) and lm.rule == "heb"
    # CDI: go channel + 4 inputs
    np.savetxt(models_tmp / "heb_c_win.txt", rng.standard_normal((H, 5)))
    np.savetxt(models_tmp / "heb_c_J.txt", J)
    r = run_script("import_model.py", "miconi", "heb_c", "-v", "0.1", models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    assert load_model("heb_c", models_tmp).task == ncdi(2, 0.1)


def test_miconi_malformed_files_are_one_line_errors(models_tmp):
    (models_tmp / "heb_x_win.txt").write_text("1 2\n3 oops\n")
    (models_tmp / "heb_x_J.txt").write_text("1 0\n0 1\n")
    r = run_script("import_model.py", "miconi", "heb_x", "-v", "0.5", models_dir=models_tmp)
    assert r.returncode == 2 and "not a whitespace-separated matrix" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_script("import_model.py", "miconi", "heb_none", "-v", "0.5", models_dir=models_tmp)
    assert r.returncode == 2 and "not found" in r.stderr


def original_checkpoint(extra=None):
    g = torch.Generator().manual_seed(0)
    w = {"in": 0.5 * torch.randn(50, 4, generator=g), "rec": 0.3 * torch.randn(50, 50, generator=g),
         "out": 0.1 * torch.randn(1, 50, generator=g), "bias": torch.zeros(50, 1)}
    ckpt = {"weights": w, "losses": np.arange(5.0), "targets": [np.float64(1.0)],
            "validation_history": [0.5, 0.7]}
    ckpt.update(extra or {})
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return w, buf.getvalue()


def as_numpy1_pickle(data: bytes) -> bytes:
    """Rename NumPy 2's module path to NumPy 1's inside the pickle, as in old files."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            blob = src.read(item.filename)
            if item.filename.endswith("data.pkl"):
                blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            dst.writestr(item, blob)
    return out.getvalue()


@pytest.mark.parametrize("numpy1", [False, True])
def test_original_model_converted_without_running_code(models_tmp, numpy1):
    w, data = original_checkpoint()
    (models_tmp / "bptt_old.pt").write_bytes(as_numpy1_pickle(data) if numpy1 else data)
    (models_tmp / "bptt_old.txt").write_text("inputSize : 4.0\ntaskVar : 0.5\nReLU : 0\n")
    r = run_script("import_model.py", "original", "bptt_old", models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    assert (models_tmp / "bptt_old.orig.pt").exists() and (models_tmp / "bptt_old.orig.txt").exists()
    lm = load_model("bptt_old", models_tmp)
    assert lm.task == ncdi(2, 0.5)
    assert lm.model.activation == "one_plus_tanh" and lm.model.readout == "linear"
    torch.testing.assert_close(lm.model.W_rec[0], w["rec"])
    # the converted network runs the original's dynamics: x += dt(-x + W(1+tanh x) + W_in u)
    u = torch.randn(30, 1, 3, 4, generator=torch.Generator().manual_seed(1))
    x0 = torch.zeros(1, 3, 50)
    ref = reference_simulate(lm.model, u, x0)
    sim = lm.model.to(dtype=torch.float64).simulate(u, x0, keep="all")
    torch.testing.assert_close(sim.states, ref)


def test_original_file_needing_more_than_arrays_needs_trust(models_tmp):
    _, data = original_checkpoint({"when": datetime.datetime(2021, 1, 1)})
    (models_tmp / "ga_old.pt").write_bytes(data)
    (models_tmp / "ga_old.txt").write_text("inputSize : 4.0\ntaskVar : 0.1\n")
    r = run_script("import_model.py", "original", "ga_old", models_dir=models_tmp)
    assert r.returncode == 2 and "--trust" in r.stderr and "datetime" in r.stderr
    assert not (models_tmp / "ga_old.json").exists()
    r = run_script("import_model.py", "original", "ga_old", "--trust", "--as", "ga_new",
                   models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    assert load_model("ga_new", models_tmp).task == ncdi(2, 0.1)


def test_loading_an_original_file_directly_says_how_to_convert(models_tmp):
    _, data = original_checkpoint()
    (models_tmp / "bptt_raw.pt").write_bytes(data)
    r = run_script("analyze_dynamics.py", "bptt_raw", "large", models_dir=models_tmp)
    assert r.returncode == 2 and "import_model.py original bptt_raw" in r.stderr


@pytest.mark.parametrize("weights, hyper, message", [
    ({"rec": float("nan")}, "taskVar : 0.5\n", "network.W_rec holds non-finite values"),
    ({}, "taskVar : nan\n", "meta.task.noise is nan"),
])
def test_an_original_model_with_nan_is_refused_before_anything_is_written(
        models_tmp, weights, hyper, message):
    _, data = original_checkpoint()
    ckpt = torch.load(io.BytesIO(data), weights_only=False)
    for k, v in weights.items():
        ckpt["weights"][k] = torch.full_like(ckpt["weights"][k], v)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    (models_tmp / "bptt_nan.pt").write_bytes(buf.getvalue())
    (models_tmp / "bptt_nan.txt").write_text("inputSize : 4.0\n" + hyper)
    before = sorted(p.name for p in models_tmp.iterdir())
    r = run_script("import_model.py", "original", "bptt_nan", models_dir=models_tmp)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert sorted(p.name for p in models_tmp.iterdir()) == before
