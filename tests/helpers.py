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


def file_as_cell(folder: Path, cell_name: str, source: str, count: int = 3) -> None:
    """Copy shipped networks models/SOURCE_000 ... into ``folder`` as the networks
    of seeds 0 ... count-1 of a grid cell (named CELL_s0_NNN, the seed in the
    JSON), so that grid code finds them as trained."""
    import json
    import shutil
    folder.mkdir(exist_ok=True)
    for k in range(count):
        name = f"{cell_name}_s0_{k:03d}"
        shutil.copy(ROOT / "models" / f"{source}_{k:03d}.pt", folder / f"{name}.pt")
        meta = json.loads((ROOT / "models" / f"{source}_{k:03d}.json").read_text())
        meta.update(name=name, seed=k)
        (folder / f"{name}.json").write_text(json.dumps(meta))


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


def autograd_loss_and_grads(model: RateRNN, inputs: torch.Tensor, x0: torch.Tensor,
                            targets: torch.Tensor):
    """The loss (z_T − y)² + z_1² per network and its exact gradients w.r.t. W_rec
    and W_out, by autograd through the Euler steps written out."""
    W = model.W_rec.clone().requires_grad_(True)
    Wo = model.W_out.clone().requires_grad_(True)
    m = model.replace(W_rec=W, W_out=Wo)
    x, xs = x0.clone(), []
    for t in range(inputs.shape[0]):
        x = x + m.dt * (-x + torch.bmm(m.phi(x), W.transpose(1, 2))
                        + torch.matmul(inputs[t], m.W_in.transpose(1, 2)) + m.b[:, None])
        xs.append(x)
    zT, z1 = m.output(xs[-1]), m.output(xs[0])
    per = ((zT - targets) ** 2 + z1 ** 2).mean(-1)
    gW, gWo = torch.autograd.grad(per.sum(), (W, Wo))
    return per.detach(), gW, gWo
