"""Planning a grid's training: the finished network of each seed of a cell (by
the seed recorded in its JSON, whichever job trained it), the jobs still
needed, a job cut short found again by its checkpoint, and the order the jobs
run in."""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from rnn.grid.format import Cell
from rnn.io.store import records
from rnn.training import FINISHED

# ---- finding networks by seed ------------------------------------------------
# Every function here takes the grid's models folder; a cell with a ``folder``
# keeps its networks in that sub-folder of it (Cell.where).

def cell_metas(folder: Path, cell: Cell) -> dict[int, list[dict]]:
    """Every network record of ``cell`` in its folder, by seed (rnn.io.store.records)."""
    return records(cell.where(folder), cell.name)


def reusable(meta: dict) -> bool:
    """Is this network of a ``reuse_from`` cell the very network this cell would
    train from the same seed?  The two cells differ only in when a run is
    stopped for lack of progress (its budget, the stall rule), never in what an
    update does, and every draw comes from the network's own seeded streams.  So
    a network that reached the stop rule before either could act — in fewer
    updates than the stall window, hence than any budget — is trained identically."""
    from rnn.training import StopConfig
    steps = meta.get("steps")
    return (meta.get("status") == "converged" and isinstance(steps, int)
            and steps < StopConfig().stall_window)


def networks(folder: Path, cell: Cell, statuses=FINISHED) -> list[tuple[Path, dict]]:
    """The network of each seed of the cell whose status is one of ``statuses``,
    in seed order: (its folder, its record).  The cell's own network of a seed
    comes first; a seed it has not trained takes its ``reuse_from`` cell's
    network when that one is the same network (:func:`reusable`)."""
    own = cell.where(folder)
    found = cell_metas(folder, cell)
    other = Path(folder) / cell.reuse_from if cell.reuse_from else None
    theirs = records(other, cell.name) if other is not None else {}
    out = []
    for seed in cell.seeds():
        done = sorted((m for m in found.get(seed, []) if m.get("status") in statuses),
                      key=lambda m: m["name"])
        same = [m for m in theirs.get(seed, []) if reusable(m)]
        if done:
            out.append((own, done[0]))
        elif same:
            out.append((other, same[0]))
    return out


def finished(folder: Path, cell: Cell) -> dict[int, dict]:
    """The finished network of each trained seed of the cell: seed -> meta."""
    return {m["seed"]: m for _, m in networks(folder, cell)}


# ---- what the rest of a cell costs ----------------------------------------------

def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
        and v >= 0


def _share(meta: dict) -> int:
    """Seconds per hour times the networks the record's job trained together."""
    count = meta.get("population", {}).get("count", 1) if isinstance(
        meta.get("population"), dict) else 1
    return max(1, int(count) if isinstance(count, int) else 1) * 3600


def network_hours(meta: dict) -> float | None:
    """The CPU hours (one thread per job, on the machine that trained it) one
    network took: its job's CPU time (``cpu_time_s``) shared by the networks the
    job trained together (``population.count``).  Where the CPU time covers only
    the stretches since an older checkpoint (``cpu_time_updates`` < ``steps``),
    its pace per update times the network's updates; where the record has none
    (before CPU time was recorded), the job's wall time, which also counts any
    pause (SIGSTOP) or crowding; None where the record has neither."""
    share = _share(meta)
    cpu, covered, steps = meta.get("cpu_time_s"), meta.get("cpu_time_updates"), \
        meta.get("steps")
    if _number(cpu) and isinstance(covered, int) and not isinstance(covered, bool) \
            and covered > 0:
        if isinstance(steps, int) and not isinstance(steps, bool) and covered < steps:
            return cpu / covered * steps / share
        return cpu / share
    wall = meta.get("wall_time_s")
    return wall / share if _number(wall) else None


# the fewest updates a stretch of a run must have run for its own pace to be read
MIN_STRETCH = 20


def latest_pace(meta: dict) -> float | None:
    """The CPU hours per update per network of the latest stretch of a resumed
    run (since its last resumption, on the machine it runs on now): the record's
    CPU time less where that stretch's began (its segment's ``cpu_time``), over
    the updates between; None where the record cannot say, or the stretch has
    run fewer than MIN_STRETCH updates."""
    from rnn.resume import cpu_record
    segs, cpu, covered = meta.get("segments"), meta.get("cpu_time_s"), \
        meta.get("cpu_time_updates")
    if not (isinstance(segs, list) and segs and isinstance(segs[-1], dict)
            and _number(cpu) and isinstance(covered, int) and not isinstance(covered, bool)):
        return None
    start = segs[-1].get("cpu_time")
    if not cpu_record(start) or covered - start[1] < MIN_STRETCH or cpu < start[0]:
        return None
    return (cpu - start[0]) / (covered - start[1]) / _share(meta)


def median_hours(metas) -> tuple[float | None, int]:
    """The median of :func:`network_hours` over the records that have it, and
    how many have it ((None, 0) where none has)."""
    hs = [h for h in map(network_hours, metas) if h is not None]
    return (statistics.median(hs) if hs else None), len(hs)


@dataclass(frozen=True)
class Remaining:
    """The networks a cell still needs and the CPU hours they would take."""
    missing: int
    hours: float | None     # None: nothing of the cell has been timed yet
    basis: str              # how ``hours`` was estimated, for a person

    def describe(self) -> str:
        return "complete" if self.missing == 0 else f"{self.missing} to train, {self.basis}"


def remaining(folder: Path, cell: Cell) -> Remaining:
    """What the rest of ``cell`` costs, from what its own networks took: the
    median CPU hours of its finished networks times the networks missing; where
    none has finished, an upper bound from a job in progress that has run at
    least MIN_STRETCH updates (fewer time mostly its start: building its
    validation set, its first validation) — its pace (CPU time per update, per
    network: that of its latest stretch where the record can say,
    :func:`latest_pace`, else of every update timed) over the whole budget of
    updates its rule records; else untimed.  On the machines that trained them (each record's
    ``segments`` name the CPU), one thread per job."""
    done = [m for _, m in networks(folder, cell)]
    missing = max(0, cell.networks - len(done))
    if missing == 0:
        return Remaining(0, 0.0, "complete")
    med, timed = median_hours(done)
    if med is not None:
        return Remaining(missing, missing * med,
                         f"about {missing * med:.1f} h of one core (the median "
                         f"{med:.2f} h of its {timed} trained networks)")
    paces = []
    for ms in cell_metas(folder, cell).values():
        for m in ms:
            h, steps = network_hours(m), m.get("steps")
            budget = (m.get("trainer") or {}).get("max_steps") if isinstance(
                m.get("trainer"), dict) else None
            if h is not None and isinstance(steps, int) and steps >= MIN_STRETCH and \
                    isinstance(budget, int) and budget > 0:
                latest = latest_pace(m)
                paces.append((h / steps if latest is None else latest, budget,
                              latest is not None))
    if paces:
        pace, budget, latest = max(paces)
        which = "the latest pace" if latest else "the pace"
        return Remaining(missing, missing * pace * budget,
                         f"at most {missing * pace * budget:.1f} h of one core (the "
                         f"budget, {budget} updates, at {which} of a job in progress: "
                         f"{pace * 3600:.2f} s per update per network)")
    return Remaining(missing, None, "not timed yet")


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
    def label(self) -> str:
        """The job's name as printed: FOLDER/NAME for a cell with a folder."""
        return f"{self.cell.folder}/{self.name}" if self.cell.folder else self.name

    @property
    def key(self) -> str:
        where = f"{self.cell.folder}+" if self.cell.folder else ""
        return f"train-{where}{self.name}-{self.count}"


def jobs_for(cell: Cell, folder: Path, chunk: int | None = None) -> list[Job]:
    """The jobs still needed: runs of consecutive unfinished seeds, in chunks
    (a seed its ``reuse_from`` cell has the same network of counts as finished)."""
    have = set(finished(folder, cell))
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
    for p in sorted(cell.where(folder).glob(f"{cell.name}_s*{SUFFIX}")):
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


def remove_unfinished(folder: Path, cell: Cell) -> None:
    """Delete the files of interrupted runs of seeds that another job has since
    finished (under another chunk's name), so each seed has one network."""
    own = cell.where(folder)
    for seed, ms in cell_metas(folder, cell).items():
        if any(m.get("status") in FINISHED for m in ms):
            for m in ms:
                if m.get("status") not in FINISHED:
                    for ext in ("pt", "json"):
                        (own / f"{m['name']}.{ext}").unlink(missing_ok=True)
