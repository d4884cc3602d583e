"""The cells of the protocol experiment (experiments/protocol.py): what each trains,
where its networks live, and which trained networks count, shared by the training
(experiments/protocol.py) and the analysis (experiments/protocol_analysis.py).

A cell's folder, its networks per rule and its training cap are fields of the
cell (``root``, ``per_rule``, ``max_steps``): a run that changes them (the
command line's --models-dir, --per-rule, --max-steps) uses copies of the cells
(:func:`configured`), so nothing is kept in module-level state.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ROOT / "experiments" / "networks"
FIRST_SEED = {"bptt": 13000, "ga": 14000}


@dataclass(frozen=True)
class ProtocolCell:
    name: str
    task: tuple[str, ...]             # train_models.py task flags
    flags: tuple[str, ...]            # protocol flags
    count: dict                       # networks per rule
    description: str
    # another cell whose networks are identical here when they reached the stop
    # rule early (see reusable)
    reuse_from: str | None = None
    root: Path = NETWORKS             # the folder of every cell's folder
    per_rule: int | None = None       # networks per rule instead of count (quick looks, tests)
    max_steps: int | None = None      # a cap on every training run (quick looks, tests)

    def folder(self) -> Path:
        return self.root / self.name

    def counts(self) -> dict:
        return {r: self.per_rule or n for r, n in self.count.items()}

    def sibling(self, name: str) -> "ProtocolCell":
        """The cell ``name`` with this cell's root, per_rule and max_steps."""
        return dataclasses.replace(CELLS[name], root=self.root, per_rule=self.per_rule,
                                   max_steps=self.max_steps)


CDI, N1 = ("--N", "2"), ("--N", "1")
CELLS = {c.name: c for c in [
    ProtocolCell("original", CDI, ("--protocol", "original"), {"bptt": 24, "ga": 24},
         "original protocol (all switches)"),
    ProtocolCell("clean", CDI, ("--protocol", "clean"), {"bptt": 24, "ga": 24},
         "this tool's protocol (no switch)"),
    ProtocolCell("original-shared_x0", CDI, ("--protocol", "original", "--no-shared-x0"),
         {"bptt": 24, "ga": 24}, "original without the shared initial state"),
    ProtocolCell("original-lenient_stop", CDI, ("--protocol", "original", "--no-lenient-stop"),
         {"bptt": 24, "ga": 24}, "original without the lenient stop rule"),
    ProtocolCell("original-budgets", CDI, ("--protocol", "original", "--no-original-budgets"),
         {"bptt": 24, "ga": 24}, "original without the original budgets",
         reuse_from="original"),
    ProtocolCell("n1-original", N1, ("--protocol", "original"), {"bptt": 24, "ga": 25},
         "N = 1, original protocol"),
]}
ORDER = ["original", "clean", "n1-original", "original-shared_x0", "original-lenient_stop",
         "original-budgets"]


def seeds_of(cell: ProtocolCell, rule: str) -> list[int]:
    return [FIRST_SEED[rule] + k for k in range(cell.counts()[rule])]


# the statuses of a network this experiment analyses (of rnn.training.FINISHED: a
# stalled or diverged network is kept on disk but is not one of the cell's)
USABLE = ("converged", "budget")


def reusable(meta: dict) -> bool:
    """Is this network of ``original`` the very network the budgets ablation
    would train from the same seed?  The two protocols differ only in when a
    run is stopped for lack of progress (BPTT budget 2000 vs 20,000 updates;
    the stall rule off vs on, window 500), never in what an update does, and
    every draw comes from the network's own seeded streams.  So a network that
    reached the stop rule before either of those could act — fewer updates
    than the stall window, hence than both budgets — is trained identically."""
    from rnn.training import StopConfig
    return (meta.get("status") == "converged"
            and int(meta.get("steps", 10**9)) < StopConfig().stall_window)


def metas(folder: Path, rule: str) -> dict[int, list[dict]]:
    """Every network record of ``rule`` in ``folder``, by seed (rnn.io.store.records)."""
    from rnn.io.store import records
    out = {seed: [m for m in ms if m.get("rule") == rule]
           for seed, ms in records(folder, rule).items()}
    return {seed: ms for seed, ms in out.items() if ms}


def networks(cell: ProtocolCell, rule: str) -> list[tuple[Path, dict]]:
    """The finished networks of a cell and rule, one per seed, in seed order:
    (folder, meta).  Found by seed, whatever chunk trained them; a seed this
    cell has not trained takes the ``reuse_from`` cell's network when that one
    is the same network (:func:`reusable`)."""
    found = metas(cell.folder(), rule)
    other = metas(cell.sibling(cell.reuse_from).folder(), rule) if cell.reuse_from else {}
    out = []
    for seed in seeds_of(cell, rule):
        done = [m for m in found.get(seed, []) if m.get("status") in USABLE]
        same = [m for m in other.get(seed, []) if reusable(m)]
        if done:
            out.append((cell.folder(), done[0]))
        elif same:
            out.append((cell.sibling(cell.reuse_from).folder(), same[0]))
    return out


def grid_cell(cell: ProtocolCell, rule: str, chunk: int | None = None):
    """The cell and rule as a grid-runner cell (rnn.grid): its jobs are named
    RULE_sSEED in the cell's folder, as the networks kept here are."""
    from rnn.grid.format import Cell as GridCell
    flags = list(cell.flags)
    switches = {}
    for s in ("shared_x0", "lenient_stop", "original_budgets"):
        if f"--no-{s.replace('_', '-')}" in flags:
            switches[s] = False
    from tasks.table import parse
    flags_ = tuple(cell.task)
    task = parse("rdm") if flags_ == ("--rdm",) else parse("ncdi", int(flags_[1]))
    return GridCell(task=task.spelling, rule=rule, noise=0.5,
                    networks=cell.counts()[rule], first_seed=FIRST_SEED[rule],
                    protocol=flags[flags.index("--protocol") + 1], max_steps=cell.max_steps,
                    chunk=chunk, name=rule, **switches)


def configured(root: Path | None = None, per_rule: int | None = None,
               max_steps: int | None = None) -> dict[str, ProtocolCell]:
    """Every cell, with its networks under ``root`` (default experiments/networks)."""
    return {n: dataclasses.replace(c, root=root or NETWORKS, per_rule=per_rule,
                                   max_steps=max_steps) for n, c in CELLS.items()}
