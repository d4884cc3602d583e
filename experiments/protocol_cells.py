"""The cells of the protocol experiment (experiments/protocol.py), read from its
grid file, experiments/grids/protocol.toml: each protocol cell is a folder with
a BPTT and a GA population (a grid cell per rule), shared by the training
(experiments/protocol.py) and the analysis (experiments/protocol_analysis.py).

A run may change where the networks live and how many of them count (the
command line's --models-dir, --per-rule, --max-steps): it uses copies of the
cells (:func:`configured`), so nothing is kept in module-level state.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "experiments" / "grids" / "protocol.toml"
NETWORKS = ROOT / "experiments" / "networks"

# the statuses of a network this experiment analyses (of rnn.training.FINISHED: a
# stalled or diverged network is kept on disk but is not one of the cell's)
USABLE = ("converged", "budget")


@dataclass(frozen=True)
class ProtocolCell:
    """One protocol cell: its folder's name and its grid cells, by rule."""
    name: str
    cells: dict                       # rule -> rnn.grid.format.Cell of the grid file
    root: Path = NETWORKS             # the folder of every cell's folder
    per_rule: int | None = None       # networks per rule instead of the grid's (quick looks, tests)
    max_steps: int | None = None      # a cap on every training run (quick looks, tests)

    @property
    def first(self):
        return next(iter(self.cells.values()))

    @property
    def description(self) -> str:
        return self.first.description or self.name

    @property
    def task(self) -> tuple[str, ...]:
        """train_models.py task flags."""
        return tuple(self.first.task_name.flags())

    @property
    def reuse_from(self) -> str | None:
        return self.first.reuse_from

    @property
    def count(self) -> dict:
        """Networks per rule, as the grid file plans them."""
        return {r: c.networks for r, c in self.cells.items()}

    def folder(self) -> Path:
        return self.root / self.name

    def counts(self) -> dict:
        return {r: self.per_rule or n for r, n in self.count.items()}


def _read() -> dict[str, ProtocolCell]:
    from rnn.grid.format import read_grid
    by_folder: dict[str, dict] = {}
    for c in read_grid(GRID).cells:
        by_folder.setdefault(c.folder, {})[c.rule] = c
    return {name: ProtocolCell(name, cells) for name, cells in by_folder.items()}


CELLS = _read()
ORDER = list(CELLS)                   # the grid file's order
FIRST_SEED = {r: c.first_seed for r, c in CELLS[ORDER[0]].cells.items()}


def seeds_of(cell: ProtocolCell, rule: str) -> list[int]:
    return grid_cell(cell, rule).seeds()


def grid_cell(cell: ProtocolCell, rule: str, chunk: int | None = None):
    """The grid cell of a protocol cell's rule, with the run's per_rule,
    max_steps and chunk: its networks live in ``cell.root / cell.name``."""
    c = cell.cells[rule]
    return dataclasses.replace(c, networks=cell.counts()[rule],
                               max_steps=cell.max_steps or c.max_steps, chunk=chunk or c.chunk)


def networks(cell: ProtocolCell, rule: str) -> list[tuple[Path, dict]]:
    """The finished networks of a cell and rule, one per seed, in seed order:
    (folder, meta) — the grid's reader (rnn.grid.jobs.networks), the
    ``reuse_from`` cell's network taken where it is the same network."""
    from rnn.grid.jobs import networks as grid_networks
    return grid_networks(cell.root, grid_cell(cell, rule), USABLE)


def configured(root: Path | None = None, per_rule: int | None = None,
               max_steps: int | None = None) -> dict[str, ProtocolCell]:
    """Every cell, with its networks under ``root`` (default experiments/networks)."""
    return {n: dataclasses.replace(c, root=root or NETWORKS, per_rule=per_rule,
                                   max_steps=max_steps) for n, c in CELLS.items()}
