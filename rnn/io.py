"""Model files: ``models/NAME.pt`` (the truth) and ``models/NAME.json`` (for people).

``NAME.pt`` is a plain dict loadable with ``torch.load(weights_only=True)``:

    format      "rnn-learning-rules/model"
    version     1
    network     RateRNN.to_state(): W_in [H, I], W_rec [H, H], W_out [1, H], b [H],
                activation, readout, dt, clamp_idx, clamp_val
    meta        everything in NAME.json (rule, task, configs, seed, status, ...)
    history     dict of tensors (loss per update, validated steps and accuracies, ...)

Both files are written to a temporary file in the same folder and renamed
into place, .pt first: an interrupted write leaves the old pair or the new
.pt, never half a file.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

from rnn.errors import UserError
from rnn.model import RateRNN

_UMASK = os.umask(0)
os.umask(_UMASK)
FORMAT = "rnn-learning-rules/model"
VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS_DIR = REPO_ROOT / "models"


def models_dir(path: str | os.PathLike | None = None) -> Path:
    """The models folder: ``path`` if given, else $RNN_MODELS_DIR, else <repo>/models."""
    if path is None:
        path = os.environ.get("RNN_MODELS_DIR") or DEFAULT_MODELS_DIR
    return Path(path)


def check_name(name: str) -> str:
    """A model name must be a plain file stem."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name:
        raise UserError(f"model name {name!r} must be a plain name without path separators "
                        f"(files go into the models folder)")
    if name.startswith("-") or name.startswith("."):
        raise UserError(f"model name {name!r} must not start with '-' or '.'")
    if name.endswith(".pt") or name.endswith(".json"):
        raise UserError(f"give the model name without extension: {Path(name).stem!r}")
    return name


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def versions() -> dict:
    import numpy
    import scipy
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scipy": scipy.__version__,
            "platform": platform.platform()}


def _jsonable(obj):
    """Plain Python types only (weights_only loading rejects e.g. TorchVersion)."""
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item") and hasattr(obj, "dtype"):      # NumPy scalars
        return _jsonable(obj.item())
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    raise TypeError(f"cannot store {type(obj).__name__} in model metadata")


def save_model(name: str, model: RateRNN, meta: dict, history: dict[str, torch.Tensor],
               directory: Path) -> tuple[Path, Path]:
    """Write NAME.pt and NAME.json for the single network ``model`` (P = 1)."""
    if model.n_networks != 1:
        raise ValueError("save_model takes one network")
    meta = _jsonable(meta)
    payload = {"format": FORMAT, "version": VERSION, "network": model.to_state(0),
               "meta": meta,
               "history": {k: v.detach().cpu() for k, v in history.items()}}
    pt = Path(directory) / f"{name}.pt"
    js = Path(directory) / f"{name}.json"
    atomic_write(pt, lambda f: torch.save(payload, f))
    atomic_write_text(js, json.dumps(meta, indent=2, sort_keys=False) + "\n")
    return pt, js


class LoadedModel:
    """A network read from disk: ``model`` (RateRNN, P = 1), ``meta``, ``history``."""

    def __init__(self, name: str, path: Path, model: RateRNN, meta: dict, history: dict):
        self.name, self.path, self.model, self.meta, self.history = name, path, model, meta, history

    @property
    def task(self):
        from tasks import DecisionTask
        return DecisionTask.from_dict(self.meta["task"])

    @property
    def rule(self) -> str:
        return self.meta.get("rule", "?")


def available_models(directory: Path) -> list[str]:
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.pt")
                  if not p.name.startswith(".") and not p.name.endswith(".orig.pt"))


def load_model(name: str, directory: Path | None = None) -> LoadedModel:
    """Load ``NAME`` from the models folder, with a one-line error for any problem."""
    directory = models_dir(directory)
    name = check_name(name)
    path = Path(directory) / f"{name}.pt"
    if not path.exists():
        have = available_models(directory)
        listing = ", ".join(have[:12]) + (" ..." if len(have) > 12 else "") if have else "none"
        raise UserError(f"no model {name!r} in {directory} (models there: {listing})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupted, or pickled with foreign classes
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ""
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            hint = (" (it needs more than plain tensors; if it is a model of the original "
                    f"research code, convert it with: python import_model.py original {name})")
        raise UserError(f"cannot read model file {path}: {first[:160]}{hint}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        legacy = isinstance(payload, dict) and "weights" in payload
        hint = (f"; it looks like a model of the original research code: convert it with "
                f"'python import_model.py original {name}'") if legacy else ""
        raise UserError(f"{path} is not a model file of this tool{hint}")
    try:
        model = RateRNN.from_state(payload["network"])
    except Exception as e:
        raise UserError(f"model file {path} is damaged: {e}") from None
    return LoadedModel(name, path, model, payload.get("meta", {}), payload.get("history", {}))


def package_versions_and_command() -> dict:
    return {"versions": versions(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:])}
