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

A comparison's metrics are the names of the metric table (rnn/analysis/metrics.py:
svcca, pwcca, cka, procrustes, dsa and ``topology``, the attractor input
topology).

Cell keys: task, N, rule, arch (rate | vanilla | gru | lstm; rnn/arch.py), noise, networks, first_seed, protocol (clean |
original), shared_x0 / lenient_stop / original_budgets (true/false: one
switch of the protocol), hidden, max_steps, stall_window, updates (train exactly
this many updates, past the stop rule) with snapshots (a list of updates after
which each network is also kept: ``NAME_uUUUU``), chunk (networks per job), name
(only for an entry that makes one cell), folder (a sub-folder of the grid's
models folder holding the cell's networks: cells in different folders may
share a name, and are then referred to as FOLDER/NAME), reuse_from (the
folder of a cell of the same name whose network of a seed counts as this
cell's when it reached the stop rule before the stall window could act, so
that a cell that differs from it only in when a run is stopped — its budget
or its stall rule — need not train it again), description (free text, shown
by --list).  A cell's name defaults to ``TASK-RULE-vNNN-PROTOCOL`` (plus the
switches and hidden size when set).

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
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from rnn import validate as V
from rnn.analysis.metrics import METRICS, TOPOLOGY
from rnn.errors import UserError
from rnn.rules import REGISTRY, RULES, check_hidden
from rnn.sizing import require
from tasks.table import TaskName, parse

ROOT = Path(__file__).resolve().parents[2]    # the repository (models_dir is relative to it)

_CELL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9=+-]*")
_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_=+-]{0,59}")
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
    folder: str | None = None          # a sub-folder of the grid's models folder
    reuse_from: str | None = None      # a sibling folder whose early-converged networks count
    description: str | None = None
    arch: str | None = None            # the network (rnn.arch.ARCHS); None: the rate network

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
        try:
            if self.arch is not None:
                REGISTRY[self.rule].check_arch(self.arch)
            REGISTRY[self.rule].check_task(parse(self.task, self.N).make(steps=2))
        except UserError as e:
            raise UserError(f"{where}: {e}") from None
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
        for f in ("folder", "reuse_from"):
            v = getattr(self, f)
            if v is not None and (not isinstance(v, str) or not _FOLDER.fullmatch(v)):
                raise UserError(f"{where}: {f} must be a folder name of letters, digits, "
                                f"'-', '_', '+', '=' (no path), got {v!r}")
        if self.reuse_from is not None and self.reuse_from == self.folder:
            raise UserError(f"{where}: reuse_from names the cell's own folder")
        if self.description is not None and not isinstance(self.description, str):
            raise UserError(f"{where}: description must be a string")

    @property
    def key(self) -> str:
        """The cell's name in its grid: FOLDER/NAME when it has a folder."""
        return f"{self.folder}/{self.name}" if self.folder else self.name

    def where(self, models: Path) -> Path:
        """The folder of the cell's networks, in the grid's models folder ``models``."""
        return Path(models) / self.folder if self.folder else Path(models)

    def default_name(self) -> str:
        task = self.task if self.N is None else f"{self.task}{self.N}"   # as the file spells it
        arch = [] if self.arch in (None, "rate") else [self.arch]
        parts = [task, self.rule, *arch, f"v{round(self.noise * 100):03d}", self.protocol]
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
        for flag, v in (("--arch", self.arch), ("--hidden", self.hidden),
                        ("--max-steps", self.max_steps),
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

    def cell(self, key: str) -> Cell:
        """The cell of this key (its name, or FOLDER/NAME)."""
        for c in self.cells:
            if c.key == key:
                return c
        raise KeyError(key)


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
        if c.key in seen:
            raise UserError(f"grid file {path.name}: two cells are named {c.key!r} (give "
                            f"them different settings or names)")
        seen[c.key] = 1
    for c in cells:
        if c.reuse_from is not None and f"{c.reuse_from}/{c.name}" not in seen:
            raise UserError(f"grid file {path.name}: cell {c.key!r}: reuse_from "
                            f"{c.reuse_from!r} has no cell named {c.name!r}")
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
    by_name = {c.key: c for c in cells}
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
                raise UserError(f"{where}: cells {groups[label]!r} and {c.key!r} both have "
                                f"{label}; narrow cells = {{ ... }} so one cell has each value")
            groups[label] = c.key
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




def cell_dict(cell: Cell) -> dict:
    return {k: v for k, v in asdict(cell).items() if v is not None}
