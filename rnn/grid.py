"""Experiment grids: a TOML file of cells, split into training jobs that any
worker can run, found again by seed.

A grid file (read with the standard library's ``tomllib``)::

    [grid]
    name = "small"            # used in file names
    models_dir = "experiments/networks/paper"   # optional: the networks' folder,
                              # relative to the repository (default models/grid-NAME)
    noise = 0.5               # defaults for every cell (any cell key)
    networks = 4
    first_seed = 20000
    protocol = "clean"

    [[cells]]
    task = "cdi"              # rdm | cdi | ncdiN, or ncdi with N (tasks/table.py)
    rule = ["bptt", "ga"]     # a list expands the entry: one cell per combination
    max_steps = 300           # optional cap (default: the rule's budget)

    [[compare]]               # optional: after training, compare cells
    name = "cdi_rules"
    groups = { BPTT = "cdi-bptt-v050-clean", GA = "cdi-ga-v050-clean" }
    metrics = ["topology", "svcca", "cka"]    # default: topology and every metric but dsa

    [[compare]]               # groups formed by one cell key: one group per value
    name = "rdm_noise"
    by = "noise"              # groups "noise=0.1", "noise=0.5", ... of the cells that
    cells = { task = "rdm", rule = "bptt" }   # match every key given here

A comparison's metrics are the names of the metric table (rnn/metrics.py:
svcca, pwcca, cka, procrustes, dsa and ``topology``, the attractor input
topology).

Cell keys: task, N, rule, noise, networks, first_seed, protocol (clean |
original), shared_x0 / lenient_stop / original_budgets (true/false: one
switch of the protocol), hidden, max_steps, stall_window, updates (train exactly
this many updates, past the stop rule) with snapshots (a list of updates after
which each network is also kept: ``NAME_uUUUU``), chunk (networks per job), name
(only for an entry that makes one cell).  A cell's name defaults to
``TASK-RULE-vNNN-PROTOCOL`` (plus the switches and hidden size when set).

Every cell trains networks with the seeds first_seed … first_seed+networks−1
(cells of one entry share them: a paired design).  A job trains a run of
consecutive seeds as one ``train_models.py --count`` batch named
``CELL_sSEED``; whichever job or worker trained a seed, its network is found by
the seed recorded in its JSON, so the same grid gives the same networks however
it was scheduled, and a finished seed is never trained again.
"""
from __future__ import annotations

import itertools
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rnn import validate as V
from rnn.errors import UserError
from rnn.metrics import METRICS, TOPOLOGY
from rnn.rules import REGISTRY, RULES, check_hidden
from rnn.resume import UNUSABLE_EXIT
from rnn.sizing import require
from rnn.store import records
from rnn.training import FINISHED  # noqa: F401 (the statuses a finished network has)
from tasks.table import TaskName, parse

ROOT = Path(__file__).resolve().parents[1]
_CELL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9=+-]*")
# memory of listing a grid, per cell and per network (a job per network at chunk 1):
# measured with tracemalloc as ~330 and ~150 bytes, with a margin
CELL_BYTES, NETWORK_BYTES = 1000, 200


@dataclass(frozen=True)
class Cell:
    """One cell of a grid: a population of networks trained alike."""
    task: str
    rule: str
    N: int | None = None
    noise: float = 0.5
    networks: int = 10
    first_seed: int = 0
    protocol: str = "clean"
    shared_x0: bool | None = None
    lenient_stop: bool | None = None
    original_budgets: bool | None = None
    hidden: int | None = None
    max_steps: int | None = None
    stall_window: int | None = None
    updates: int | None = None         # train exactly this many updates (--updates)
    snapshots: tuple | None = None     # ... and keep the networks after these (--snapshots)
    chunk: int | None = None
    name: str = ""

    def __post_init__(self):
        where = f"cell {self.name or f'{self.task}/{self.rule}'}"
        parse(self.task, self.N, what=f"{where}: task")      # the task table's spellings
        for f in ("shared_x0", "lenient_stop", "original_budgets"):
            v = getattr(self, f)
            if v is not None and not isinstance(v, bool):
                raise UserError(f"{where}: {f} must be true or false, got {v!r}")
        for f in ("task", "rule", "protocol", "name"):
            if not isinstance(getattr(self, f), str):
                raise UserError(f"{where}: {f} must be a string, got {getattr(self, f)!r}")
        if self.rule not in RULES:
            raise UserError(f"{where}: rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if self.protocol not in ("clean", "original"):
            raise UserError(f"{where}: protocol must be clean or original")
        for f, low in (("networks", 1), ("first_seed", 0), ("hidden", 2), ("max_steps", 1),
                       ("stall_window", 0), ("updates", 1), ("chunk", 1)):
            v = getattr(self, f)
            if v is not None:
                V.integer(v, f"{where}: {f}", low)
        if self.updates is not None and self.max_steps is not None:
            raise UserError(f"{where}: give updates (exactly this many) or max_steps (at most "
                            f"this many), not both")
        if self.snapshots is not None:
            snaps = self.snapshots
            if self.updates is None:
                raise UserError(f"{where}: snapshots needs updates")
            if not (isinstance(snaps, (list, tuple)) and snaps and all(
                    isinstance(u, int) and not isinstance(u, bool) and 1 <= u < self.updates
                    for u in snaps) and len(set(snaps)) == len(snaps)):
                raise UserError(f"{where}: snapshots must be a list of distinct updates in "
                                f"1..{self.updates - 1}, got {snaps!r}")
            object.__setattr__(self, "snapshots", tuple(sorted(snaps)))
        V.noise(self.noise, f"{where}: noise")
        V.seed_range(self.first_seed, self.networks, f"{where}: first_seed")
        if self.hidden is not None:
            try:
                check_hidden(self.rule, self.hidden)
            except UserError as e:
                raise UserError(f"{where}: {e}") from None
        if not self.name:
            object.__setattr__(self, "name", self.default_name())
        if not _CELL_NAME.fullmatch(self.name) or len(self.name) > 60:
            raise UserError(f"{where}: a cell name uses letters, digits, '-', '+', '=' (no "
                            f"'_' or '.'), at most 60 characters; got {self.name!r}")

    def default_name(self) -> str:
        task = self.task if self.N is None else f"{self.task}{self.N}"   # as the file spells it
        parts = [task, self.rule, f"v{round(self.noise * 100):03d}", self.protocol]
        for s in ("shared_x0", "lenient_stop", "original_budgets"):
            v = getattr(self, s)
            if v is not None:
                parts.append(f"{'' if v else 'no'}{s.replace('_', '')}")
        if self.hidden:
            parts.append(f"h{self.hidden}")
        if self.updates:
            parts.append(f"u{self.updates}")
        return "-".join(parts)

    def train_args(self) -> list[str]:
        """train_models.py flags for this cell (no name, seed or count)."""
        a = ["-v", repr(float(self.noise)), *self.task_name.flags(), "--rule", self.rule,
             "--protocol", self.protocol]
        for s in ("shared_x0", "lenient_stop", "original_budgets"):
            v = getattr(self, s)
            if v is not None:
                a.append(f"--{'' if v else 'no-'}{s.replace('_', '-')}")
        for flag, v in (("--hidden", self.hidden), ("--max-steps", self.max_steps),
                        ("--stall-window", self.stall_window), ("--updates", self.updates)):
            if v is not None:
                a += [flag, str(v)]
        if self.snapshots:
            a += ["--snapshots", *map(str, self.snapshots)]
        return a

    @property
    def task_name(self) -> TaskName:
        """The cell's task in the task table (family and N)."""
        return parse(self.task, self.N)

    def seeds(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.networks))

    def chunk_size(self, override: int | None = None) -> int:
        return override or self.chunk or REGISTRY[self.rule].chunk


COMPARE_METRICS = (TOPOLOGY, "svcca", "pwcca", "cka", "procrustes")   # DSA is slow: on request
KNOWN_METRICS = (TOPOLOGY, *METRICS)


@dataclass(frozen=True)
class GridComparison:
    name: str
    groups: dict                       # label -> cell name
    metrics: list = field(default_factory=lambda: list(COMPARE_METRICS))


@dataclass(frozen=True)
class Grid:
    name: str
    cells: list
    comparisons: list
    path: str = ""
    models_dir: str | None = None      # relative to the repository root

    def folder(self, override=None) -> Path:
        """The grid's models folder: ``override``, else its models_dir, else
        grid-NAME in the models folder (models/ beside the scripts, or
        $RNN_MODELS_DIR)."""
        if override:
            return Path(override).resolve()
        if self.models_dir:
            return (ROOT / self.models_dir).resolve()
        from rnn.io import models_dir
        return (models_dir() / f"grid-{self.name}").resolve()

    def cell(self, name: str) -> Cell:
        for c in self.cells:
            if c.name == name:
                return c
        raise KeyError(name)


CELL_KEYS = {f.name for f in fields(Cell)}


def read_grid(path) -> Grid:
    """Parse a grid file; every problem is a one-line UserError naming the file."""
    import tomllib
    path = Path(path)
    from rnn.io import read_input_text
    text = read_input_text(path, "grid file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"grid file {path.name} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - {"grid", "cells", "compare"})
    if unknown:
        raise UserError(f"grid file {path.name}: unknown table or key {unknown[0]!r} at the top "
                        f"level (known: [grid], [[cells]], [[compare]])")
    head = data.get("grid", {})
    if not isinstance(head, dict):
        raise UserError(f"grid file {path.name}: [grid] must be a table")
    name = head.get("name", path.stem)
    if not isinstance(name, str) or not _CELL_NAME.fullmatch(name.replace("_", "-")):
        raise UserError(f"grid file {path.name}: name must be letters, digits, '-' or '_'")
    mdir = head.get("models_dir")
    if mdir is not None and (not isinstance(mdir, str) or not mdir or Path(mdir).is_absolute()
                             or ".." in Path(mdir).parts):
        raise UserError(f"grid file {path.name}: models_dir must be a folder inside the "
                        f"repository, given relative to it, got {mdir!r}")
    defaults = {k: v for k, v in head.items() if k not in ("name", "models_dir")}
    bad = set(defaults) - CELL_KEYS
    if bad:
        raise UserError(f"grid file {path.name}: unknown key {sorted(bad)[0]!r} in [grid] "
                        f"(cell keys: {', '.join(sorted(CELL_KEYS))})")
    entries = data.get("cells")
    if not isinstance(entries, list) or not entries:
        raise UserError(f"grid file {path.name} has no [[cells]] entry")
    cells = [c for k, entry in enumerate(entries, 1)
             for c in _cells_of(path.name, k, entry, defaults)]
    total = sum(c.networks for c in cells)
    require(total * NETWORK_BYTES, f"grid file {path.name}: listing its {total} networks",
            hint="give fewer networks per cell")
    seen: dict[str, int] = {}
    for c in cells:
        if c.name in seen:
            raise UserError(f"grid file {path.name}: two cells are named {c.name!r} (give "
                            f"them different settings or names)")
        seen[c.name] = 1
    comps = [_comparison(path.name, k, e, cells)
             for k, e in enumerate(data.get("compare", []), 1)]
    names = [c.name for c in comps]
    for c in comps:
        if names.count(c.name) > 1:
            raise UserError(f"grid file {path.name}: two [[compare]] entries are named "
                            f"{c.name!r}")
    return Grid(name, cells, comps, str(path), mdir)


def _cells_of(fname: str, k: int, entry, defaults: dict) -> list[Cell]:
    """The cells of one [[cells]] entry (a list value expands into one cell per
    value), checked before any work; refused before expanding when they could
    not fit in memory."""
    where = f"grid file {fname}: [[cells]] entry {k}"
    if not isinstance(entry, dict):
        raise UserError(f"{where} is not a table")
    bad = set(entry) - CELL_KEYS
    if bad:
        raise UserError(f"{where}: unknown key {sorted(bad)[0]!r} (known: "
                        f"{', '.join(sorted(CELL_KEYS))})")
    spec = {**defaults, **entry}
    for req in ("task", "rule"):
        if req not in spec:
            raise UserError(f"{where} has no {req}")
    keys = list(spec)
    # a list expands into cells, but snapshots is itself a list (a list of them expands)
    values = [v if isinstance(v, list) and not (key == "snapshots" and not any(
                  isinstance(x, list) for x in v)) else [v] for key, v in spec.items()]
    for key, v in zip(keys, values):
        if not v:
            raise UserError(f"{where}: {key} = [] makes no cell (give at least one value)")
    n_combos = math.prod(len(v) for v in values)
    require(n_combos * CELL_BYTES, f"{where}'s {n_combos} cells", hint="give fewer values per key")
    if "name" in entry and n_combos > 1:
        raise UserError(f"{where} makes {n_combos} cells, so it cannot have one name")
    cells = []
    for combo in itertools.product(*values):
        try:
            cells.append(Cell(**dict(zip(keys, combo))))
        except TypeError as e:
            raise UserError(f"{where}: {e}") from None
    return cells


def _comparison(fname: str, k: int, e, cells: list[Cell]) -> GridComparison:
    """One [[compare]] entry, checked against the grid's cells before any work."""
    where = f"grid file {fname}: [[compare]] entry {k}"
    if not isinstance(e, dict) or not isinstance(e.get("name"), str) or \
            not _CELL_NAME.fullmatch(e["name"].replace("_", "-")) or len(e["name"]) > 60:
        raise UserError(f"{where} needs a name of letters, digits, '-' or '_'")
    where = f"grid file {fname}: [[compare]] {e['name']!r}"
    bad = set(e) - {"name", "groups", "by", "cells", "metrics"}
    if bad:
        raise UserError(f"{where}: unknown key {sorted(bad)[0]!r} (known: name, groups, by, "
                        f"cells, metrics)")
    by_name = {c.name: c for c in cells}
    if "by" in e:
        if "groups" in e:
            raise UserError(f"{where}: give groups or by, not both")
        key, match = e["by"], e.get("cells", {})
        if key not in CELL_KEYS - {"name"}:
            raise UserError(f"{where}: by must be a cell key, got {key!r}")
        if not isinstance(match, dict) or set(match) - CELL_KEYS:
            raise UserError(f"{where}: cells must be a table of cell keys, e.g. "
                            f"{{ task = \"rdm\", rule = \"bptt\" }}")
        chosen = [c for c in cells if all(getattr(c, m) == v for m, v in match.items())]
        groups: dict = {}
        for c in chosen:
            v = getattr(c, key)
            label = f"{key}={v:g}" if isinstance(v, float) else f"{key}={v}"
            if label in groups:
                raise UserError(f"{where}: cells {groups[label]!r} and {c.name!r} both have "
                                f"{label}; narrow cells = {{ ... }} so one cell has each value")
            groups[label] = c.name
        if len(groups) < 2:
            raise UserError(f"{where}: the cells that match {match} have fewer than two "
                            f"values of {key}")
    else:
        groups = e.get("groups")
        if not isinstance(groups, dict) or not groups:
            raise UserError(f"{where} needs groups = {{ LABEL = \"cell\", ... }} or by = KEY")
        for lab, cname in groups.items():
            if cname not in by_name:
                raise UserError(f"{where} names cell {cname!r}, which the grid does not have")
        if len(set(groups.values())) < len(groups):
            raise UserError(f"{where}: two labels name the same cell")
    metrics = e.get("metrics", list(COMPARE_METRICS))
    if not isinstance(metrics, list) or not metrics or \
            any(m not in KNOWN_METRICS for m in metrics):
        raise UserError(f"{where}: metrics must be a list of {', '.join(KNOWN_METRICS)}, got "
                        f"{metrics!r}")
    return GridComparison(e["name"], dict(groups), list(dict.fromkeys(metrics)))


# ---- finding networks by seed ------------------------------------------------

def cell_metas(folder: Path, cell: Cell) -> dict[int, list[dict]]:
    """Every network record of ``cell`` in ``folder``, by seed (rnn.store.records)."""
    return records(folder, cell.name)


def finished(folder: Path, cell: Cell) -> dict[int, dict]:
    """The finished network of each trained seed of the cell: seed -> meta."""
    out = {}
    for seed, ms in cell_metas(folder, cell).items():
        done = [m for m in ms if m.get("status") in FINISHED]
        if done and seed in range(cell.first_seed, cell.first_seed + cell.networks):
            out[seed] = sorted(done, key=lambda m: m["name"])[0]
    return out


@dataclass(frozen=True)
class Job:
    """Train seeds [seed, seed+count) of one cell as one batch."""
    cell: Cell
    seed: int
    count: int

    @property
    def name(self) -> str:
        return f"{self.cell.name}_s{self.seed}"

    @property
    def key(self) -> str:
        return f"train-{self.name}-{self.count}"


def jobs_for(cell: Cell, folder: Path, chunk: int | None = None,
             done: Iterable[int] = ()) -> list[Job]:
    """The jobs still needed: runs of consecutive unfinished seeds, in chunks
    (``done``: seeds to count as finished, e.g. networks found elsewhere)."""
    have = set(finished(folder, cell)) | set(done)
    missing = [s for s in cell.seeds() if s not in have]
    out = []
    # a job cut short goes on from its checkpoint: the same job again, whatever
    # the chunk size now and though some of its networks have finished since
    for seed, count, _ in resumable(folder, cell):
        seeds = range(seed, seed + count)
        if any(s in missing for s in seeds) and all(s in cell.seeds() for s in seeds):
            out.append(Job(cell, seed, count))
            missing = [s for s in missing if s not in seeds]
    return out + _chunks(cell, missing, cell.chunk_size(chunk))


def _chunks(cell: Cell, missing: list[int], size: int) -> list[Job]:
    """Jobs of at most ``size`` consecutive seeds covering ``missing`` (sorted)."""
    out, k = [], 0
    while k < len(missing):
        n = 1
        while n < size and k + n < len(missing) and missing[k + n] == missing[k] + n:
            n += 1
        out.append(Job(cell, missing[k], n))
        k += n
    return out


def resumable(folder: Path, cell: Cell) -> list[tuple[int, int, Path]]:
    """(first seed, count, checkpoint) of each job of ``cell`` with a checkpoint
    in ``folder`` (rnn.resume; whether it can be used is for train_models.py to
    say), in seed order, overlapping ones left out."""
    from rnn.resume import SUFFIX, job_of
    pat = re.compile(rf"{re.escape(cell.name)}_s(\d+)(_0+)?")
    out, taken = [], set()
    for p in sorted(Path(folder).glob(f"{cell.name}_s*{SUFFIX}")):
        m = pat.fullmatch(p.name[:-len(SUFFIX)])
        job = job_of(p) if m else None
        if job is None:
            continue
        seeds, names = job
        first = int(m.group(1))
        if seeds != list(range(first, first + len(seeds))) or set(seeds) & taken:
            continue
        taken |= set(seeds)
        out.append((first, len(seeds), p))
    return sorted(out)


def interleave(per_cell: list[list[Job]]) -> list[Job]:
    """The jobs of several cells in rounds: ordered by how far into its cell
    each job starts (its first seed's place among the cell's seeds, as a
    fraction of them), cells in grid order at equal places.  Every cell then
    advances at the same pace whatever its chunk size, and a run cut short
    leaves every cell partly trained rather than some full and others empty."""
    keyed = [((j.seed - j.cell.first_seed) / j.cell.networks, c, k, j)
             for c, js in enumerate(per_cell) for k, j in enumerate(js)]
    return [j for *_, j in sorted(keyed, key=lambda t: t[:3])]


def _die_with_parent():                                  # pragma: no cover (in the child)
    """Linux: the training subprocess is killed when the worker running it dies,
    so a retried job never races an orphan."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_job(job: Job, folder: str, threads: int = 1, device: str = "cpu",
            deadline: float | None = None) -> dict:
    """Train one job (a ``train_models.py --count`` subprocess) unless its seeds
    are already finished, or it would start after ``deadline`` (a time.time()
    value: it is then skipped, its record's ``trained`` False and ``skipped``
    True); the record of what ran where.  Runs on a worker."""
    import socket
    folder_p = Path(folder)
    t0 = time.time()
    host = f"{socket.gethostname()}:{os.getpid()}"
    seeds = range(job.seed, job.seed + job.count)
    if deadline is not None and t0 > deadline:
        return {"job": job.name, "cell": job.cell.name, "seeds": [job.seed, job.count],
                "trained": False, "skipped": True, "worker": host, "seconds": 0.0,
                "status": ["not started (deadline)"] * job.count}
    have = finished(folder_p, job.cell)
    if all(s in have for s in seeds):
        return {"job": job.name, "cell": job.cell.name, "seeds": [job.seed, job.count],
                "trained": False, "worker": host, "seconds": 0.0,
                "status": [have[s]["status"] for s in seeds]}
    # --resume: go on from the job's checkpoint where it has one; --force only
    # when no network of the job is finished (a resumed job keeps those as they are)
    from rnn.resume import path_for, reached
    ck = path_for(folder_p, job.name if job.count == 1 else f"{job.name}_000")
    went_on = reached(ck) if ck.exists() else None
    cmd = [sys.executable, str(ROOT / "train_models.py"), job.name, *job.cell.train_args(),
           "--count", str(job.count), "--seed", str(job.seed), "--device", device,
           "--models-dir", str(folder_p), "--resume", "--quiet"]
    if not any(s in have for s in seeds):
        cmd.append("--force")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env,
                       preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
        message = f"train_models.py failed for {job.name} (exit {r.returncode}): {last}"
        if r.returncode == UNUSABLE_EXIT:
            # its checkpoint was set aside (another device, thread count or versions)
            # and some of its networks are finished: the others train afresh, in jobs
            # of their own within this one's seeds
            have = finished(folder_p, job.cell)
            for sub in _chunks(job.cell, [s for s in seeds if s not in have],
                               job.cell.chunk_size()):
                rec = run_job(sub, folder, threads, device, deadline)
                if rec.get("error"):
                    return {**rec, "job": job.name, "seeds": [job.seed, job.count],
                            "status": ["failed"] * job.count}
            have = finished(folder_p, job.cell)
            return {"job": job.name, "cell": job.cell.name, "seeds": [job.seed, job.count],
                    "trained": True, "worker": host, "seconds": round(time.time() - t0, 2),
                    "status": [have[s]["status"] if s in have else "missing" for s in seeds],
                    "note": "its checkpoint could not be used; the unfinished networks "
                            "trained afresh"}
        if r.returncode == 2:
            # refused input: the same on every try, so reported once, not retried
            return {"job": job.name, "cell": job.cell.name, "seeds": [job.seed, job.count],
                    "trained": False, "worker": host, "seconds": round(time.time() - t0, 2),
                    "status": ["failed"] * job.count, "error": message}
        raise RuntimeError(message)     # a crash or a killed worker: Dask retries it
    remove_unfinished(folder_p, job.cell)
    have = finished(folder_p, job.cell)
    return {"job": job.name, "cell": job.cell.name, "seeds": [job.seed, job.count],
            "trained": True, "worker": host, "seconds": round(time.time() - t0, 2),
            "status": [have[s]["status"] if s in have else "missing" for s in seeds],
            **({"resumed_after": went_on} if went_on is not None else {})}


def remove_unfinished(folder: Path, cell: Cell) -> None:
    """Delete the files of interrupted runs of seeds that another job has since
    finished (under another chunk's name), so each seed has one network."""
    for seed, ms in cell_metas(folder, cell).items():
        if any(m.get("status") in FINISHED for m in ms):
            for m in ms:
                if m.get("status") not in FINISHED:
                    for ext in ("pt", "json"):
                        (folder / f"{m['name']}.{ext}").unlink(missing_ok=True)


def cell_dict(cell: Cell) -> dict:
    return {k: v for k, v in asdict(cell).items() if v is not None}


class Pool:
    """The Dask client that runs training jobs: to a running scheduler's
    workers (``scheduler`` address), or of an embedded local cluster (one
    worker per core, or per GPU; ``workers`` to choose), started on first use
    and kept until :meth:`close` (or the end of a ``with`` block), so that
    several :func:`run_jobs` calls in a row start one cluster."""

    def __init__(self, scheduler: str | None = None, security=None,
                 workers: int | None = None, device: str = "cpu"):
        self.scheduler, self.security, self.workers, self.device = \
            scheduler, security, workers, device
        self.client = self.cluster = None
        self.n_workers = 0

    def start(self):
        if self.client is not None:
            return self.client
        import logging

        from distributed import Client, LocalCluster
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="10s", security=self.security)
            except (OSError, TimeoutError, ValueError, TypeError) as e:
                raise UserError(f"cannot reach the Dask scheduler at {self.scheduler}: {e}"
                                ) from None
            self.n_workers = len(self.client.scheduler_info().get("workers", {})) or 1
            return self.client
        if self.device == "cuda":
            import torch
            if torch.cuda.device_count() == 0:
                raise UserError("--device cuda: no GPU is visible")
            self.n_workers = self.workers or torch.cuda.device_count()
        else:
            self.n_workers = self.workers or os.cpu_count() or 1
        import dask
        # no time-to-live for silent workers: a run paused for a while (SIGSTOP,
        # e.g. to benchmark beside it) would otherwise, after 5 minutes, have its
        # workers dropped and their jobs restarted; a worker that dies is still
        # seen by its nanny at once
        with dask.config.set({"distributed.scheduler.worker-ttl": None}):
            self.cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                        processes=True, dashboard_address=":0",
                                        silence_logs=logging.ERROR)
        self.client = Client(self.cluster)
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_jobs(jobs: list[Job], folder: Path, scheduler: str | None = None, security=None,
             workers: int | None = None, threads: int | None = None, device: str = "cpu",
             retries: int = 2, quiet: bool = False, deadline_s: float | None = None,
             pool: Pool | None = None) -> tuple[list[dict], list[dict]]:
    """Run training jobs on Dask: a running scheduler's workers (``scheduler``
    address) or an embedded local cluster (one worker per core, or per GPU),
    or the given ``pool``'s (kept open after); progress as jobs finish.
    Returns (records of the finished jobs, failures).

    Every job uses ``threads`` CPU threads (default 1 wherever it runs): the
    networks are then bit-identical however the grid is scheduled —
    multithreaded kernels round differently at other thread counts.
    ``deadline_s``: no job starts later than that many seconds from now (the
    jobs under way finish)."""
    from distributed import as_completed
    own = pool is None
    pool = pool or Pool(scheduler, security, workers, device)
    client = pool.start()
    n_workers = pool.n_workers
    threads = threads or 1
    print(f"Dask: {n_workers} worker(s), {threads} thread(s) per job; dashboard "
          f"{client.dashboard_link}", flush=True)
    deadline = None if deadline_s is None else time.time() + deadline_s
    futures = {client.submit(run_job, j, str(folder), threads, device, deadline, key=j.key,
                             pure=False, retries=retries): j for j in jobs}
    left = {}
    for j in jobs:
        left[j.cell.name] = left.get(j.cell.name, 0) + 1
    records, failed = [], []
    t0 = time.time()
    try:
        for fut in as_completed(futures):
            j = futures[fut]
            try:
                rec = fut.result()
                if rec.get("error"):
                    raise RuntimeError(rec["error"])
                records.append(rec)
                conv = sum(s == "converged" for s in rec["status"])
                done = (f"{conv}/{j.count} converged" if not j.cell.updates else
                        f"{sum(s == 'budget' for s in rec['status'])}/{j.count} trained "
                        f"{j.cell.updates} updates")
                went_on = (f" (went on after update {rec['resumed_after']})"
                           if "resumed_after" in rec else "")
                line = (f"{j.name}: {done} in {rec['seconds']:.0f} s on "
                        f"{rec['worker']}{went_on}" if rec["trained"] else
                        f"{j.name}: not started (past the deadline)" if rec.get("skipped")
                        else f"{j.name}: already trained")
            except Exception as e:                   # noqa: BLE001 (reported, then summed up)
                failed.append({"job": j.name, "cell": j.cell.name, "error": str(e)})
                line = f"{j.name}: FAILED ({e})"
            left[j.cell.name] -= 1
            if not quiet:
                print(f"[{time.time() - t0:6.0f} s] {line} | jobs {len(records) + len(failed)}"
                      f"/{len(jobs)}, cells done {sum(v == 0 for v in left.values())}"
                      f"/{len(left)}, failed {len(failed)}", flush=True)
    finally:
        if own:
            pool.close()
    return records, failed
