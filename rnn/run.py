"""A training run, the library side of ``train_models.py`` (and of the grid's
jobs, which run it) and of ``rnn.api.train``:

* :class:`RunPlan` — what trains and how it stops: rule, task, protocol, the
  rule's config and budget, the stop rule, the activation;
* :class:`RunFiles` — where it writes, under which names, and what it may do
  to files already there (--force, --resume);
* :class:`Batch` and :func:`train_batch` — one batch of networks trained
  together: checkpoints, going on from one, the final save or its rescue;
* :func:`train_run` — every batch that fits the device, and the groups file.

and the one builder of a network's record, ``NAME.json`` (also the ``meta``
inside ``NAME.pt``), for every door that makes a network — the runs above,
their ``--snapshots``, ``rnn.api.save`` and ``import_model.py``.

A record is, in this order:

    name                       the network's name
    rule, rule_name, task      what it is: the learning rule (its registry name and
    network                    long name), the task (tasks.DecisionTask.to_dict) and
                               the network's shape (hidden, activation, readout, dt,
                               x0_scale where trained here, clamped units)
    ...settings                how it was made: a training run's configs, a source
                               file's provenance (given by the caller)
    versions, command          the packages, the machine and the command line
    seed, status, converged,   how its training ended ("imported": converged null)
    steps, final_accuracy
    ...outcome                 the run's own numbers (stop step, validations, wall ...)
    created                    when the record was written (UTC)
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from rnn.errors import UserError


def identity(rule: str, task, model, x0_scale: float | None = None) -> dict:
    """rule, rule_name, task and network of a record (the same for every
    network of one run)."""
    from rnn.rules import get
    arch = getattr(model, "arch", "rate")
    if arch == "rate":
        net = {"arch": arch, "hidden": model.hidden, "activation": model.activation,
               "readout": model.readout, "dt": model.dt}
    else:                      # a discrete-time network: its units and its state's size
        net = {"arch": arch, "hidden": model.units, "state_size": model.hidden,
               "activation": model.activation, "readout": model.readout}
    if x0_scale is not None:
        net["x0_scale"] = x0_scale
    if arch == "rate":
        net.update({"clamp_idx": list(model.clamp_idx), "clamp_val": list(model.clamp_val)})
    return {"rule": rule, "rule_name": get(rule).long_name, "task": task.to_dict(),
            "network": net}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def record(name: str, ident: dict, status: str, *, seed: int | None = None,
           steps: int | None = None, accuracy: float | None = None,
           settings: dict | None = None, outcome: dict | None = None) -> dict:
    """The record of one network (see the module docstring for its fields).
    ``ident`` from :func:`identity`; ``seed``, ``steps`` and ``accuracy`` are
    left out when unknown (an imported network); ``settings`` may carry its own
    ``versions`` and ``command`` (a run records them once for all its networks)."""
    from rnn.io import package_versions_and_command
    rec = {"name": name, **ident, **(settings or {})}
    if "versions" not in rec:
        rec.update(package_versions_and_command())
    if seed is not None:
        rec["seed"] = seed
    rec["status"] = status
    rec["converged"] = None if status == "imported" else status == "converged"
    if steps is not None:
        rec["steps"] = steps
    if accuracy is not None:
        rec["final_accuracy"] = accuracy
    rec.update(outcome or {})
    rec["created"] = now()
    return rec


# ---- a training run: its plan ------------------------------------------------

@dataclass(frozen=True)
class RunPlan:
    """What a run trains and how it stops: the rule, the task, the protocol,
    the rule's config (its budget), the stop rule and the activation — made
    one way for ``train_models.py`` (and the grid's jobs, which run it) and
    ``rnn.api.train``."""
    rule: str
    task: object                 # tasks.DecisionTask
    protocol: object             # rnn.protocol.Protocol (its hidden size included)
    cfg: object                  # the rule's config
    stop: object                 # rnn.training.StopConfig
    activation: str
    updates: int | None = None   # --updates K: exactly K updates, past the stop rule
    arch: str = "rate"           # --arch: the network (rnn.arch.ARCHS)

    @classmethod
    def make(cls, rule: str, task, protocol, *, max_steps: int | None = None,
             updates: int | None = None, on_stall: str | None = None,
             stall_window: int | None = None, relu: bool = False,
             arch: str = "rate") -> "RunPlan":
        """The plan of a run (arguments checked by the caller): the rule's budget
        under ``protocol`` unless ``max_steps``; ``updates`` trains exactly that
        many updates (stop and stall rules off); ``arch`` the network (a
        UserError where the rule cannot train it)."""
        from rnn.rules import get
        from rnn.training import StopConfig
        rs = get(rule)
        rs.check_arch(arch)
        rs.check_task(task)
        if getattr(task, "sequence", False) and protocol.lenient_stop:
            raise UserError(f"the lenient stop rule counts the strength-0 trials of a decision "
                            f"task as correct; {task.name} has none: use the clean protocol or "
                            f"--no-lenient-stop")
        cfg = rs.make_config(task, updates or max_steps)
        if max_steps is None and updates is None:
            cfg = dataclasses.replace(cfg, max_steps=protocol.budget(rule, cfg.max_steps))
        kw = {} if stall_window is None else {"stall_window": stall_window}
        stop = StopConfig.for_run(protocol, on_stall or rs.on_stall, **kw)
        if hasattr(task, "stall_below"):       # a task whose chance score is not 0.5
            stop = dataclasses.replace(stop, stall_below=task.stall_below)
        if updates is not None:
            stop = dataclasses.replace(stop, stall_window=0, until_budget=True)
        return cls(rule, task, protocol, cfg, stop, "relu" if relu else rs.activation, updates,
                   arch)

    @property
    def unit(self) -> str:
        """What one update of the rule is called (step, generation, trial, batch)."""
        from rnn.rules import get
        return get(self.rule).unit

    def require_memory(self, n: int, what: str, device, hint: str) -> None:
        """Refuse (UserError) where ``n`` networks would not fit on ``device``."""
        from rnn.sizing import bytes_per_network, require
        require(bytes_per_network(self.rule, self.task, self.protocol.hidden, self.cfg,
                                  self.arch) * n, what, device, hint)

    def trainer(self, seeds: list[int], device):
        """The rule's trainer of the networks ``seeds``."""
        from rnn.rules import get
        return get(self.rule).make(self.cfg, self.task, list(seeds), device, self.activation,
                                   self.protocol, self.arch)

    def validation(self, seeds: list[int], hidden: int, device):
        """The fixed validation trials of the networks ``seeds``."""
        from rnn.training import ValidationSet
        return ValidationSet.make(self.task, list(seeds), hidden, device, self.protocol)

    def settings(self, val, device) -> dict:
        """The run's settings, in every record it writes (in this order)."""
        import torch

        from rnn.io import package_versions_and_command
        p = self.protocol
        out = {
            "trainer": dataclasses.asdict(self.cfg), "stop_rule": self.stop.to_dict(),
            "protocol": p.to_dict(),
            "validation": {"trials": val.trials.n_trials, "strengths": "linspace(0, 0.1875, "
                           "20), cycled" if val.task is None else val.task.validation_note,
                           "strength_0_always_correct": p.lenient_stop,
                           "x0": "redrawn every check" if p.lenient_stop else "fixed"},
            "device": str(device), "torch_threads": torch.get_num_threads(),
            **package_versions_and_command(),
        }
        if self.updates is not None:
            out["fixed_updates"] = self.updates
        return out


# ---- a training run: its files -----------------------------------------------

def member_names(name: str, count: int) -> list[str]:
    """The networks of a run of ``count``: NAME alone, or NAME_000, NAME_001, ..."""
    if count == 1:
        return [name]
    width = max(3, len(str(count - 1)))
    return [f"{name}_{i:0{width}d}" for i in range(count)]


def snapshot_names(name: str, snapshots: list[int] | None) -> list[str]:
    """The files of a network's --snapshots: NAME_uUUUU (at least four digits)."""
    if not snapshots:
        return []
    width = max(4, len(str(max(snapshots))))
    return [f"{name}_u{u:0{width}d}" for u in snapshots]


@dataclass
class RunFiles:
    """Where and how a run writes: the run's name and folder, its networks'
    count and first seed, and what it may do to files already there."""
    name: str
    directory: Path
    first_seed: int
    count: int = 1
    force: bool = False          # overwrite finished networks
    resume: bool = False         # go on from the run's checkpoint
    snapshots: list[int] | None = None
    record_every: int | None = None   # --record-activity's interval (None: not recorded)

    @property
    def names(self) -> list[str]:
        return member_names(self.name, self.count)

    @property
    def own(self) -> list[str]:
        """Every name the run writes: its networks and their snapshots."""
        return [n for nm in self.names for n in [nm, *snapshot_names(nm, self.snapshots)]]

    def refuse_existing(self) -> None:
        """A run neither --force nor --resume never starts over files of its names."""
        files = [self.directory / f"{n}.{ext}" for n in self.own for ext in ("pt", "json")]
        if self.count > 1:
            files.append(self.directory / f"{self.name}.txt")
        existing = [f for f in files if f.exists()]
        if existing and not self.force and not self.resume:
            shown = ", ".join(str(f) for f in existing[:3]) + (" ..." if len(existing) > 3
                                                               else "")
            raise UserError(f"{shown} already exists; choose another name or pass --force to "
                            f"overwrite")

    def all_finished(self, names: list[str]) -> bool:
        """Every network of ``names`` finished on disk, and no checkpoint of their batch."""
        from rnn import resume as rsm
        from rnn.io.store import status_on_disk
        from rnn.training import FINISHED
        return not rsm.path_for(self.directory, names[0]).exists() and all(
            status_on_disk(self.directory, n) in FINISHED for n in names)

    def refuse_finished(self, names: list[str]) -> None:
        """Training afresh under --resume without --force: never over a finished network."""
        from rnn.io.store import status_on_disk
        from rnn.resume import UNUSABLE, UNUSABLE_EXIT
        from rnn.training import FINISHED
        for nm in names:
            st = status_on_disk(self.directory, nm)
            if st in FINISHED:
                raise UserError(f"{self.directory / f'{nm}.json'} is a finished network ({st}) "
                                f"and its run's {UNUSABLE}; pass --force to train it afresh",
                                status=UNUSABLE_EXIT)


# ---- a training run: one batch -----------------------------------------------

def _last_validation(history, p: int) -> dict | None:
    """The latest validated update of network p and its accuracy."""
    if not history.val_steps[p]:
        return None
    i = max(range(len(history.val_steps[p])), key=lambda j: history.val_steps[p][j])
    return {"step": history.val_steps[p][i], "accuracy": history.val_acc[p][i]}


class SnapshotWriter:
    """An observer of :func:`rnn.training.fit` that saves every network still
    training as it is after each update of ``at`` (validated there), as a
    network file of its own beside the run's (``snapshot_names``)."""

    def __init__(self, at: list[int], names: list[str], ident: dict, settings: dict,
                 seeds: list[int], val, directory: Path, lock=None, force: bool = False):
        self.at = list(at)
        self.names, self.ident, self.settings = names, ident, settings
        self.seeds, self.val = seeds, val
        self.directory, self.lock, self.force = directory, lock, force
        self.written: list[Path] = []

    def __call__(self, step: int, trainer, active: list[int]) -> None:
        import sys

        import torch

        from rnn.io import save_model
        from rnn.io.store import SaveError
        if step not in self.at or not active:
            return
        idx = torch.tensor(active, device=trainer.model.device)
        accs = self.val.accuracy(trainer.model.select(idx), idx, step).tolist()
        for p, acc in zip(active, accs):
            nm = snapshot_names(self.names[p], self.at)[self.at.index(step)]
            meta = record(nm, self.ident, "budget", seed=self.seeds[p], steps=step, accuracy=acc,
                          settings=self.settings,
                          outcome={"snapshot": {"of": self.names[p], "update": step}})
            single = trainer.model.select(p).to("cpu")
            # the accuracy and loss histories are the whole run's, in NAME.pt
            try:
                self.written += save_model(nm, single, meta, {}, self.directory,
                                           lock=self.lock, force=self.force)
            except SaveError as e:      # the run goes on: its own files matter more
                print(f"warning: snapshot {nm} not saved: {e}", file=sys.stderr, flush=True)


@dataclass
class Batch:
    """One batch of a run (networks trained together) and what it writes: each
    network's record and model file, and the run's checkpoint."""
    plan: RunPlan
    files: RunFiles
    names: list[str]
    seeds: list[int]
    members: list[int]           # their indices in the whole run
    device: object
    lock: object                 # rnn.io.store.NameLock holding the run's names

    def start(self) -> None:
        """A fresh trainer, its validation set, recorder and settings."""
        from rnn.protocol import X0_SCALE
        self.trainer = self.plan.trainer(self.seeds, self.device)
        self.recorder = None
        if self.files.record_every is not None:
            from rnn.analysis.tca import ActivityRecorder
            self.recorder = ActivityRecorder(self.plan.task, self.seeds, self.trainer.model.hidden,
                                             self.device, every=self.files.record_every)
        self.val = self.plan.validation(self.seeds, self.trainer.model.hidden, self.device)
        self.ident = identity(self.plan.rule, self.plan.task, self.trainer.model, X0_SCALE)
        self.settings = self.plan.settings(self.val, self.device)
        if self.plan.updates is not None and self.files.snapshots:
            self.settings["snapshots"] = list(self.files.snapshots)
        self.kept: set[int] = set()   # networks a resumed run had finished: their files stay
        from rnn import resume as rsm
        v = self.settings["versions"]
        self.here = (v["cpu"], v["platform"])
        self.segments = [rsm.segment(0, *self.here)]   # the stretches the run trained in
        self.checkpoint_path = rsm.path_for(self.files.directory, self.names[0])

    def set_aside(self, err) -> None:
        """An unusable checkpoint: renamed out of the way with a one-line note; a
        fresh trainer (the failed load may have changed the old one), from update 0."""
        import sys

        from rnn import resume as rsm
        ck = self.checkpoint_path
        aside = rsm.set_aside(ck)
        print(f"note: checkpoint {ck} {err}; set aside as {aside.name}, training afresh",
              file=sys.stderr, flush=True)
        self.trainer = self.plan.trainer(self.seeds, self.device)
        self.kept.clear()
        self.segments = [rsm.segment(0, *self.here)]

    def checkpoint(self, res) -> None:
        """Every network's files and the run's checkpoint, as ``res`` left them; a
        failed checkpoint (a full disk) does not end the run: the final save
        rescues the networks where the models folder cannot take them."""
        import sys

        from rnn import resume as rsm
        from rnn.io.store import SaveError
        try:
            self.save(res, "checkpoint", self.files.directory, self.lock)
            if self.recorder is None:
                rsm.save(self.checkpoint_path, self.fingerprint(), res.loop, self.trainer,
                         self.segments)
        except (SaveError, OSError, RuntimeError) as e:
            print(f"warning: checkpoint after {self.plan.unit} {res.loop.get('step')} not saved "
                  f"({e}); training goes on", file=sys.stderr, flush=True)

    def resume(self, quiet: bool) -> dict | None:
        """The loop state to go on from (--resume and a usable checkpoint), else None;
        a finished network is never trained afresh without --force."""
        from rnn import resume as rsm
        ck, files, loop = self.checkpoint_path, self.files, None
        if files.resume and ck.exists():
            try:
                d = rsm.load(ck, self.fingerprint())
                rsm.load_object_state(self.trainer, d["trainer"])
                loop = d["loop"]
                step = loop.get("step")          # checked by fit before any update
                cpu = loop.get("cpu")            # where this stretch's CPU count begins
                self.segments = d["segments"] + [
                    rsm.segment(step if isinstance(step, int) else 0, *self.here,
                                cpu_time=cpu if rsm.cpu_record(cpu) else None)]
            except rsm.ResumeError as e:
                self.set_aside(e)
        if loop is None:
            if not files.force:
                files.refuse_finished(self.names)
            return None
        # this run's own earlier files (its checkpoint matched): it may write them again
        self.lock.written.update(n for nm in self.names
                                 for n in [nm, *snapshot_names(nm, files.snapshots)])
        if isinstance(loop.get("active"), list):
            self.kept |= {p for p in range(len(self.names)) if p not in loop["active"]
                          and (files.directory / f"{self.names[p]}.json").exists()}
        if not quiet:
            print(f"resuming {ck.name} after {self.plan.unit} {loop.get('step')}", flush=True)
        return loop

    def fingerprint(self) -> str:
        """What the run's checkpoint must match to be gone on from."""
        import torch

        from rnn import resume as rsm
        p = self.plan
        return rsm.fingerprint(
            rule=p.rule, task=p.task.to_dict(), trainer=dataclasses.asdict(p.cfg),
            stop_rule=p.stop.to_dict(), protocol=p.protocol.to_dict(), activation=p.activation,
            seeds=list(self.seeds), names=list(self.names), device=str(self.device),
            # the architecture only where it is not the rate network (older checkpoints match)
            **({} if p.arch == "rate" else {"arch": p.arch}),
            torch_threads=torch.get_num_threads(),
            # what decides the arithmetic; the machine is recorded, not matched
            versions={k: v for k, v in self.settings["versions"].items()
                      if k not in ("platform", "cpu")})

    def member_record(self, res, p: int, phase: str) -> dict:
        """The record of network p after ``res`` (phase 'checkpoint' or 'final')."""
        status = res.status[p]
        if phase == "checkpoint" and status != "converged":
            status = "in_progress"
        h = res.history
        meta = record(self.names[p], self.ident, status, seed=self.seeds[p],
                      steps=res.steps_run[p], accuracy=res.final_acc[p], settings=self.settings,
                      outcome={
                          "stop_step": h.stop_step[p] if h.stop_step[p] > 0 else None,
                          "stalled_at": h.stall_step[p] if h.stall_step[p] > 0 else None,
                          "validations_run": len(h.val_steps[p]),
                          "last_validation": _last_validation(h, p),
                          "wall_time_s": round(res.wall_time, 3),
                          # the CPU seconds of the job and the updates they cover (all,
                          # unless it went on from a checkpoint older than this record)
                          "cpu_time_s": round(res.cpu_time, 3),
                          "cpu_time_updates": res.cpu_updates,
                          # a resumed run: the stretches it ran in, each on its machine
                          **({"segments": self.segments} if res.resumed_at else {}),
                          **self.trainer.extra_meta(p)})
        if self.files.count > 1:
            meta["population"] = {"name": self.files.name, "index": self.members[p],
                                  "count": self.files.count, "first_seed": self.files.first_seed}
        return meta

    def save(self, res, phase: str, directory: Path, lock) -> list[Path]:
        """Every network of the batch not kept from an earlier run, as ``res`` left it."""
        import torch

        from rnn.io import save_model
        written = []
        for p, nm in enumerate(self.names):
            if p in self.kept:
                continue
            vs, va = res.history.validation(p)
            hist = {"loss": res.history.losses(p).to(torch.float32), "val_step": vs,
                    "val_acc": va, **self.trainer.extra_history(p)}
            if self.recorder is not None:
                hist.update(self.recorder.history(p, res.steps_run[p]))
            single = self.trainer.model.select(p).to("cpu")
            written += list(save_model(nm, single, self.member_record(res, p, phase),
                                       hist, directory, lock=lock, force=self.files.force))
        return written


def train_batch(batch: Batch, quiet: bool = True) -> tuple[object, list[Path]]:
    """Train and save one batch (going on from its checkpoint under --resume);
    returns (rnn.training.FitResult, files written)."""
    from rnn.training import fit
    from rnn.resume import ResumeError
    batch.start()
    files, plan = batch.files, batch.plan
    snapshots = None
    if files.snapshots:
        snapshots = SnapshotWriter(files.snapshots, batch.names, batch.ident, batch.settings,
                                   batch.seeds, batch.val, files.directory, batch.lock,
                                   files.force)
    loop = batch.resume(quiet)

    def run(loop):
        # Ctrl-C or SIGTERM (a killed job): fit finishes the update, returns 'interrupted'
        return fit(batch.trainer, batch.val, plan.cfg.max_steps, plan.stop, quiet=quiet,
                   unit=plan.unit, names=batch.names, checkpoint=batch.checkpoint, resume=loop,
                   observers=tuple(o for o in (batch.recorder, snapshots) if o is not None))
    try:
        res = run(loop)
    except ResumeError as e:        # raised before any update, by the loop's own checks
        batch.set_aside(e)
        if not files.force:
            files.refuse_finished(batch.names)
        res = run(None)
    written = save_or_rescue(lambda folder, lock: batch.save(res, "final", folder, lock),
                             files.directory, batch.names, batch.lock)
    if "interrupted" not in res.status:
        batch.checkpoint_path.unlink(missing_ok=True)   # the run ended: nothing to go on from
    if snapshots is not None:
        written = snapshots.written + written
    return res, written


def save_or_rescue(save, directory: Path, names: list[str], lock) -> list[Path]:
    """``save(folder, lock)`` into the models folder; if that write fails for any
    reason (a full disk makes torch.save raise a RuntimeError), the whole batch
    into a fresh rescue folder, and a one-line error that names it: a trained
    network is never lost to a failed write."""
    from rnn.io.store import NameLock, SaveError, rescue_folder
    try:
        return save(directory, lock)
    except SaveError as e:
        rescue = rescue_folder()
        try:
            with NameLock(rescue, names, what="rescue") as rescue_lock:
                save(rescue, rescue_lock)
        except SaveError as e2:
            raise UserError(f"{e}, and the rescue into {rescue} failed too ({e2}); the trained "
                            f"networks are lost") from None
        raise UserError(f"{e}; the trained network(s) of this batch were saved in {rescue} "
                        f"instead: move the files into the models folder") from None


# ---- a training run: every batch --------------------------------------------

@dataclass
class RunResult:
    """What a run did: (name, FitResult, index in it) of each network it trained
    and every file it wrote."""
    outcomes: list[tuple[str, object, int]]
    written: list[Path]

    @property
    def interrupted(self) -> bool:
        return any(res.status[i] == "interrupted" for _, res, i in self.outcomes)


def train_run(plan: RunPlan, files: RunFiles, device, lock, *, quiet: bool = True,
              say=None, max_batch: int | None = None) -> RunResult:
    """Train the run's networks in batches that fit the device (under ``lock``,
    an rnn.io.store.NameLock holding ``files.own``), each saved as it ends; a
    batch an earlier run finished is kept; with a count above one, the groups
    file NAME.txt of the networks finished.  Stops after an interrupted batch."""
    from rnn.sizing import networks_per_batch
    say = say or (lambda *a: None)
    names = files.names
    seeds = [files.first_seed + i for i in range(files.count)]
    per_batch = networks_per_batch(plan.rule, plan.task, plan.protocol.hidden, plan.cfg, device,
                                   files.count, max_batch, plan.arch)
    batches = [list(range(k, min(k + per_batch, files.count)))
               for k in range(0, files.count, per_batch)]
    if len(batches) > 1:
        say(f"{files.count} networks in {len(batches)} batches of up to {per_batch} (device "
            f"memory{'' if max_batch is None else ', --max-batch'})")
    out, listed = RunResult([], []), []
    for members in batches:
        batch_names = [names[p] for p in members]
        listed += batch_names
        if files.resume and files.all_finished(batch_names):
            # a batch an earlier run of this command finished (its checkpoint is gone)
            say(f"{batch_names[0]}...{batch_names[-1]}: finished earlier, kept")
            continue
        batch = Batch(plan, files, batch_names, [seeds[p] for p in members], members, device,
                      lock)
        res, written = train_batch(batch, quiet)
        out.written += written
        out.outcomes += [(names[p], res, i) for i, p in enumerate(members)]
        if any(st == "interrupted" for st in res.status):
            break
    if files.count > 1:
        from rnn.io.groups import write_groups_file
        done = {nm for nm, _, _ in out.outcomes} | {n for n in listed if files.all_finished([n])}
        out.written.append(write_groups_file(files.directory / f"{files.name}.txt",
                                             [(files.name, [n for n in listed if n in done])]))
    return out
