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

import torch

from rnn import validate as V
from rnn.arch import ARCHS
from rnn.errors import UserError
from rnn.cli import MODELS_DIR_HELP, Parser, add_device_arg, finite_float, resolve_device, run_cli
from rnn.io import NAME_RULE, check_name, ensure_writable, models_dir
from rnn.io.store import NameLock
from rnn.protocol import SWITCHES, Protocol
from rnn.rules import (RULES, check_hidden, get, prefix_list, prefix_summary, rule_from_name,
                       rules_help)
from rnn.run import RunFiles, RunPlan, train_run
from rnn.training import StopConfig, plural
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
               description="Train a rate RNN (50 units, dt 0.1; or a vanilla RNN, GRU or LSTM "
                           "with --arch) on the RDM, CDI or N-CDI task and save it as "
                           "models/NAME.pt + models/NAME.json.",
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=RULE_HELP.format(rules=rules_help(), window=STOP.window,
                                       threshold=STOP.threshold)
                      + "\nexamples:\n  python train_models.py bptt_a -v 0.5 --N 2"
                      "   (CDI task, BPTT)\n  python train_models.py ga_b -v 0.5 --rdm"
                      "     (RDM task, GA)\n" f"name prefixes: {prefix_list()}")
    p.add_argument("name", help="model name; its prefix picks the learning rule "
                                f"({prefix_summary()}) unless --rule is given; "
                                f"allowed: {NAME_RULE}")
    p.add_argument("-v", "--variance", type=finite_float, default=None, metavar="V",
                   help="input noise level (default 0.5; the paper uses 0.1, 0.5, 1.0; the "
                        "flip-flop's default is 0). As in the original code, unit Gaussian "
                        "noise is multiplied by V at every step, so V is the noise STANDARD "
                        "DEVIATION, not a variance")
    p.add_argument("-m", "--mean", type=finite_float, default=None, metavar="M",
                   help=f"largest evidence strength; strengths are drawn from U(0, M) "
                        f"(default {DEFAULT_MEAN}; the flip-flop's pulse height, default 1)")
    task = p.add_argument_group("task (give exactly one)")
    task.add_argument("--N", type=int, default=None, metavar="K",
                      help="N-CDI task with K contexts (2K inputs); --N 2 is the CDI task")
    task.add_argument("--rdm", action="store_true", help="RDM task (one input)")
    task.add_argument("--task", default=None, metavar="NAME",
                      help="any task of the task table by name (tasks/table.py: rdm, cdi, "
                           "ncdiK, flipflop (the 3-bit flip-flop: BPTT, GA), ngpdm or ngcdm "
                           "(neurogym's perceptual and context-dependent decision making: "
                           "BPTT, GA; -v is their sigma), or a family with --N)")
    p.add_argument("--relu", action="store_true",
                   help="use the ReLU activation max(0, x) instead of the rule's "
                        "(1 + tanh for BPTT/GA/e-prop/RFLO, tanh for FF/Hebbian; a vanilla "
                        "RNN's tanh)")
    p.add_argument("--arch", choices=ARCHS, default="rate",
                   help="the network: 'rate' (default), the paper's continuous-time rate "
                        "network; 'vanilla', 'gru', 'lstm': discrete-time networks with "
                        "PyTorch's equations (docs/how-it-works.md), trained by bptt (every "
                        "weight, by autograd) or ga; --hidden counts their units")
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
    if args.variance is not None:
        V.noise(args.variance, "-v/--variance")
    if args.mean is not None:
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
    rule = args.rule or rule_for(args.name, args.arch)
    try:
        check_hidden(rule, args.hidden)
    except UserError as e:
        raise UserError(f"--{e}") from None
    get(rule).check_arch(args.arch)
    if args.relu and args.arch in ("gru", "lstm"):
        raise UserError(f"--relu: a {args.arch}'s nonlinearities are fixed by its equations; "
                        f"--relu applies to the rate network and the vanilla RNN")
    name = args.task if args.task is not None else ("rdm" if args.rdm else "ncdi")
    task = parse(name, args.N, what="the task").make(args.variance, args.mean)
    return rule, task


def rule_for(name: str, arch: str) -> str:
    """The rule the name's prefix picks; a name that picks none trains a
    discrete-time architecture with BPTT (said in one line), as
    Maheswaranathan et al. trained theirs (``gru_x --arch gru``)."""
    try:
        return rule_from_name(name)
    except UserError:
        if arch == "rate":
            raise
    print(f"note: the name {name!r} picks no learning rule; training the {arch} network "
          f"with bptt (give --rule to choose)", file=sys.stderr)
    return "bptt"


def protocol_from_args(args) -> Protocol:
    base = Protocol.named(args.protocol)
    on = {s: getattr(args, s) for s in SWITCHES if getattr(args, s) is not None}
    return dataclasses.replace(base, hidden=args.hidden, **on)


def plan_from_args(args, rule: str, task) -> RunPlan:
    """The run's plan from checked arguments."""
    return RunPlan.make(rule, task, protocol_from_args(args), max_steps=args.max_steps,
                        updates=args.updates, on_stall=args.on_stall,
                        stall_window=args.stall_window, relu=args.relu, arch=args.arch)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rule, task = validate_args(args)
    directory = models_dir(args.models_dir)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    files = RunFiles(args.name, directory, seed, args.count, args.force, args.resume,
                     args.snapshots, args.record_every if args.record_activity else None)
    ensure_writable(directory, max(len(n) for n in files.names))
    # the names are this run's alone until it ends (a second run of one name is refused)
    with NameLock(directory, files.own, what=f"train_models.py {args.name}") as lock:
        files.refuse_existing()
        device = torch.device(resolve_device(args.device))
        plan = plan_from_args(args, rule, task)
        hidden = plan.protocol.hidden
        plan.require_memory(1, f"one network of {hidden} units on {task.describe()}", device,
                            "choose fewer units, contexts or trials")
        say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
        n = len(files.names)
        net = "" if plan.arch == "rate" else f"{plan.arch} "
        say(f"training {n} {net}network{'s' if n > 1 else ''} with {get(rule).long_name} on "
            f"{task.describe()}; seed {seed}; device {device}; protocol "
            f"{plan.protocol.label()}")
        run = train_run(plan, files, device, lock, quiet=args.quiet, say=say,
                        max_batch=args.max_batch)
    for nm, res, p in run.outcomes:
        print(f"{nm}: {outcome(res, p, plan)}")
    for f in run.written:
        print(f"wrote {f}")
    return 130 if run.interrupted else 0


def outcome(res, p: int, plan: RunPlan) -> str:
    """How network p's training ended, in words, with its accuracy and time."""
    st, n, stop, unit = res.status[p], res.steps_run[p], plan.stop, plan.unit
    units = plural(unit)
    what = {"converged": f"reached the stop rule at {unit} {n}",
            "budget": f"did NOT reach the stop rule within {n} {units}",
            "interrupted": f"interrupted after {n} {units} (saved as not converged)",
            "stalled": f"STALLED near chance (every validation below {stop.stall_below} for "
                       f"{stop.stall_window} {units}) and was stopped after {n} {units}; "
                       f"try another seed",
            "diverged": f"DIVERGED (its loss or weights became non-finite) after {n} {units}; "
                        f"the last finite weights are saved"}[st]
    if stop.until_budget and st == "budget":
        what = f"trained exactly {n} {units} (--updates)"
    if st != "stalled" and res.history.stall_step[p] > 0:
        what += (f" (it sat near chance, every validation below {stop.stall_below} for "
                 f"{stop.stall_window} {units}, by {unit} {res.history.stall_step[p]}, "
                 f"and trained on)")
    acc = res.final_acc[p]
    return (f"{what}; validation accuracy {'unknown' if acc != acc else f'{acc:.3f}'}; "
            f"{res.wall_time:.1f} s")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run_cli(main)
