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


def _state_dict(obj, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a saved state dict: the file's dict itself, or the one dict
    of tensors inside it (a checkpoint's 'state_dict' / 'model_state_dict')."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {str(k): v for k, v in obj.items()}
    if isinstance(obj, dict):
        inner = [v for v in obj.values() if isinstance(v, dict) and v
                 and all(isinstance(t, torch.Tensor) for t in v.values())]
        if len(inner) == 1:
            return {str(k): v for k, v in inner[0].items()}
    raise UserError(f"{path} is not a PyTorch state dict (a dict of tensors, e.g. "
                    f"torch.save(model.state_dict(), FILE))")


def import_torch(path: Path, nonlinearity: str = "tanh", readout: str | None = None,
                 outputs: int = 1):
    """A PyTorch ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (one layer, one direction)
    with a linear readout, from a state dict saved with ``torch.save`` (read with
    ``weights_only=True``: no code from the file runs), as a
    :class:`rnn.arch.CellRNN`.  The architecture comes from the weights' shapes
    (1, 3 or 4 blocks of rows); the readout is the one other 2-D weight with H
    columns (or the module named ``readout``: its ``.weight`` and ``.bias``); of
    several outputs the first is the decision (its sign; ``outputs``: the first
    that many, for a task with several, the flip-flop).  Returns (network,
    what was read: the keys and the readout's output count)."""
    from rnn.io import describe_load_error, require_regular_file
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found")
    require_regular_file(path, "state dict")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        what, _ = describe_load_error(path, e)
        raise UserError(f"cannot read {path}: {what}") from None
    return cell_from_state_dict(_state_dict(obj, path), str(path), nonlinearity, readout,
                                outputs)


def cell_from_state_dict(sd: dict, path: str, nonlinearity: str = "tanh",
                         readout: str | None = None, outputs: int = 1):
    """:func:`import_torch` on a state dict in memory (``path`` names it in messages)."""
    from rnn.arch import CellRNN
    sd = {k: v.detach().cpu() for k, v in sd.items()}
    pre, arch, (W_ih, W_hh, b_ih, b_hh) = _recurrent_layer(sd, path)
    out_key, W, b = _readout(sd, path, pre, W_hh.shape[1], readout, outputs)
    try:
        model = CellRNN(arch, W_ih[None], W_hh[None], b_ih[None], b_hh[None],
                        W[:outputs][None], b[None], nonlinearity)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    for k, v in model.tensors().items():
        if not bool(torch.isfinite(v).all()):
            raise UserError(f"{path}: {k} holds non-finite values (NaN or infinity)")
    return model, {"recurrent_layer": pre.rstrip(".") or "(top level)", "readout": out_key,
                   "readout_outputs": int(W.shape[0]), "arch": arch}


def _recurrent_layer(sd: dict, path: str):
    """(key prefix, architecture, (W_ih, W_hh, b_ih, b_hh)) of the state dict's one
    recurrent layer; the architecture from the row blocks (1, 3, 4 per unit)."""
    rec = [k for k in sd if k.endswith("weight_hh_l0")]
    if len(rec) != 1:
        raise UserError(f"{path}: expected one recurrent layer (a key ending in weight_hh_l0), "
                        f"found {len(rec)}")
    pre = rec[0][:-len("weight_hh_l0")]
    if any(k.startswith(pre) and ("_l1" in k or "_reverse" in k or "weight_hr" in k) for k in sd):
        raise UserError(f"{path}: only one layer, one direction and no projection can be "
                        f"imported")
    W_hh, W_ih = sd[rec[0]].float(), sd.get(pre + "weight_ih_l0")
    if W_ih is None or W_hh.dim() != 2 or W_ih.dim() != 2:
        raise UserError(f"{path}: {pre}weight_ih_l0 is missing or not a matrix")
    rows, H = W_hh.shape
    arch = {1: "vanilla", 3: "gru", 4: "lstm"}.get(rows // H if rows % H == 0 else 0)
    if arch is None or W_ih.shape[0] != rows:
        raise UserError(f"{path}: weights of shapes {list(W_ih.shape)} and {list(W_hh.shape)} "
                        f"are not those of an RNN, GRU or LSTM")
    zero = torch.zeros(rows)
    b_ih, b_hh = (sd.get(pre + k, zero).float().reshape(-1) for k in ("bias_ih_l0", "bias_hh_l0"))
    return pre, arch, (W_ih.float(), W_hh, b_ih, b_hh)


def _readout(sd: dict, path: str, pre: str, H: int, readout: str | None, outputs: int = 1):
    """(its weight's key, W [outputs, H], b [its first ``outputs``]) of the readout:
    the module named ``readout``, else the one other 2-D weight with H columns."""
    if readout is not None:
        if readout + ".weight" not in sd:
            raise UserError(f"{path}: no readout {readout!r} (no key {readout}.weight); keys: "
                            f"{', '.join(sorted(sd))[:300]}")
        key = readout + ".weight"
    else:
        cands = [k for k, v in sd.items() if not k.startswith(pre) and v.dim() == 2
                 and v.shape[1] == H]
        if len(cands) != 1:
            raise UserError(f"{path}: cannot tell the readout ({len(cands)} matrices of {H} "
                            f"columns besides the recurrent layer: {', '.join(cands) or 'none'}); "
                            f"name it with --readout")
        key = cands[0]
    W = sd[key].float()
    if W.dim() != 2 or W.shape[1] != H or W.shape[0] < outputs:
        raise UserError(f"{path}: {key} has shape {list(W.shape)}, not [outputs, {H}] with at "
                        f"least {outputs} outputs")
    bias_key = key[:-len("weight")] + "bias"
    b = sd[bias_key].float().reshape(-1)[:outputs] if bias_key in sd else torch.zeros(outputs)
    return key, W, b
