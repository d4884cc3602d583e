"""Small shared helpers for the tests."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from rnn.model import RateRNN

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args, models_dir=None, timeout=300, env_extra=None):
    """Run one of the repository's scripts in a subprocess; return CompletedProcess."""
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = str(ROOT)
    if models_dir is not None:
        env["RNN_MODELS_DIR"] = str(models_dir)
    if env_extra:
        env.update(env_extra)
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def reference_simulate(model: RateRNN, inputs: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """The Euler equation written out literally (float64): states [T, P, n, H].

    inputs [T, P, n, I]; clamped units hold their state at their values."""
    m = model.to(dtype=torch.float64)
    x = x0.to(torch.float64).clone()
    out = []
    cidx = list(m.clamp_idx)
    cval = torch.tensor(m.clamp_val, dtype=torch.float64)
    if cidx:
        x[..., cidx] = cval
    for t in range(inputs.shape[0]):
        r = m.phi(x)
        x = x + m.dt * (-x + torch.einsum("pij,pnj->pni", m.W_rec, r)
                        + torch.einsum("pij,pnj->pni", m.W_in, inputs[t].to(torch.float64))
                        + m.b[:, None, :])
        if cidx:
            x[..., cidx] = cval
        out.append(x)
    return torch.stack(out)
