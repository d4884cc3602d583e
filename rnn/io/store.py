"""The one guarded writer of networks: every path that saves a network
(``train_models.py`` with or without ``--resume``/``--count``, the grid's jobs,
``rnn.api.save``, ``import_model.py``) goes through :func:`write_network`
while it holds the network's name with :class:`NameLock`.

What it guarantees:

* **A name has one writer.**  ``NameLock`` creates ``.NAME.lock`` beside the
  network exclusively (``O_CREAT | O_EXCL``) and keeps it for the whole run; a
  second run of the same name is refused in one line.  The lock records the
  holder's host, PID and process start time: a lock whose process is gone (or
  whose PID now belongs to another process) is stale and taken over.  It is
  released on every exit the interpreter sees (``with`` and ``atexit``); a
  killed process leaves a stale lock, which the next run recognises.
* **Finished means the model file says so.**  :func:`status_on_disk` reads
  ``NAME.json`` and, where that is missing or damaged, the record inside
  ``NAME.pt`` (the truth).
* **No overwrite of a finished network** without ``force``: a network this
  run has not written itself and whose file says it is finished is refused.
* **Both files or neither.**  ``NAME.pt`` and ``NAME.json`` are serialised to
  temporary files first; only when both are complete are they renamed into
  place (``.pt`` first).  Any failure while writing (a full disk makes
  ``torch.save`` raise a ``RuntimeError``, not an ``OSError``) leaves the old
  pair untouched and raises :class:`SaveError`, which the trainer answers by
  saving into a rescue folder (:func:`rescue_folder`) and naming it.
"""
from __future__ import annotations

import atexit
import datetime as _dt
import json
import os
import re
import socket
import tempfile
from pathlib import Path

import torch

from rnn.errors import UserError

LOCK_SUFFIX = ".lock"


class SaveError(Exception):
    """Writing a network's files failed (nothing of the new pair is in place)."""

    def __init__(self, path: Path, cause: BaseException):
        lines = str(cause).strip().splitlines()
        why = getattr(cause, "strerror", None) or (lines[0] if lines else type(cause).__name__)
        super().__init__(f"could not write {path} ({why})")
        self.path, self.cause = path, cause


def lock_path(directory: Path, name: str) -> Path:
    return Path(directory) / f".{name}{LOCK_SUFFIX}"


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields from the state on (Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and ')': split after its last ')'
    return stat[stat.rfind(")") + 2:].split()


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None
    where it cannot be read: with the PID it names one process for good."""
    fields = _stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _alive(holder: dict) -> bool:
    """Whether the process recorded in a lock still runs (a lock of another
    host cannot be checked from here: it is taken as held)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return False            # a zombie: dead, only not yet reaped by its parent
    started = holder.get("started_ticks")
    return started is None or _start_time(pid) in (None, started)


class NameLock:
    """Hold network names in a folder exclusively, for as long as a run writes
    them (a context manager; :meth:`release` is idempotent).  ``written``:
    the names this holder has saved, which it may save again."""

    def __init__(self, directory: Path, names: list[str], what: str = "a run"):
        self.directory = Path(directory)
        self.names = list(dict.fromkeys(names))
        self.what = what
        self.held: list[Path] = []
        self.written: set[str] = set()

    def _record(self) -> bytes:
        return json.dumps({
            "host": socket.gethostname(), "pid": os.getpid(),
            "started_ticks": _start_time(os.getpid()), "what": self.what,
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
        ).encode()

    def _take(self, path: Path) -> bool:
        """Create the lock file with its record in one step: the record is written to
        a file of this process's own, then hard-linked to the lock's name (atomic and
        exclusive), so no other run can find the lock empty — an empty or unreadable
        lock is taken as stale — between its creation and its writing.  Where hard
        links are not supported, an exclusive create and then the write."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(self._record())
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            return self._take_without_link(path)
        finally:
            tmp.unlink(missing_ok=True)
        self.held.append(path)
        return True

    def _take_without_link(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(self._record())
        self.held.append(path)
        return True

    def acquire(self) -> "NameLock":
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            for name in self.names:
                path = lock_path(self.directory, name)
                if self._take(path):
                    continue
                holder = _read_holder(path)
                if holder is not None and _alive(holder):
                    raise UserError(
                        f"{self.directory / name} is being written by another run "
                        f"({holder.get('what', 'a run')}, PID {holder.get('pid')} on "
                        f"{holder.get('host')} since {holder.get('since')}); wait for it to end, "
                        f"or delete {path} if that run is gone")
                # stale: its process is gone (or the file is unreadable)
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                if not self._take(path):
                    raise UserError(f"{self.directory / name} is being written by another run "
                                    f"(it took {path} just now); wait for it to end")
        except BaseException:
            self.release()
            raise
        atexit.register(self.release)
        return self

    def release(self) -> None:
        me = os.getpid()
        for path in self.held:
            holder = _read_holder(path)
            if holder is None or holder.get("pid") == me:
                try:
                    path.unlink()
                except OSError:
                    pass
        self.held = []

    def __enter__(self) -> "NameLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def meta_from_pt(path: Path, need_seed: bool = True) -> dict | None:
    """The record saved inside a model file (``meta``), or None when it cannot
    be read (or, with ``need_seed``, has no integer seed)."""
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True).get("meta")
    except Exception:                   # noqa: BLE001 (unreadable: no record)
        return None
    if not isinstance(meta, dict) or (need_seed and not isinstance(meta.get("seed"), int)):
        return None
    return meta


def records(folder: Path, stem: str) -> dict[int, list[dict]]:
    """The one reader of network records on disk: every network named
    ``STEM_sSEED`` or ``STEM_sSEED_NNN`` (a job's members) in ``folder`` that
    has its model file, by seed, in name order.  Its record is NAME.json or,
    where that is missing or damaged, the record inside NAME.pt (the truth)."""
    pat = re.compile(rf"{re.escape(stem)}_s\d+(_\d{{3}})?")
    out: dict[int, list[dict]] = {}
    for pt in sorted(Path(folder).glob(f"{stem}_s*.pt")):
        if not pat.fullmatch(pt.stem):
            continue
        try:
            m = json.loads(pt.with_suffix(".json").read_text())
            ok = isinstance(m, dict) and isinstance(m.get("seed"), int)
        except (OSError, ValueError):
            ok = False
        if not ok:
            m = meta_from_pt(pt)
            if m is None:
                continue
        out.setdefault(int(m["seed"]), []).append(m)
    return out


def status_on_disk(directory: Path, name: str) -> str | None:
    """The status of the network NAME on disk, or None where there is none: from
    NAME.json, or, where that is missing or damaged, from the record inside
    NAME.pt (the network's own file is the source of truth, so a finished network
    whose record was lost is never trained again over it)."""
    pt = Path(directory) / f"{name}.pt"
    if not pt.exists():
        return None
    st = None
    try:
        st = json.loads((Path(directory) / f"{name}.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        pass
    if not isinstance(st, str):
        meta = meta_from_pt(pt, need_seed=False)
        st = meta.get("status") if meta else None
    return st if isinstance(st, str) else None


def is_finished(directory: Path, name: str) -> bool:
    from rnn.training import FINISHED
    return status_on_disk(directory, name) in FINISHED


def write_network(name: str, payload: dict, meta_text: str, directory: Path,
                  lock: NameLock, force: bool = False) -> tuple[Path, Path]:
    """Write NAME.pt (``payload``) and NAME.json (``meta_text``) into
    ``directory`` as a pair, under ``lock`` (which must hold NAME).  A finished
    network there that ``lock`` has not written itself is refused (UserError)
    unless ``force``.  Any failure of the writing raises :class:`SaveError`
    with nothing of the new pair in place."""
    from rnn.io import write_temporary
    directory = Path(directory)
    if lock_path(directory, name) not in lock.held:
        raise RuntimeError(f"write_network: {name} is not held by this run's lock")
    if not force and name not in lock.written and is_finished(directory, name):
        raise UserError(f"{directory / name}.pt is a finished network "
                        f"({status_on_disk(directory, name)}); pass --force (force=True) to "
                        f"overwrite it")
    pt, js = directory / f"{name}.pt", directory / f"{name}.json"
    tmps: list[Path] = []
    try:
        tmps.append(write_temporary(pt, lambda f: torch.save(payload, f)))
        tmps.append(write_temporary(js, lambda f: f.write(meta_text.encode("utf-8"))))
        os.replace(tmps[0], pt)
        os.replace(tmps[1], js)
    except Exception as e:          # noqa: BLE001 (any failure: the caller rescues)
        for t in tmps:
            t.unlink(missing_ok=True)
        raise SaveError(pt, e) from e
    lock.written.add(name)
    return pt, js


def rescue_folder() -> Path:
    """A new folder for networks the models folder could not take."""
    return Path(tempfile.mkdtemp(prefix="rnn-rescued-"))
