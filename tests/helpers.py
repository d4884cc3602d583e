"""Small shared helpers for the tests."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from rnn.model import RateRNN

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args, models_dir=None, timeout=300, env_extra=None, fresh=False):
    """Run one of the repository's scripts with arguments ``args``; return a
    CompletedProcess (returncode, stdout, stderr).

    A script run in this process unless ``fresh``: its file executed as
    ``__main__`` with sys.argv, the environment, the working directory, the
    torch thread count and the signal handlers set for it and restored after,
    its output captured (a new Python and torch import cost about 2 s a run).
    ``fresh=True`` starts a new Python: for exit statuses and tracebacks as a
    shell sees them, signals and timeouts; every script keeps at least one
    such test."""
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = str(ROOT)
    if models_dir is not None:
        env["RNN_MODELS_DIR"] = str(models_dir)
    if env_extra:
        env.update(env_extra)
    if fresh or not str(args[0]).endswith(".py"):
        return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
    return _in_process([str(a) for a in args], env)


def _in_process(args: list[str], env: dict) -> subprocess.CompletedProcess:
    import contextlib
    import io
    import runpy
    import signal
    path = ROOT / args[0]
    saved = (dict(os.environ), list(sys.argv), os.getcwd(), torch.get_num_threads(),
             {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)})
    out, err = io.StringIO(), io.StringIO()
    code = 0
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [str(path), *args[1:]]
    os.chdir(ROOT)
    if env.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(str(path), run_name="__main__")
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    code = e.code or 0
                else:                                    # sys.exit("message")
                    print(e.code, file=sys.stderr)
                    code = 1
    finally:
        os.environ.clear()
        os.environ.update(saved[0])
        sys.argv = saved[1]
        os.chdir(saved[2])
        torch.set_num_threads(saved[3])
        for s, h in saved[4].items():
            signal.signal(s, h)
        import matplotlib.pyplot as plt
        plt.close("all")
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


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
