"""Model files: ``models/NAME.pt`` (the truth) and ``models/NAME.json`` (for people).

``NAME.pt`` is a plain dict loadable with ``torch.load(weights_only=True)``:

    format      "rnn-learning-rules/model"
    version     1
    network     RateRNN.to_state(): W_in [H, I], W_rec [H, H], W_out [1, H], b [H],
                activation, readout, dt, clamp_idx, clamp_val; or, for a vanilla
                RNN, GRU or LSTM, CellRNN.to_state() (rnn.arch): arch,
                nonlinearity, weight_ih [G·H, I], weight_hh [G·H, H], bias_ih,
                bias_hh [G·H], W_out [1, H], b_out [1] (PyTorch's layout)
    meta        everything in NAME.json (rule, task, configs, seed, status, ...)
    history     dict of tensors (loss per update, validated steps and accuracies, ...)

Both files are written by :mod:`rnn.io.store` (the one guarded writer): each to a
temporary file in the same folder, then both renamed into place, .pt first, so
a failed write leaves the old pair, never half a file or a .pt without its
.json.

This package's other modules (a test keeps this list equal to the folder's
modules):

    store      the one guarded writer (a lock per name, both files or neither,
               no overwrite of a finished network) and the one reader of the
               network records in a folder
    importers  networks trained elsewhere, turned into this tool's model files
    groups     groups files: a label, then network names, per line
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from rnn.errors import UserError
from rnn.arch import CellRNN
from rnn.model import RateRNN

_UMASK = os.umask(0)
os.umask(_UMASK)
FORMAT = "rnn-learning-rules/model"
VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS_DIR = REPO_ROOT / "models"


def models_dir(path: str | os.PathLike | None = None) -> Path:
    """The models folder: ``path`` if given, else $RNN_MODELS_DIR, else <repo>/models."""
    if path is None:
        path = os.environ.get("RNN_MODELS_DIR") or DEFAULT_MODELS_DIR
    return Path(path)


# The rule for model names: letters, digits and _ - + =, with single dots allowed
# between them (no leading, trailing or doubled dot), at most NAME_MAX_CHARS
# characters.  The longest file a name leads to (a population member's
# NAME_0000_sparse_trajectories_ctx10.png, written through a temporary
# .FILE.PID-XXXXXXXX.tmp) adds at most NAME_RESERVE characters, so every file
# fits the usual 255-byte limit on file names.
NAME_MAX_CHARS = 120
NAME_RESERVE = 64
NAME_RULE = ("letters, digits and _ - + =, single dots between them, at most "
             f"{NAME_MAX_CHARS} characters")
_NAME_RE = re.compile(r"[A-Za-z0-9_+=-]+(\.[A-Za-z0-9_+=-]+)*")


def check_name(name: str) -> str:
    """A model name must be a plain file stem that follows NAME_RULE."""
    if not name:
        raise UserError("the model name is empty; give a name such as bptt_a")
    if "/" in name or "\\" in name or os.sep in name:
        raise UserError(f"model name {name!r} must be a plain name without path separators "
                        f"(files go into the models folder)")
    if name.startswith("-") or name.startswith("."):
        raise UserError(f"model name {name!r} must not start with '-' or '.'")
    if name.endswith(".pt") or name.endswith(".json"):
        raise UserError(f"give the model name without extension: {Path(name).stem!r}")
    if len(name) > NAME_MAX_CHARS:
        raise UserError(f"model name is {len(name)} characters long; the limit is "
                        f"{NAME_MAX_CHARS} (file names of its caches and figures must fit the "
                        f"file system)")
    if not _NAME_RE.fullmatch(name):
        raise UserError(f"model name {name!r} is not allowed: use {NAME_RULE}")
    return name


TEXT_INPUT_LIMIT = 16 * 2**20     # a groups, grid or hyperparameter file is a few kB


def is_regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file: the check before any file the tool
    reads is opened (a FIFO would block forever, a device never end)."""
    import stat
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def require_regular_file(path: Path, what: str) -> None:
    """A one-line UserError unless ``path`` (which exists) is a regular file."""
    if not is_regular_file(path):
        kind = "a folder" if Path(path).is_dir() else "not a regular file (a pipe or device)"
        raise UserError(f"{what} {path} is {kind}; it cannot be read as one")


def read_input_text(path: Path, what: str, limit: int = TEXT_INPUT_LIMIT) -> str:
    """The text of an input file the user names (a groups file, a grid file, ...),
    checked before it is read: it must exist and be a regular file (a folder, a
    FIFO that would block forever, a device, are refused), at most ``limit``
    bytes, and UTF-8 text (a byte-order mark is dropped).  Every problem is a
    one-line UserError naming ``what`` and the path."""
    import stat
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UserError(f"{what} {str(p)!r} not found") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {str(p)!r}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {str(p)!r} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {str(p)!r} is not a regular file (a pipe or device cannot "
                        f"be read as one)")
    if st.st_size > limit:
        raise UserError(f"{what} {str(p)!r} is {st.st_size} bytes, more than the {limit} such "
                        f"a file can sensibly hold")
    try:
        return p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{what} {str(p)!r} is not a UTF-8 text file") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {str(p)!r}: {e.strerror or e}") from None


def ensure_writable(directory: Path, longest_stem: int = 0, what: str = "the models folder",
                    hint: str = "(choose another with --models-dir or $RNN_MODELS_DIR)") -> Path:
    """Fail fast, with one line, if results cannot be written into ``directory``
    (created if missing: a path that is a file, or that cannot be created or
    written, is refused), or if a file name ``longest_stem`` + NAME_RESERVE
    characters long would not fit its file system.  ``what`` names the folder in
    the message (e.g. 'the --out folder'), ``hint`` says how to choose another."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise UserError(f"{what} {d} is not a folder {hint}")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {what} {d}: {e.strerror or e} {hint}") from None
    if not d.is_dir():
        raise UserError(f"{what} {d} is not a folder {hint}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"cannot write into {what} {d}: {e.strerror or e} {hint}") from None
    if longest_stem:
        try:
            limit = os.pathconf(d, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):
            limit = 255
        if longest_stem + NAME_RESERVE > limit:
            raise UserError(f"names of up to {longest_stem} characters are too long for the "
                            f"file system of {d} (file names there are limited to {limit}); "
                            f"use a name of at most {limit - NAME_RESERVE} characters")
    return d


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


_TMP_RE = re.compile(r"\.(?P<pid>\d+)-[^.]+\.tmp")
STALE_TMP_AGE_S = 3600     # a temporary file without a PID (older versions) is stale after


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove what interrupted writes of ``path`` left behind: its temporary
    files whose writing process is gone (and PID-less ones older than an
    hour).  A temporary file of a live process is never touched."""
    path = Path(path)
    prefix = f".{path.name}"
    removed = []
    try:
        entries = os.listdir(path.parent)
    except OSError:
        return removed
    for e in entries:
        if not (e.startswith(prefix) and e.endswith(".tmp")):
            continue
        rest = e[len(prefix):]
        m = _TMP_RE.fullmatch(rest)
        f = path.parent / e
        try:
            if m:
                if _pid_alive(int(m["pid"])):
                    continue
            elif time.time() - f.stat().st_mtime < STALE_TMP_AGE_S:
                continue
            f.unlink()
            removed.append(f)
        except OSError:
            pass
    return removed


def write_temporary(path: Path, write) -> Path:
    """Call ``write(file_object)`` on a new temporary file beside ``path``
    (synced to disk, with the permissions of a new file) and return its name;
    on any failure the temporary file is removed and the error raised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file, then rename it to ``path``."""
    tmp = write_temporary(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def versions() -> dict:
    import numpy
    import scipy
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scipy": scipy.__version__,
            "platform": platform.platform(), "cpu": cpu_model()}


def cpu_model() -> str:
    """The processor's model name (machines of one kind differ: the rounding of
    the same computation can differ in the last bit between CPU models)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


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
    if isinstance(obj, float) and not math.isfinite(obj):
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
               directory: Path, source: Path | None = None, lock=None,
               force: bool = False) -> tuple[Path, Path]:
    """Write NAME.pt and NAME.json for the single network ``model`` (P = 1),
    through the guarded writer (:mod:`rnn.io.store`): under ``lock`` (a
    :class:`rnn.io.store.NameLock` holding NAME; without one, NAME is locked for
    this write alone), both files or neither, a finished network kept unless
    ``force`` or written earlier under the same lock.

    ``source``: the file an imported network comes from; its content is then
    checked as load_model would check it (a UserError naming the source),
    before anything is written."""
    from rnn.io.store import NameLock, write_network
    if model.n_networks != 1:
        raise ValueError("save_model takes one network")
    meta = _jsonable(meta)
    payload = {"format": FORMAT, "version": VERSION, "network": model.to_state(0),
               "meta": meta,
               "history": {k: v.detach().cpu() for k, v in history.items()}}
    if source is not None:
        check_payload(Path(source), payload)
    text = dumps_strict(meta, indent=2)
    if lock is not None:
        return write_network(name, payload, text, Path(directory), lock, force)
    with NameLock(Path(directory), [name], what=f"saving {name}") as own:
        return write_network(name, payload, text, Path(directory), own, force)


def dumps_strict(obj, indent: int = 1) -> str:
    """Strict JSON text (non-finite numbers become null), with a final newline."""
    return json.dumps(_jsonable(obj), indent=indent, allow_nan=False) + "\n"


def describe_load_error(path: Path, e: Exception) -> tuple[str, str | None]:
    """(what is wrong with the file, the global a pickle wanted, if that was it)."""
    msg = str(e)
    m = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL)\s+([\w.]+)", msg)
    if m:
        return f"it contains a pickled object ({m.group(1)}) that is not plain data", m.group(1)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        size = Path(path).stat().st_size
    except OSError as oe:
        return f"it cannot be read ({oe.strerror or oe})", None
    if size == 0:
        return "it is empty", None
    if head.startswith(b"PK\x03\x04") and not zipfile.is_zipfile(path):
        return (f"it is truncated or damaged (an incomplete PyTorch archive of {size} bytes; "
                f"was its writing interrupted?)"), None
    if not head.startswith(b"PK") and not head.startswith(b"\x80"):
        return "it is not a PyTorch file (its content is not a saved model)", None
    first = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
    return f"it is damaged ({first[:120]})", None



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
    require_regular_file(path, "model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, corrupted, or pickled with foreign classes
        what, blocked = describe_load_error(path, e)
        hint = (f"; if it is a model of the original research code, convert it with: python "
                f"import_model.py original {name}") if blocked else \
            "; train it again or restore it from a copy"
        raise UserError(f"cannot read model file {path}: {what}{hint}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        legacy = isinstance(payload, dict) and "weights" in payload
        hint = (f"; it looks like a model of the original research code: convert it with "
                f"'python import_model.py original {name}'") if legacy else ""
        raise UserError(f"{path} is not a model file of this tool{hint}")
    check_payload(path, payload)
    try:
        net = payload["network"]
        model = CellRNN.from_state(net) if "arch" in net else RateRNN.from_state(net)
    except Exception as e:
        raise UserError(f"model file {path} is damaged: {e}") from None
    return LoadedModel(name, path, model, payload["meta"], payload.get("history", {}))


from rnn.validate import MAX_CONTEXTS, MAX_STEPS  # noqa: E402 (what a model file may claim)
NETWORK_FIELDS = ("W_in", "W_rec", "W_out", "b", "activation", "readout", "dt", "clamp_idx",
                  "clamp_val")


def _short(v) -> str:
    """A value for a one-line message: tensors by their shape, the rest cut short."""
    if isinstance(v, torch.Tensor):
        return f"a tensor of shape {list(v.shape)}"
    text = " ".join(repr(v).split())
    return text if len(text) <= 60 else text[:57] + "..."


def check_payload(path: Path, payload: dict) -> None:
    """The content of a model file, checked once where it is loaded: a known
    format version, every field of the network, finite weights and numbers,
    and the meta the analyses need (the task).  A UserError names the file
    and the field."""
    def bad(field: str, what: str):
        raise UserError(f"model file {path}: {field} {what}; train it again or restore it "
                        f"from a copy")

    v = payload.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= VERSION:
        bad("version", f"is {_short(v)}, not a format version this tool knows (1…{VERSION})")
    net = payload.get("network")
    if not isinstance(net, dict):
        bad("network", "is missing")
    if "arch" in net:
        _check_cell(net, bad)
        _check_meta(payload, net["weight_ih"].shape[-1], bad)
        return
    for k in NETWORK_FIELDS:
        if k not in net:
            bad(f"network.{k}", "is missing")
    for k in ("W_in", "W_rec", "W_out", "b"):
        t = net[k]
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            bad(f"network.{k}", "is not a tensor of numbers")
        if not bool(torch.isfinite(t).all()):
            bad(f"network.{k}", "holds non-finite values (NaN or infinity)")
    hidden = net["W_rec"].shape[-1]
    ci, cv = net["clamp_idx"], net["clamp_val"]
    if not (isinstance(ci, (list, tuple)) and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < hidden for i in ci)
            and len(set(ci)) == len(ci)):
        bad("network.clamp_idx", f"is {_short(ci)}, not distinct unit indices in "
                                 f"0…{hidden - 1}")
    if not (isinstance(cv, (list, tuple)) and len(cv) == len(ci) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            for x in cv)):
        bad("network.clamp_val", f"is {_short(cv)}, not one finite value per clamped unit")
    dt = net["dt"]
    if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not math.isfinite(dt) or \
            not 0 < dt <= 1:
        bad("network.dt", f"is {_short(dt)}; the Euler step must be in (0, 1]")
    _check_meta(payload, net["W_in"].shape[-1], bad, "network.W_in")


def _check_cell(net: dict, bad) -> None:
    """The network of a discrete-time architecture (rnn.arch.CellRNN.to_state)."""
    from rnn.arch import CELLS, GATES, NONLINEARITIES, PARAMS
    arch = net["arch"]
    if arch not in CELLS:
        bad("network.arch", f"is {_short(arch)}, not an architecture of this tool "
                            f"({', '.join(CELLS)})")
    nl = net.get("nonlinearity", "tanh")
    if nl not in NONLINEARITIES or (arch != "vanilla" and nl != "tanh"):
        bad("network.nonlinearity", f"is {_short(nl)}, not one a {arch} network has")
    for k in PARAMS:
        t = net.get(k)
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            bad(f"network.{k}", "is missing or not a tensor of numbers")
        if not bool(torch.isfinite(t).all()):
            bad(f"network.{k}", "holds non-finite values (NaN or infinity)")
    H = net["weight_hh"].shape[-1]
    G = GATES[arch]
    O = net["W_out"].shape[0] if net["W_out"].dim() == 2 else 0
    want = {"weight_ih": (G * H, net["weight_ih"].shape[-1]), "weight_hh": (G * H, H),
            "bias_ih": (G * H,), "bias_hh": (G * H,), "W_out": (max(O, 1), H), "b_out": (O,)}
    for k, shape in want.items():
        if tuple(net[k].shape) != shape:
            bad(f"network.{k}", f"has shape {list(net[k].shape)}; a {arch} network of {H} "
                                f"units needs {list(shape)}")


def _check_meta(payload: dict, n_inputs: int, bad, input_field: str = "network.weight_ih"
                ) -> None:
    """The meta the analyses need (its task), and the network's inputs that task's."""
    meta = payload.get("meta")
    if not isinstance(meta, dict):
        bad("meta", "is missing")
    task = meta.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        bad("meta.task", "is missing")
    for k, low in (("noise", 0.0), ("mean", 0.0)):
        x = task.get(k)
        if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x) or \
                x < low:
            bad(f"meta.task.{k}", f"is {_short(x)}, not a finite number of at least {low:g}")
    N = task.get("N")
    from tasks.table import ALIASES, TABLE, TaskName, family_of
    known = ", ".join([*ALIASES, *(f"{f}N" if r.has_contexts else f for f, r in TABLE.items())])
    family = family_of(task["name"])
    if family is None:
        bad("meta.task.name", f"is {_short(task['name'])}, not a task of this tool ({known})")
    rec = TABLE[family]
    if not rec.has_contexts and N is not None:
        bad("meta.task.N", f"is {_short(N)}; the {rec.title} task has no contexts (null)")
    if rec.has_contexts and not (isinstance(N, int) and not isinstance(N, bool)
                                 and 1 <= N <= MAX_CONTEXTS):
        bad("meta.task.N", f"is {_short(N)}, not an integer in 1…{MAX_CONTEXTS}")
    tn = TaskName(family, N if rec.has_contexts else None)
    if task["name"] != tn.spelling:
        bad("meta.task.name", f"is {_short(task['name'])}, not a task of this tool ({known}) "
                              f"that matches its N ({_short(N)})")
    steps = task.get("steps", 750)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 2 <= steps <= MAX_STEPS:
        bad("meta.task.steps", f"is {_short(steps)}, not an integer in 2…{MAX_STEPS} (the "
                               f"trial length; the paper's is 750)")
    inputs = tn.make(steps=2).n_inputs
    if n_inputs != inputs:
        bad(input_field, f"has {n_inputs} inputs, but its task ({task['name']}) has {inputs}")


def package_versions_and_command() -> dict:
    return {"versions": versions(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:])}
