"""Turning networks trained elsewhere into this tool's model files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rnn.errors import UserError
from rnn.rules.hebbian import BIAS_UNITS, BIAS_VALUES
from rnn.model import DT, RateRNN
from tasks import DecisionTask


def read_matrix(path: Path) -> np.ndarray:
    """A whitespace-separated text matrix, with a one-line error if malformed."""
    from rnn.io import require_regular_file
    if not Path(path).exists():
        raise UserError(f"{path} not found")
    require_regular_file(path, "weights file")
    try:
        m = np.loadtxt(path, ndmin=2)
    except ValueError as e:
        raise UserError(f"{path} is not a whitespace-separated matrix of numbers: {e}") from None
    if m.size == 0:
        raise UserError(f"{path} is empty")
    return m


def task_for_inputs(n_inputs: int, noise: float, mean: float, N: int | None,
                    is_rdm: bool) -> DecisionTask:
    """The task of a network with ``n_inputs`` usable inputs (1 → RDM, 2N → N-CDI),
    unless the user named it."""
    from tasks.table import parse
    if is_rdm or (N is None and n_inputs == 1):
        task = parse("rdm").make(noise, mean)
    elif N is not None or n_inputs % 2 == 0:
        task = parse("ncdi", N if N is not None else n_inputs // 2, what="--N").make(noise, mean)
    else:
        raise UserError(f"cannot tell the task of a network with {n_inputs} inputs "
                        f"(1 is RDM, 2N is N-CDI); pass --rdm or --N")
    if task.n_inputs != n_inputs:
        raise UserError(f"the network has {n_inputs} inputs but {task.describe()} has "
                        f"{task.n_inputs}")
    return task


def import_miconi(win_path: Path, J_path: Path, noise: float, mean: float,
                  N: int | None = None, is_rdm: bool = False) -> tuple[RateRNN, DecisionTask]:
    """Weights of Miconi's C++ program: W_in (H × (1 + inputs); column 0 is the
    unused 'go' channel) and J (H × H).  Units 1, 10, 11 are its clamped bias
    units; unit 0 the output; tanh rates."""
    win = read_matrix(win_path)
    J = read_matrix(J_path)
    H = J.shape[0]
    if J.shape != (H, H):
        raise UserError(f"{J_path}: J must be square, got {J.shape[0]}x{J.shape[1]}")
    if win.shape[0] != H or win.shape[1] < 2:
        raise UserError(f"{win_path}: W_in must be {H} x (1 + inputs) (column 0 is the go "
                        f"channel), got {win.shape[0]}x{win.shape[1]}")
    if H <= max(BIAS_UNITS):
        raise UserError(f"the network has {H} units; Miconi's bias units {BIAS_UNITS} need at "
                        f"least {max(BIAS_UNITS) + 1}")
    W_in = win[:, 1:]
    task = task_for_inputs(W_in.shape[1], noise, mean, N, is_rdm)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)[None]  # noqa: E731
    model = RateRNN(t(W_in), t(J), torch.zeros(1, 1, H), torch.zeros(1, H), "tanh", "unit0",
                    DT, BIAS_UNITS, BIAS_VALUES)
    return model, task


# ---- models of the original research code ------------------------------------------

def read_original_hyperparams(path: Path) -> dict[str, float | str]:
    """The original's NAME.txt: lines 'key : value'."""
    out: dict[str, float | str] = {}
    if not Path(path).exists():
        return out
    for line in Path(path).read_text(errors="replace").splitlines():
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        try:
            out[k.strip()] = float(v.strip())
        except ValueError:
            out[k.strip()] = v.strip()
    return out


def _numpy_safe_globals() -> list:
    """NumPy's array-rebuilding functions and dtypes, under both their NumPy 2
    and NumPy 1 names: all that a pickle of plain NumPy arrays needs (none of
    them can run code of the file's author)."""
    from numpy._core import multiarray as ma
    allowed: list = [np.ndarray, np.dtype]
    for fn in (ma._reconstruct, ma.scalar):
        allowed += [fn, (fn, f"numpy.core.multiarray.{fn.__name__}")]
    for name in dir(np.dtypes):
        cls = getattr(np.dtypes, name)
        if isinstance(cls, type) and name.endswith("DType"):
            allowed.append(cls)
    return allowed


def load_original_checkpoint(path: Path, trust: bool = False) -> dict:
    """The original toolkit's NAME.pt, without running code from the file:
    ``weights_only`` loading with only NumPy's array types allowed.  With
    ``trust`` the file is unpickled in full (it can then run arbitrary code)."""
    from rnn.io import require_regular_file
    if not Path(path).exists():
        raise UserError(f"{path} not found")
    require_regular_file(path, "checkpoint")
    if trust:
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise UserError(f"cannot read {path}: {str(e).splitlines()[0][:200]}") from None
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        from rnn.io import describe_load_error
        what, blocked = describe_load_error(path, e)
        if blocked:
            raise UserError(f"{path} needs {blocked} to be unpickled, which could run code "
                            f"from the file; this tool refused it. If you trust where the file "
                            f"came from, pass --trust") from None
        raise UserError(f"cannot read {path}: {what}") from None


def original_to_model(ckpt: dict, name: str, hyper: dict) -> tuple[RateRNN, str]:
    """Weights of an original model ('weights': in (H, I), rec (H, H), out (1, H),
    bias (H, 1)) as a RateRNN; the rule from the name's prefix decides the
    dynamics (bptt/ga: 1 + tanh with linear readout; ff: tanh with
    tanh(W_out·tanh x); heb: tanh, output tanh(x₀), bias units clamped)."""
    if not isinstance(ckpt, dict) or "weights" not in ckpt:
        raise UserError("not a model of the original research code (no 'weights' entry)")
    w = ckpt["weights"]
    try:
        parts = {k: torch.as_tensor(np.asarray(w[k].detach().cpu() if torch.is_tensor(w[k])
                                               else w[k]), dtype=torch.float32)
                 for k in ("in", "rec", "out")}
        bias = w.get("bias")
    except (KeyError, TypeError, AttributeError) as e:
        raise UserError(f"the original model's weights are incomplete ({e})") from None
    W_in, W_rec, W_out = parts["in"], parts["rec"], parts["out"]
    H = W_rec.shape[0]
    if W_rec.shape != (H, H) or W_in.shape[0] != H or W_out.shape[-1] != H:
        raise UserError(f"inconsistent weight shapes: in {tuple(W_in.shape)}, rec "
                        f"{tuple(W_rec.shape)}, out {tuple(W_out.shape)}")
    b = torch.zeros(H) if bias is None else torch.as_tensor(
        np.asarray(bias.detach().cpu() if torch.is_tensor(bias) else bias),
        dtype=torch.float32).reshape(-1)
    from rnn.rules import get, rule_from_name
    rule = rule_from_name(name)
    act = "relu" if float(hyper.get("ReLU", 0) or 0) else get(rule).activation
    readout = get(rule).readout
    clamp = (BIAS_UNITS, BIAS_VALUES) if rule == "heb" else ((), ())
    dt = float(hyper.get("dt", DT) or DT)
    model = RateRNN(W_in[None], W_rec[None], W_out.reshape(1, 1, H), b[None], act, readout, dt,
                    *clamp)
    return model, rule
