"""Resumable training: the whole state of a run, so that a run cut short
(a killed job, a machine that went away) goes on where it stopped.

Every checkpoint (each 100 updates, and after the update under way when a run
is asked to stop) ``train_models.py`` writes, beside the networks' in-progress
files, one file ``NAME.ckpt`` per batch of networks holding:

* the run's *fingerprint*: everything that decides the networks (rule, task,
  rule config, stop rule, protocol, activation, seeds and names, device,
  thread count, package versions), as a JSON string;
* the training loop's state (:func:`rnn.training.fit`): the update reached,
  which networks still train, their histories and the stop rule's window of
  snapshots;
* the trainer's state: every instance attribute of the trainer made of
  tensors, numbers, lists, dicts and objects of those (the current networks,
  Adam's moments, a GA population, the Hebbian baselines, the counters of the
  random streams, ...).  It is read generically, so a new rule is resumable
  with no code of its own, provided its state lives in its attributes.

``train_models.py --resume`` (the grid runner always passes it) continues from
that file when its fingerprint equals the new run's.  Every draw of this tool
depends only on a network's seed and its update count (``rnn.rng``), so a
resumed run ends with the same networks, bit for bit, as one never stopped
(``tests/test_resume.py``).  A file that cannot be read, is not a checkpoint,
or belongs to another run (other arguments, device, thread count or versions:
the rounding could differ) is never used: it is set aside with a one-line note
and training starts afresh.  The file is removed when its run ends.

The files are read with ``torch.load(weights_only=True)``: plain tensors and
containers, no code.  This module imports torch only when it reads or writes
state, so that the grid runner can list checkpoints without it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

FORMAT = 1
SUFFIX = ".ckpt"
# attributes of a trainer that hold its fixed set-up, not its state
_SETUP = {"cfg", "task", "protocol", "device", "activation", "trainable", "rule"}

# train_models.py --resume refusing to train afresh over finished networks when the
# run's checkpoint cannot be used: its message, and the exit status by which the
# grid runner tells this refusal from any other error
UNUSABLE = "checkpoint cannot be used"
UNUSABLE_EXIT = 3


class ResumeError(Exception):
    """A checkpoint that cannot be used; the message says why (one line)."""


def path_for(directory: Path, first_name: str) -> Path:
    """The checkpoint of the batch whose first network is ``first_name``."""
    return Path(directory) / f"{first_name}{SUFFIX}"


# ---- generic state of an object -------------------------------------------------

class _Skip:
    pass


_SKIP = _Skip()


def _encode(v):
    """A weights_only-loadable copy of ``v``'s state, or _SKIP."""
    import torch
    if isinstance(v, torch.Tensor):
        return v.detach().to("cpu").clone()
    if isinstance(v, bool) or v is None or isinstance(v, (int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        items = [_encode(x) for x in v]
        if any(x is _SKIP for x in items):
            raise TypeError("cannot checkpoint a list holding devices or functions")
        return {"__list__": items}
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise TypeError("cannot checkpoint a dict whose keys are not strings")
        items = {k: _encode(x) for k, x in v.items()}
        if any(x is _SKIP for x in items.values()):
            raise TypeError("cannot checkpoint a dict holding devices or functions")
        return {"__dict__": items}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = {f.name: _encode(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return {"__fields__": {k: x for k, x in fields.items() if x is not _SKIP}}
    if isinstance(v, torch.device) or callable(v):
        return _SKIP                    # set-up: where it runs, bound helpers
    if hasattr(v, "__dict__") and not isinstance(v, type):
        return {"__attrs__": object_state(v)}
    # anything else (a numpy array, a generator, ...) would be silently lost on resume
    raise TypeError(f"cannot checkpoint a {type(v).__name__}: keep a trainer's state in "
                    f"tensors, numbers, lists, dicts or objects of those")


def object_state(obj) -> dict:
    """The state of ``obj``: its instance attributes that can be saved (see the
    module docstring), the set-up ones left out."""
    out = {}
    for k, v in vars(obj).items():
        if k in _SETUP:
            continue
        e = _encode(v)
        if e is not _SKIP:
            out[k] = e
    return out


def _decode(cur, saved, where: str):
    """``saved`` decoded into the shape of the current value ``cur``; raises
    ResumeError where they do not match."""
    import torch
    if isinstance(cur, torch.Tensor):
        if not isinstance(saved, torch.Tensor):
            raise ResumeError(f"{where} is not a tensor")
        if saved.shape != cur.shape or saved.dtype != cur.dtype:
            raise ResumeError(f"{where} has shape {tuple(saved.shape)} {saved.dtype}, expected "
                              f"{tuple(cur.shape)} {cur.dtype}")
        return saved.to(cur.device)
    if isinstance(cur, bool) or cur is None or isinstance(cur, str):
        if type(saved) is not type(cur):
            raise ResumeError(f"{where} is {type(saved).__name__}, expected "
                              f"{type(cur).__name__}")
        return saved
    if isinstance(cur, (int, float)):
        if type(saved) is not type(cur):
            raise ResumeError(f"{where} is {type(saved).__name__}, expected "
                              f"{type(cur).__name__}")
        return saved
    if isinstance(cur, (list, tuple)):
        items = _unwrap(saved, "__list__", where)
        if not isinstance(items, list):
            raise ResumeError(f"{where} is not a list")
        # lists grow during training (histories): elements are checked against
        # the current first element, or kept as they are when the list is empty
        if cur:
            out = [_decode(cur[min(i, len(cur) - 1)], x, f"{where}[{i}]")
                   for i, x in enumerate(items)]
        else:
            out = [_plain(x, f"{where}[{i}]") for i, x in enumerate(items)]
        return type(cur)(out)
    if isinstance(cur, dict):
        items = _unwrap(saved, "__dict__", where)
        if not isinstance(items, dict) or set(items) != set(cur):
            raise ResumeError(f"{where} has other keys than expected")
        return {k: _decode(cur[k], items[k], f"{where}.{k}") for k in cur}
    if dataclasses.is_dataclass(cur):
        items = _unwrap(saved, "__fields__", where)
        want = {f.name for f in dataclasses.fields(cur)
                if _encode(getattr(cur, f.name)) is not _SKIP}
        if not isinstance(items, dict) or set(items) != want:
            raise ResumeError(f"{where} has other fields than expected")
        return dataclasses.replace(cur, **{k: _decode(getattr(cur, k), items[k], f"{where}.{k}")
                                           for k in want})
    items = _unwrap(saved, "__attrs__", where)
    load_object_state(cur, items, where)
    return cur


def _plain(x, where: str):
    """A saved value with no current value to compare with: numbers, strings
    and lists of them only."""
    if isinstance(x, bool) or x is None or isinstance(x, (int, float, str)):
        return x
    if isinstance(x, dict) and set(x) == {"__list__"} and isinstance(x["__list__"], list):
        return [_plain(y, where) for y in x["__list__"]]
    raise ResumeError(f"{where} holds an unexpected value")


def _unwrap(saved, tag: str, where: str):
    if not isinstance(saved, dict) or set(saved) != {tag}:
        raise ResumeError(f"{where} is not what the trainer holds there")
    return saved[tag]


def load_object_state(obj, state, where: str = "trainer") -> None:
    """Put ``state`` (from :func:`object_state` of an object like ``obj``) into ``obj``."""
    cur = object_state(obj)
    if not isinstance(state, dict) or set(state) != set(cur):
        missing = sorted(set(cur) - set(state)) if isinstance(state, dict) else []
        raise ResumeError(f"{where} state has other attributes than expected"
                          + (f" (missing {', '.join(missing)})" if missing else ""))
    decoded = {k: _decode(getattr(obj, k), state[k], f"{where}.{k}") for k in cur}
    for k, v in decoded.items():
        setattr(obj, k, v)


# ---- files ---------------------------------------------------------------------

def fingerprint(**facts) -> str:
    """The run's identity as canonical JSON."""
    return json.dumps({"format": FORMAT, **facts}, sort_keys=True, default=str,
                      allow_nan=True)


def save(path: Path, fingerprint: str, loop: dict, trainer,
         segments: list[dict] | None = None) -> None:
    """Write the checkpoint atomically (a partial file never replaces a good one).
    ``segments``: where each part of the run so far ran (see :func:`segment`)."""
    import torch
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": FORMAT, "fingerprint": fingerprint, "loop": loop,
                "trainer": object_state(trainer), "segments": list(segments or [])}, tmp)
    os.replace(tmp, path)


def segment(from_update: int, cpu: str, platform: str, cpu_time=None) -> dict:
    """One stretch of a run: the update it started after and the machine it ran on.
    A checkpoint may be resumed on another CPU model (the fingerprint leaves the
    machine out: the run goes on, correct to the last bit or so); the networks'
    records then list the stretches.  ``cpu_time``: the run's CPU record
    [seconds, updates] where the stretch began (rnn.training.LoopState.cpu), so
    that the stretch's own pace can be read (rnn.grid.jobs.latest_pace); left
    out where the checkpoint had none."""
    g = {"from_update": int(from_update), "cpu": str(cpu), "platform": str(platform)}
    if cpu_time is not None:
        g["cpu_time"] = [float(cpu_time[0]), int(cpu_time[1])]
    return g


def cpu_record(v) -> bool:
    """Is ``v`` a CPU record [seconds, updates]: a finite float >= 0 and an int >= 0?"""
    return (isinstance(v, list) and len(v) == 2 and isinstance(v[0], float)
            and math.isfinite(v[0]) and v[0] >= 0 and isinstance(v[1], int)
            and not isinstance(v[1], bool) and v[1] >= 0)


def _segment_ok(g) -> bool:
    return (isinstance(g, dict) and {"from_update", "cpu", "platform"} <= set(g)
            <= {"from_update", "cpu", "platform", "cpu_time"}
            and isinstance(g["from_update"], int) and isinstance(g["cpu"], str)
            and isinstance(g["platform"], str)
            and ("cpu_time" not in g or cpu_record(g["cpu_time"])))


def load(path: Path, fingerprint: str) -> dict:
    """The checkpoint at ``path`` if it belongs to the run ``fingerprint``; raises
    ResumeError (why, one line) otherwise."""
    import torch

    from rnn.io import is_regular_file
    if not is_regular_file(path):
        raise ResumeError("is not a regular file")
    try:
        d = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:                        # noqa: BLE001 (any unreadable file)
        raise ResumeError(f"cannot be read ({type(e).__name__})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT or not isinstance(
            d.get("fingerprint"), str) or not isinstance(d.get("loop"), dict) \
            or not isinstance(d.get("trainer"), dict):
        raise ResumeError("is not a checkpoint of this tool's format")
    if d["fingerprint"] != fingerprint:
        raise ResumeError("belongs to another run ("
                          + _difference(d["fingerprint"], fingerprint) + ")")
    segs = d.get("segments", [])
    if not (isinstance(segs, list) and all(map(_segment_ok, segs))):
        raise ResumeError("has a damaged record of where it ran")
    return d


def _difference(a: str, b: str) -> str:
    try:
        da, db = json.loads(a), json.loads(b)
    except ValueError:
        return "unreadable fingerprint"
    keys = sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))
    return "differs in " + ", ".join(keys) if keys else "differs"


def set_aside(path: Path) -> Path:
    """Rename an unusable checkpoint out of the way (kept for inspection)."""
    path = Path(path)
    dest = path.with_name(path.name + ".unusable")
    os.replace(path, dest)
    return dest


def _read(path: Path) -> dict | None:
    """A checkpoint's contents for a summary, or None when it cannot be read."""
    import torch

    from rnn.io import is_regular_file
    if not is_regular_file(path):
        return None
    try:
        d = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:                             # noqa: BLE001 (unreadable: unknown)
        return None
    return d if isinstance(d, dict) and isinstance(d.get("loop"), dict) else None


def _step(d: dict | None) -> int | None:
    step = d["loop"].get("step") if d is not None else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def reached(path: Path) -> int | None:
    """The update a checkpoint goes on after, or None when it cannot be read."""
    return _step(_read(path))


def standing(path: Path) -> tuple[int | None, str]:
    """The update a checkpoint goes on after (None when it cannot be read) and,
    for a person, where its networks stand: each one's latest validation
    accuracy, or how it ended, and the accuracy its stop rule asks for.  The
    text is empty where the checkpoint does not hold these (nothing in it is
    trusted: a damaged field leaves the text out, never raises)."""
    d = _read(path)
    step = _step(d)
    if step is None:
        return None, ""
    loop = d["loop"]
    try:
        accs, at = loop["val_acc"], loop["val_steps"]
        active, status = loop["active"], loop["status"]
        per = []
        for p, hist in enumerate(accs):     # the validation of the latest update
            a = float(max(zip(at[p], hist))[1]) if hist else math.nan
            per.append(str(status[p]) if p not in active else
                       f"{a:.3f}" if math.isfinite(a) else "not validated yet")
    except Exception:                             # noqa: BLE001 (a summary: left out)
        return step, ""
    try:
        thr = float(json.loads(d["fingerprint"])["stop_rule"]["threshold"])
        asked = f"; the stop rule asks for {thr:g}" if math.isfinite(thr) else ""
    except Exception:                             # noqa: BLE001 (a summary: left out)
        asked = ""
    if all(x == "not validated yet" for x in per):
        return step, "not validated yet"
    return step, "latest validation accuracy " + ", ".join(per) + asked


def job_of(path: Path) -> tuple[list[int], list[str]] | None:
    """(seeds, names) of the run a checkpoint belongs to, or None when the file
    is unreadable (for the grid runner, which re-forms the same job)."""
    import torch

    from rnn.io import is_regular_file
    if not is_regular_file(path):
        return None
    try:
        d = torch.load(Path(path), map_location="cpu", weights_only=True)
        run = json.loads(d["fingerprint"])
        seeds, names = run["seeds"], run["names"]
    except Exception:                             # noqa: BLE001 (unusable: no job)
        return None
    if (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)
            and isinstance(names, list) and len(names) == len(seeds)):
        return seeds, names
    return None
