#!/usr/bin/env python
"""Train a rate RNN on a decision task with one of the learning rules of rnn/rules/__init__.py.

    python train_models.py bptt_name -v 0.5 --N 2      # CDI task, BPTT
    python train_models.py ga_name   -v 0.5 --N 2      # CDI task, genetic algorithm
    python train_models.py ff_name   -v 0.5 --N 2      # CDI task, full-FORCE
    python train_models.py heb_name  -v 0.5 --N 2      # CDI task, Hebbian (Miconi 2017)
    python train_models.py eprop_name -v 0.5 --N 2     # CDI task, e-prop
    python train_models.py rflo_name -v 0.5 --N 2      # CDI task, RFLO
    python train_models.py bptt_name -v 0.5 --rdm      # RDM task
    python train_models.py bptt_name -v 0.1 --N 4      # N-CDI with N = 4
    python train_models.py bptt_pop  -v 0.5 --N 2 --count 8   # 8 networks in one batch

The learning rule comes from the name's prefix (bptt/bp, ga/ge, ff, heb/he,
eprop, rflo) unless --rule is given.  Results: models/NAME.pt and models/NAME.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys
from pathlib import Path

import torch

from rnn import validate as V
from rnn.errors import UserError
from rnn.cli import MODELS_DIR_HELP, Parser, add_device_arg, finite_float, resolve_device, run_cli
from rnn.io import (NAME_RULE, check_name, ensure_writable, models_dir,
                    package_versions_and_command, save_model)
from rnn.protocol import SWITCHES, X0_SCALE, Protocol
from rnn.rules import (RULES, check_hidden, get, prefix_list, prefix_summary, rule_from_name,
                       rules_help)
from rnn.run import identity, record
from rnn.io.store import NameLock, SaveError, status_on_disk
from rnn.training import FINISHED, FitResult, StopConfig, ValidationSet, fit, plural
from tasks import DEFAULT_MEAN, parse


STOP = StopConfig()         # the stop rule's defaults, for the help text
MAX_COUNT = 100_000      # networks of one --count run (each is a pair of files)
MAX_UPDATES = 10_000_000  # --updates: far beyond any rule's budget, short of the memory
                          # the per-update loss history would take

RULE_HELP = """\
learning rules and their defaults (all recorded in NAME.json):
{rules}
every rule stops when the minimum of the last {window} validation accuracies (2000
fixed trials) reaches {threshold}.

training protocols (--protocol; each switch can also be set alone, e.g.
--protocol original --no-shared-x0 for an ablation; all recorded in NAME.json):
  clean     this tool's defaults: an independent initial state x0 ~ 0.3*N(0,1) for
            every trial; strength-0 validation trials scored against a random sign
            on fixed initial states; BPTT budget 20000 steps.
  original  the original study's code (commit 4b4fb8a): --shared-x0 (one x0 per
            batch / GA generation, shared by all its trials and members),
            --lenient-stop (strength-0 validation trials always correct, as the
            original's target sign(0) = 0 with tolerance 1; validation x0 redrawn at
            every check), --original-budgets (BPTT at most 2000 steps).
  --N 1 is the original's N = 1 task (evidence + constant cue, 2 inputs) in both.
"""


def build_parser() -> Parser:
    p = Parser(prog="train_models.py",
               description="Train a rate RNN (50 units, dt 0.1) on the RDM, CDI or N-CDI task "
                           "and save it as models/NAME.pt + models/NAME.json.",
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=RULE_HELP.format(rules=rules_help(), window=STOP.window,
                                       threshold=STOP.threshold)
                      + "\nexamples:\n  python train_models.py bptt_a -v 0.5 --N 2"
                      "   (CDI task, BPTT)\n  python train_models.py ga_b -v 0.5 --rdm"
                      "     (RDM task, GA)\n" f"name prefixes: {prefix_list()}")
    p.add_argument("name", help="model name; its prefix picks the learning rule "
                                f"({prefix_summary()}) unless --rule is given; "
                                f"allowed: {NAME_RULE}")
    p.add_argument("-v", "--variance", type=finite_float, default=0.5, metavar="V",
                   help="input noise level (default 0.5; the paper uses 0.1, 0.5, 1.0). As in "
                        "the original code, unit Gaussian noise is multiplied by V at every "
                        "step, so V is the noise STANDARD DEVIATION, not a variance")
    p.add_argument("-m", "--mean", type=finite_float, default=DEFAULT_MEAN, metavar="M",
                   help=f"largest evidence strength; strengths are drawn from U(0, M) "
                        f"(default {DEFAULT_MEAN})")
    task = p.add_argument_group("task (give exactly one)")
    task.add_argument("--N", type=int, default=None, metavar="K",
                      help="N-CDI task with K contexts (2K inputs); --N 2 is the CDI task")
    task.add_argument("--rdm", action="store_true", help="RDM task (one input)")
    task.add_argument("--task", default=None, metavar="NAME",
                      help="any task of the task table by name (tasks/table.py: rdm, cdi, "
                           "ncdiK, or a family with --N)")
    p.add_argument("--relu", action="store_true",
                   help="use the ReLU activation max(0, x) instead of the rule's "
                        "(1 + tanh for BPTT/GA/e-prop/RFLO, tanh for FF/Hebbian)")
    prot = p.add_argument_group("training protocol (default: clean; see below)")
    prot.add_argument("--protocol", choices=("clean", "original"), default="clean",
                      help="clean (this tool's) or original (the original study's code): "
                           "sets the three switches below")
    prot.add_argument("--shared-x0", action=argparse.BooleanOptionalAction, default=None,
                      help="one initial state per training batch / GA generation, shared by "
                           "its trials (original) instead of one per trial")
    prot.add_argument("--lenient-stop", action=argparse.BooleanOptionalAction, default=None,
                      help="the original's stop-rule scoring: strength-0 validation trials "
                           "always correct, validation initial states redrawn every check")
    prot.add_argument("--original-budgets", action=argparse.BooleanOptionalAction,
                      default=None, help="BPTT at most 2000 steps (the original's budget) "
                                         "instead of 20000")
    prot.add_argument("--hidden", type=int, default=50, metavar="H",
                      help="number of units (default 50; parts of the original's history "
                           "used 100 for N-CDI)")
    p.add_argument("--rule", choices=RULES, default=None,
                   help="learning rule, overriding the name prefix")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (weights, training data, validation set), an integer "
                        "in [0, 2**62 - C] with --count C; default: a fresh random seed, "
                        "printed and saved in NAME.json")
    p.add_argument("--count", type=int, default=1, metavar="C",
                   help="train C independent networks (seeds SEED, SEED+1, ...) as one batch; "
                        "saved as NAME_000 ... plus the groups file NAME.txt (default 1)")
    p.add_argument("--max-batch", type=int, default=None, metavar="B",
                   help="with --count: train at most B networks at once (default: as many "
                        "as fit in 60%% of the device's free memory, from each rule's "
                        "measured memory per network; the rest follow in further batches, "
                        "each network the same in any batch)")
    p.add_argument("--max-steps", type=int, default=None, metavar="S",
                   help="cap on updates (BPTT/e-prop/RFLO steps, GA generations, full-FORCE "
                        "trials, Hebbian batches); default: the rule's budget (below)")
    fixed = p.add_argument_group("fixed-length training (the noise-or-training-length experiment)")
    fixed.add_argument("--updates", type=int, default=None, metavar="K",
                       help="train every network exactly K updates, past the stop rule (which "
                            "then stops nothing; the stall rule is off): the validation "
                            "accuracy is recorded every 10 updates (val_step/val_acc in "
                            "NAME.pt) and the network saved after update K has status "
                            "'budget' and 'fixed_updates': K in NAME.json. Not with "
                            "--max-steps")
    fixed.add_argument("--snapshots", type=int, nargs="+", default=None, metavar="U",
                       help="with --updates: also save each network as it was after update U "
                            "(each U in 1..K-1), as NAME_uUUUU.pt + .json beside it (a "
                            "network like any other, its 'final_accuracy' validated at U), so "
                            "that its fixed points can be followed through training, e.g. "
                            "--updates 800 --snapshots 50 100 200 400")
    p.add_argument("--stall-window", type=int, default=STOP.stall_window, metavar="K",
                   help="the stall rule: a network stalls when every validation in its "
                        f"last K updates (since a restart) is below {STOP.stall_below} "
                        "accuracy, i.e. it sits near chance; --on-stall says what then "
                        f"happens (default {STOP.stall_window}; 0 disables; off with "
                        "--original-budgets, as the original trained to its budgets)")
    p.add_argument("--on-stall", choices=("stop", "continue"), default=None,
                   help="what a stall does: stop the network (status 'stalled') or say so "
                        "above the progress bar and train on (the JSON's 'stalled_at' records "
                        "the update); default: continue for the Hebbian rule, whose networks "
                        "often leave chance late (see docs/how-it-works.md), stop for the others")
    add_device_arg(p, "where to train")
    p.add_argument("--record-activity", action="store_true",
                   help="keep a compact record of hidden activity during training (float16 "
                        "rates of 4 fixed probe trials per context, every 10th time step, "
                        "every K updates) in NAME.pt, for tca_analysis.py")
    p.add_argument("--record-every", type=int, default=5, metavar="K",
                   help="with --record-activity: record every K updates (default 5; the "
                        "interval doubles whenever 200 records pile up)")
    p.add_argument("--force", action="store_true",
                   help="overwrite existing model files of the same name")
    p.add_argument("--resume", action="store_true",
                   help="go on from the checkpoint of an interrupted run of this command "
                        "(NAME.ckpt beside its files, written every 100 updates and when a "
                        "run is stopped; removed when the run ends): the networks end as if "
                        "never stopped, and the ones it had finished are kept as they are. "
                        "A checkpoint of other arguments, device, thread count or package "
                        "versions, or a damaged one, is set aside as NAME.ckpt.unusable with "
                        "a one-line note and training starts afresh (then a finished network "
                        "is only overwritten with --force). Without a checkpoint it trains "
                        "afresh. Not with --record-activity")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--models-dir", default=None, metavar="DIR", help=MODELS_DIR_HELP)
    return p


def validate_args(args) -> tuple[str, object]:
    if args.task is not None and args.rdm:
        raise UserError("give one task only: either --task NAME or --rdm, not both")
    if args.task is None and args.rdm and args.N is not None:
        raise UserError("give one task only: either --rdm or --N K, not both")
    if args.task is None and not args.rdm and args.N is None:
        raise UserError("no task given: add --rdm (RDM task) or --N K (N-CDI; --N 2 is CDI)")
    if args.N is not None:
        V.contexts(args.N, "--N")
    V.noise(args.variance, "-v/--variance")
    V.mean(args.mean, "-m/--mean")
    V.integer(args.count, "--count", 1, MAX_COUNT)
    if args.max_batch is not None:
        V.integer(args.max_batch, "--max-batch", 1)
    V.integer(args.record_every, "--record-every", 1)
    if args.resume and args.record_activity:
        raise UserError("--resume cannot go on with --record-activity (the activity record "
                        "is not checkpointed); train afresh with --force")
    V.integer(args.stall_window, "--stall-window (0: off)", 0)
    if args.max_steps is not None:
        V.integer(args.max_steps, "--max-steps", 1)
    if args.updates is not None:
        if args.max_steps is not None:
            raise UserError("--updates K trains exactly K updates: give it or --max-steps, "
                            "not both")
        V.integer(args.updates, "--updates", 1, MAX_UPDATES)
    if args.snapshots is not None:
        if args.updates is None:
            raise UserError("--snapshots needs --updates K (snapshots of a fixed-length run)")
        bad = [u for u in args.snapshots if not 1 <= u < args.updates]
        if bad:
            raise UserError(f"--snapshots must lie in 1..{args.updates - 1} (the network after "
                            f"update {args.updates} is NAME itself), got {bad[0]}")
        if len(set(args.snapshots)) != len(args.snapshots):
            raise UserError("--snapshots lists an update twice")
        args.snapshots = sorted(args.snapshots)
    if args.seed is not None:
        V.seed_range(args.seed, args.count, "--seed")
    check_name(args.name)
    rule = args.rule or rule_from_name(args.name)
    try:
        check_hidden(rule, args.hidden)
    except UserError as e:
        raise UserError(f"--{e}") from None
    name = args.task if args.task is not None else ("rdm" if args.rdm else "ncdi")
    task = parse(name, args.N, what="the task").make(args.variance, args.mean)
    return rule, task


def protocol_from_args(args) -> Protocol:
    base = Protocol.named(args.protocol)
    on = {s: getattr(args, s) for s in SWITCHES if getattr(args, s) is not None}
    return dataclasses.replace(base, hidden=args.hidden, **on)


def pick_device(choice: str) -> torch.device:
    return torch.device(resolve_device(choice))


def _last_validation(history, p: int) -> dict | None:
    """The latest validated update of network p and its accuracy."""
    if not history.val_steps[p]:
        return None
    i = max(range(len(history.val_steps[p])), key=lambda j: history.val_steps[p][j])
    return {"step": history.val_steps[p][i], "accuracy": history.val_acc[p][i]}


def member_names(name: str, count: int) -> list[str]:
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


class SnapshotWriter:
    """An observer of :func:`rnn.training.fit` that saves every network still
    training as it is after each update of ``at`` (validated there), as a
    network file of its own beside the run's (``snapshot_names``)."""

    def __init__(self, at: list[int], names: list[str], ident: dict, settings: dict,
                 seeds: list[int], val: ValidationSet, directory: Path, lock=None,
                 force: bool = False):
        self.at = list(at)
        self.names, self.ident, self.settings = names, ident, settings
        self.seeds, self.val = seeds, val
        self.directory, self.lock, self.force = directory, lock, force
        self.written: list[Path] = []

    def __call__(self, step: int, trainer, active: list[int]) -> None:
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


def train_batch(args, rule, rs, task, cfg, stop, protocol, device, activation,
                names: list[str], seeds: list[int], members: list[int],
                first_seed: int, directory: Path, quiet: bool, lock):
    """Train and save one batch of networks (``members``: their indices in the
    whole --count run) under ``lock`` (an :class:`rnn.io.store.NameLock` holding
    their names); returns (FitResult, trainer, files written)."""
    from rnn import resume as rsm
    trainer = rs.make(cfg, task, seeds, device, activation, protocol)
    recorder = None
    if args.record_activity:
        from rnn.analysis.tca import ActivityRecorder
        recorder = ActivityRecorder(task, seeds, trainer.model.hidden, device,
                                    every=args.record_every)
    val = ValidationSet.make(task, seeds, trainer.model.hidden, device, protocol)
    ident = identity(rule, task, trainer.model, X0_SCALE)
    common = {                  # the run's settings, in every network's record
        "trainer": dataclasses.asdict(cfg), "stop_rule": stop.to_dict(),
        "protocol": protocol.to_dict(),
        "validation": {"trials": val.trials.n_trials, "strengths": "linspace(0, 0.1875, 20), "
                       "cycled", "strength_0_always_correct": protocol.lenient_stop,
                       "x0": "redrawn every check" if protocol.lenient_stop else "fixed"},
        "device": str(device), "torch_threads": torch.get_num_threads(),
        **package_versions_and_command(),
    }
    if args.updates is not None:
        common["fixed_updates"] = args.updates
        if args.snapshots:
            common["snapshots"] = list(args.snapshots)

    snapshots = None
    if args.snapshots:
        snapshots = SnapshotWriter(args.snapshots, names, ident, common, seeds, val,
                                   directory, lock, args.force)
    kept: set[int] = set()        # networks a resumed run had finished: their files stay

    def save_all(res: FitResult, phase: str, directory=directory, lock=lock) -> list[Path]:
        written = []
        for p, nm in enumerate(names):
            if p in kept:
                continue
            status = res.status[p]
            if phase == "checkpoint" and status != "converged":
                status = "in_progress"
            h = res.history
            meta = record(nm, ident, status, seed=seeds[p], steps=res.steps_run[p],
                          accuracy=res.final_acc[p], settings=common, outcome={
                              "stop_step": h.stop_step[p] if h.stop_step[p] > 0 else None,
                              "stalled_at": h.stall_step[p] if h.stall_step[p] > 0 else None,
                              "validations_run": len(h.val_steps[p]),
                              "last_validation": _last_validation(h, p),
                              "wall_time_s": round(res.wall_time, 3),
                              # a resumed run: the stretches it ran in, each on its machine
                              **({"segments": segments} if res.resumed_at else {}),
                              **trainer.extra_meta(p)})
            if args.count > 1:
                meta["population"] = {"name": args.name, "index": members[p],
                                      "count": args.count, "first_seed": first_seed}
            vs, va = res.history.validation(p)
            hist = {"loss": res.history.losses(p).to(torch.float32), "val_step": vs,
                    "val_acc": va, **trainer.extra_history(p)}
            if recorder is not None:
                hist.update(recorder.history(p, res.steps_run[p]))
            single = trainer.model.select(p).to("cpu")
            written += list(save_model(nm, single, meta, hist, directory, lock=lock,
                                       force=args.force))
        return written

    ck = rsm.path_for(directory, names[0])
    run_fingerprint = rsm.fingerprint(
        rule=rule, task=task.to_dict(), trainer=dataclasses.asdict(cfg),
        stop_rule=stop.to_dict(), protocol=protocol.to_dict(), activation=activation,
        seeds=list(seeds), names=list(names), device=str(device),
        torch_threads=torch.get_num_threads(),
        # what decides the arithmetic; the machine is recorded, not matched
        versions={k: v for k, v in common["versions"].items() if k not in ("platform", "cpu")})
    here = (common["versions"]["cpu"], common["versions"]["platform"])
    segments = [rsm.segment(0, *here)]

    def checkpoint(res: FitResult) -> None:
        # a failed checkpoint (a full disk) does not end the run: the final save
        # rescues the networks where the models folder cannot take them
        try:
            save_all(res, "checkpoint")
            if recorder is None:
                rsm.save(ck, run_fingerprint, res.loop, trainer, segments)
        except (SaveError, OSError, RuntimeError) as e:
            print(f"warning: checkpoint after {rs.unit} {res.loop.get('step')} not saved ({e}); "
                  f"training goes on", file=sys.stderr, flush=True)

    loop = None
    if args.resume and ck.exists():
        try:
            d = rsm.load(ck, run_fingerprint)
            rsm.load_object_state(trainer, d["trainer"])
            loop = d["loop"]
            step = loop.get("step")          # checked by fit before any update
            segments = d["segments"] + [rsm.segment(step if isinstance(step, int) else 0, *here)]
        except rsm.ResumeError as e:
            trainer, loop = _set_aside(ck, e, rs, cfg, task, seeds, device, activation, protocol)
    if loop is not None:
        # this run's own earlier files (its checkpoint matched): it may write them again
        lock.written.update(n for nm in names for n in [nm, *snapshot_names(nm, args.snapshots)])
    if loop is not None and isinstance(loop.get("active"), list):
        kept |= {p for p in range(len(names)) if p not in loop["active"]
                 and (directory / f"{names[p]}.json").exists()}
    if loop is None and not args.force:
        _refuse_finished(directory, names)
    if loop is not None and not quiet:
        print(f"resuming {ck.name} after {rs.unit} {loop.get('step')}", flush=True)

    def run(loop):
        # Ctrl-C or SIGTERM (a killed job): fit finishes the update, returns 'interrupted'
        return fit(trainer, val, cfg.max_steps, stop, quiet=quiet, unit=rs.unit, names=names,
                   checkpoint=checkpoint, resume=loop,
                   observers=tuple(o for o in (recorder, snapshots) if o is not None))
    try:
        res = run(loop)
    except rsm.ResumeError as e:        # raised before any update, by the loop's own checks
        trainer, _ = _set_aside(ck, e, rs, cfg, task, seeds, device, activation, protocol)
        kept.clear()
        segments[:] = [rsm.segment(0, *here)]
        if not args.force:
            _refuse_finished(directory, names)
        res = run(None)
    written = _save_or_rescue(lambda folder, lock_: save_all(res, "final", folder, lock_),
                              directory, names, lock)
    if "interrupted" not in res.status:
        ck.unlink(missing_ok=True)      # the run ended: nothing to go on from
    if snapshots is not None:
        written = snapshots.written + written
    return res, trainer, written


def _save_or_rescue(save, directory: Path, names: list[str], lock) -> list[Path]:
    """``save(folder, lock)`` into the models folder; if that write fails for any
    reason (a full disk makes torch.save raise a RuntimeError), the whole batch
    into a fresh rescue folder, and a one-line error that names it: a trained
    network is never lost to a failed write."""
    from rnn.io.store import rescue_folder
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


def _set_aside(ck: Path, err, rs, cfg, task, seeds, device, activation, protocol):
    """An unusable checkpoint: renamed out of the way with a one-line note; a
    fresh trainer (the failed load may have changed the old one)."""
    from rnn import resume as rsm
    aside = rsm.set_aside(ck)
    print(f"note: checkpoint {ck} {err}; set aside as {aside.name}, training afresh",
          file=sys.stderr, flush=True)
    return rs.make(cfg, task, seeds, device, activation, protocol), None


def _all_finished(directory: Path, names: list[str]) -> bool:
    """Every network of ``names`` finished on disk, and no checkpoint of their batch."""
    from rnn import resume as rsm
    return not rsm.path_for(directory, names[0]).exists() and all(
        status_on_disk(directory, n) in FINISHED for n in names)


def _refuse_finished(directory: Path, names: list[str]) -> None:
    """Training afresh under --resume without --force: never over a finished network."""
    from rnn.resume import UNUSABLE, UNUSABLE_EXIT
    for nm in names:
        f = directory / f"{nm}.json"
        st = status_on_disk(directory, nm)
        if st in FINISHED:
            raise UserError(f"{f} is a finished network ({st}) and its run's {UNUSABLE}; "
                            f"pass --force to train it afresh", status=UNUSABLE_EXIT)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rule, task = validate_args(args)
    rs = get(rule)
    directory = models_dir(args.models_dir)
    names = member_names(args.name, args.count)
    ensure_writable(directory, max(len(n) for n in names))
    own = [n for nm in names for n in [nm, *snapshot_names(nm, args.snapshots)]]
    # the names are this run's alone until it ends (a second run of one name is refused)
    with NameLock(directory, own, what=f"train_models.py {args.name}") as lock:
        return _train(args, rule, rs, task, directory, names, own, lock)


def _train(args, rule, rs, task, directory: Path, names: list[str], own: list[str],
           lock) -> int:
    """main's work once the names are held: refuse what would overwrite, train
    the batches, write the groups file and report."""
    files = [directory / f"{n}.{ext}" for n in own for ext in ("pt", "json")]
    if args.count > 1:
        files.append(directory / f"{args.name}.txt")
    existing = [f for f in files if f.exists()]
    if existing and not args.force and not args.resume:
        shown = ", ".join(str(f) for f in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise UserError(f"{shown} already exists; choose another name or pass --force to "
                        f"overwrite")
    device = pick_device(args.device)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    seeds = [seed + i for i in range(args.count)]
    activation = "relu" if args.relu else rs.activation
    protocol = protocol_from_args(args)
    cfg = rs.make_config(task, args.updates or args.max_steps)
    if args.max_steps is None and args.updates is None:
        cfg = dataclasses.replace(cfg, max_steps=protocol.budget(rule, cfg.max_steps))
    stop = StopConfig.for_run(protocol, args.on_stall or rs.on_stall, args.stall_window)
    if args.updates is not None:
        stop = dataclasses.replace(stop, stall_window=0, until_budget=True)
    from rnn.sizing import bytes_per_network, require
    require(bytes_per_network(rule, task, protocol.hidden, cfg),
            f"one network of {protocol.hidden} units on {task.describe()}", device,
            "choose fewer units, contexts or trials")
    quiet = args.quiet
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    say(f"training {len(names)} network{'s' if len(names) > 1 else ''} with "
        f"{rs.long_name} on {task.describe()}; seed {seed}; device {device}; "
        f"protocol {protocol.label()}")

    from rnn.sizing import networks_per_batch
    per_batch = networks_per_batch(rule, task, protocol.hidden, cfg, device, args.count,
                                   args.max_batch)
    batches = [list(range(k, min(k + per_batch, args.count)))
               for k in range(0, args.count, per_batch)]
    if len(batches) > 1:
        say(f"{args.count} networks in {len(batches)} batches of up to {per_batch} (device "
            f"memory{'' if args.max_batch is None else ', --max-batch'})")
    written, outcomes, listed = [], [], []
    for members in batches:
        batch_names = [names[p] for p in members]
        listed += batch_names
        if args.resume and _all_finished(directory, batch_names):
            # a batch an earlier run of this command finished (its checkpoint is gone)
            say(f"{batch_names[0]}...{batch_names[-1]}: finished earlier, kept")
            continue
        res, trainer, files = train_batch(args, rule, rs, task, cfg, stop, protocol, device,
                                          activation, [names[p] for p in members],
                                          [seeds[p] for p in members], members,
                                          seed, directory, quiet, lock)
        written += files
        outcomes += [(names[p], res, i) for i, p in enumerate(members)]
        if any(st == "interrupted" for st in res.status):
            break
    if args.count > 1:
        from rnn.io.groups import write_groups_file
        done = set(nm for nm, _, _ in outcomes) | {n for n in listed
                                                    if _all_finished(directory, [n])}
        written.append(write_groups_file(directory / f"{args.name}.txt",
                                         [(args.name, [n for n in listed if n in done])]))
    interrupted = any(res.status[i] == "interrupted" for _, res, i in outcomes)
    for nm, res, p in outcomes:
        st = res.status[p]
        acc = res.final_acc[p]
        acc_s = "unknown" if acc != acc else f"{acc:.3f}"
        units = plural(rs.unit)
        what = {"converged": f"reached the stop rule at {rs.unit} {res.steps_run[p]}",
                "budget": f"did NOT reach the stop rule within {res.steps_run[p]} {units}",
                "interrupted": f"interrupted after {res.steps_run[p]} {units} (saved as not "
                               f"converged)",
                "stalled": f"STALLED near chance (every validation below {stop.stall_below} for "
                           f"{stop.stall_window} {units}) and was stopped after "
                           f"{res.steps_run[p]} {units}; try another seed",
                "diverged": f"DIVERGED (its loss or weights became non-finite) after "
                            f"{res.steps_run[p]} {units}; the last finite weights are saved"
                }[st]
        if stop.until_budget and st == "budget":
            what = f"trained exactly {res.steps_run[p]} {units} (--updates)"
        if st != "stalled" and res.history.stall_step[p] > 0:
            what += (f" (it sat near chance, every validation below {stop.stall_below} for "
                     f"{stop.stall_window} {units}, by {rs.unit} {res.history.stall_step[p]}, "
                     f"and trained on)")
        print(f"{nm}: {what}; validation accuracy {acc_s}; {res.wall_time:.1f} s")
    for f in written:
        print(f"wrote {f}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run_cli(main)
