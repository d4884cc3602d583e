#!/usr/bin/env python
"""Turn networks trained elsewhere into model files of this tool.

    python import_model.py miconi heb_a -v 0.5            # models/heb_a_win.txt + heb_a_J.txt
    python import_model.py original bptt_old               # a model of the original toolkit
    python import_model.py torch my_gru.pt --as gru_mine -v 0.5 --N 2   # your own PyTorch RNN

miconi:   weights written by Miconi's C++ program (BiologicallyPlausibleLearningRNN):
          NAME_win.txt (units x (1 + inputs); column 0 is the unused go channel) and
          NAME_J.txt (units x units), whitespace-separated.  Units 1, 10, 11 are
          the clamped bias units, unit 0 the output.
original: models/NAME.pt and models/NAME.txt of the original research code
          (McMahan et al.).  The original .pt is a pickle; it is read with
          torch.load(weights_only=True), allowing only NumPy's array types, so no
          code from the file can run.  A file that needs more is refused unless
          you pass --trust.  Converting in place keeps the originals as
          NAME.orig.pt and NAME.orig.txt.
torch:    a PyTorch nn.RNN, nn.GRU or nn.LSTM (one layer, one direction) with a
          linear readout, as a state dict (torch.save(model.state_dict(), FILE));
          read with weights_only=True.  The architecture comes from the weights'
          shapes; the readout is the one other [outputs, H] weight (or --readout
          KEY); of several outputs the first is the decision (its sign).  The
          network then gets the fixed points, topology, similarity metrics and
          figures of this tool's own networks.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from rnn import validate as V
from rnn.errors import UserError
from rnn.cli import MODELS_DIR_HELP, Parser, finish, finite_float, run_cli
from rnn.io import VERSION, check_name, check_payload, ensure_writable, models_dir, save_model
from tasks import DEFAULT_MEAN


def build_parser() -> Parser:
    p = Parser(prog="import_model.py", description=__doc__.splitlines()[1],
               epilog="Examples: 'python import_model.py miconi heb_a -v 0.5 --rdm'; "
                      "'python import_model.py original bptt_old'")
    sub = p.add_subparsers(dest="source", metavar="{miconi,original,torch}", required=True)
    m = sub.add_parser("miconi", help="weights from Miconi's C++ program (text matrices)")
    m.add_argument("name", help="NAME: reads models/NAME_win.txt and models/NAME_J.txt and "
                                "writes models/NAME.pt (use --as for another name)")
    m.add_argument("-v", "--variance", type=finite_float, required=True, metavar="V",
                   help="the input noise (standard deviation) the network was trained with")
    add_task_args(m)
    o = sub.add_parser("original", help="a model of the original research code")
    o.add_argument("name", help="NAME: reads models/NAME.pt and models/NAME.txt")
    o.add_argument("--trust", action="store_true",
                   help="unpickle the file in full even if it needs more than NumPy arrays; "
                        "unpickling can run arbitrary code, so only for files whose origin you "
                        "trust")
    t = sub.add_parser("torch", help="a PyTorch nn.RNN / nn.GRU / nn.LSTM state dict with its "
                                     "readout")
    t.add_argument("name", metavar="FILE", help="the state dict (any path); the model is named "
                                                "after its stem unless --as")
    t.add_argument("-v", "--variance", type=finite_float, default=None, metavar="V",
                   help="the input noise (standard deviation) of the task it was trained on "
                        "(required for a decision task; the flip-flop's default is 0)")
    tg = add_task_args(t)
    tg.add_argument("--task", default=None, metavar="NAME",
                    help="a task of the task table by name (e.g. flipflop: its 3 outputs are "
                         "the readout's first 3 rows)")
    t.add_argument("--rule", choices=("bptt", "ga"), default="bptt",
                   help="the learning rule it was trained with, for the record and the "
                        "groups (default bptt: gradient descent)")
    t.add_argument("--readout", default=None, metavar="KEY",
                   help="the readout module's name in the state dict (KEY.weight, KEY.bias), "
                        "where more than one [outputs, H] weight is there")
    t.add_argument("--relu", action="store_true",
                   help="an nn.RNN built with nonlinearity='relu' (a state dict does not say)")
    for sp in (m, o, t):
        sp.add_argument("--as", dest="new_name", default=None, metavar="NEW",
                        help="name of the converted model (default: the same name)")
        sp.add_argument("--force", action="store_true",
                        help="overwrite an existing model of the new name")
        sp.add_argument("--models-dir", default=None, metavar="DIR", help=MODELS_DIR_HELP)
        sp.add_argument("--quiet", action="store_true", help="print only the files written")
    return p


def add_task_args(sp):
    """-m, and --rdm or --N: the task of an imported network (its group, returned)."""
    sp.add_argument("-m", "--mean", type=finite_float, default=DEFAULT_MEAN,
                    help=f"largest evidence strength of the task (default {DEFAULT_MEAN})")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--rdm", action="store_true", help="the RDM task (default for 1 input)")
    g.add_argument("--N", type=int, default=None,
                   help="the N-CDI task (default: inputs / 2 for an even number of inputs)")
    return g


def source_files(paths, directory) -> list[dict]:
    """The imported files by name relative to the models folder, with their
    SHA-256, so a models folder can be shared without absolute paths."""
    import hashlib
    out = []
    for p in paths:
        if Path(p).exists():
            out.append({"name": os.path.relpath(p, directory),
                        "sha256": hashlib.sha256(Path(p).read_bytes()).hexdigest()})
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    directory = models_dir(args.models_dir)
    name = Path(args.name).stem if args.source == "torch" else args.name
    name = check_name(args.new_name or name) if args.source == "torch" else check_name(name)
    new = check_name(args.new_name or name)
    ensure_writable(directory, max(len(name), len(new)))
    from rnn.run import identity, record
    from rnn.io.store import NameLock
    # the new name is this import's alone while it writes (another run of it is refused)
    with NameLock(directory, [new], what="import_model.py") as lock:
        read = {"miconi": _read_miconi, "original": _read_original,
                "torch": _read_torch}[args.source]
        model, task, rule, source, origin = read(args, directory, name, new)
        meta = record(new, identity(rule, task, model), "imported",
                      settings={"imported": True, "source": source})
        # refused before anything is written: NaN weights, a NaN noise ...
        check_payload(origin, {"version": VERSION, "network": model.to_state(0), "meta": meta})
        written = []
        if args.source == "original" and new == name:
            written += _keep_originals(args, directory, name)
        written += save_model(new, model, meta, {}, directory, lock=lock, force=args.force)
    if not args.quiet:
        kind = getattr(model, "arch", "rate")
        units = getattr(model, "units", model.hidden)
        print(f"{new}: {meta['rule']} {kind} network, {task.describe()}, {units} units")
    return finish(written)


def _read_miconi(args, directory: Path, name: str, new: str):
    """(model, task, rule, source, the file checks name) of Miconi's NAME_win.txt
    and NAME_J.txt."""
    from rnn.io.importers import import_miconi
    V.noise(args.variance, "-v/--variance")
    V.mean(args.mean, "-m/--mean")
    if args.N is not None:
        V.contexts(args.N, "--N")
    win, J = directory / f"{name}_win.txt", directory / f"{name}_J.txt"
    model, task = import_miconi(win, J, args.variance, args.mean, args.N, args.rdm)
    target = directory / f"{new}.pt"
    if target.exists() and not args.force:
        raise UserError(f"{target} already exists; pass --force or choose --as NEW")
    return model, task, "heb", {"program": "Miconi BiologicallyPlausibleLearningRNN",
                                "files": source_files([win, J], directory)}, J


def _read_torch(args, directory: Path, name: str, new: str):
    """(model, task, rule, source, the file checks name) of a PyTorch state dict."""
    from rnn.io.importers import import_torch, task_for_inputs
    if args.variance is not None:
        V.noise(args.variance, "-v/--variance")
    V.mean(args.mean, "-m/--mean")
    if args.N is not None:
        V.contexts(args.N, "--N")
    src = Path(args.name)
    task = None
    if args.task is not None:
        from tasks.table import parse
        mean = None if args.mean == DEFAULT_MEAN else args.mean   # the task's own default
        task = parse(args.task, what="--task").make(args.variance, mean)
    if args.variance is None and not getattr(task, "sequence", False):
        raise UserError("give -v V, the input noise the network was trained with")
    outputs = getattr(task, "n_outputs", 1)
    model, read = import_torch(src, "relu" if args.relu else "tanh", args.readout, outputs)
    if args.relu and model.arch != "vanilla":
        raise UserError(f"--relu: {src} holds a {model.arch}, whose nonlinearities are fixed")
    if task is None:
        task = task_for_inputs(model.n_inputs, args.variance, args.mean, args.N, args.rdm)
    elif task.n_inputs != model.n_inputs:
        raise UserError(f"{src} has {model.n_inputs} inputs but {task.describe()} has "
                        f"{task.n_inputs}")
    target = directory / f"{new}.pt"
    if target.exists() and not args.force:
        raise UserError(f"{target} already exists; pass --force or choose --as NEW")
    if read["readout_outputs"] > outputs and not args.quiet:
        what = "the first is read as the decision (its sign)" if outputs == 1 else \
            f"the first {outputs} are the task's"
        print(f"note: {read['readout']} has {read['readout_outputs']} outputs; {what}",
              file=sys.stderr)
    files = [{"name": str(src), "sha256": __import__("hashlib").sha256(
        src.read_bytes()).hexdigest()}]
    return model, task, args.rule, {"program": "PyTorch state dict", "files": files, **read}, src


def _read_original(args, directory: Path, name: str, new: str):
    """(model, task, rule, source, the file checks name) of the original code's
    NAME.pt and NAME.txt."""
    from rnn.io.importers import (load_original_checkpoint, original_to_model,
                               read_original_hyperparams, task_for_inputs)
    src_pt, src_txt = directory / f"{name}.pt", directory / f"{name}.txt"
    ckpt = load_original_checkpoint(src_pt, trust=args.trust)
    hyper = read_original_hyperparams(src_txt)
    model, rule = original_to_model(ckpt, name, hyper)
    n_in = int(hyper.get("inputSize", model.n_inputs) or model.n_inputs)
    if n_in != model.n_inputs:
        raise UserError(f"{src_txt} says inputSize {n_in} but the weights have "
                        f"{model.n_inputs} inputs")
    noise = float(hyper.get("taskVar", 0.5))
    task = task_for_inputs(model.n_inputs, noise,
                           float(hyper.get("taskMean", DEFAULT_MEAN) or DEFAULT_MEAN),
                           None, False)
    target = directory / f"{new}.pt"
    if new != name and target.exists() and not args.force:
        raise UserError(f"{target} already exists; pass --force or choose another --as")
    return model, task, rule, {"program": "original research code (McMahan et al.)",
                               "files": source_files([src_pt, src_txt], directory),
                               "hyperparameters": hyper, "trusted_unpickling": args.trust}, src_pt


def _keep_originals(args, directory: Path, name: str) -> list[Path]:
    """An import in place keeps the original files beside the converted model."""
    src_pt, src_txt = directory / f"{name}.pt", directory / f"{name}.txt"
    kept = []
    for src, ext in ((src_pt, "pt"), (src_txt, "txt")):
        if src.exists():
            keep = directory / f"{name}.orig.{ext}"
            if keep.exists() and not args.force:
                raise UserError(f"{keep} already exists; pass --force or use --as NEW")
            shutil.copy2(src, keep)
            kept.append(keep)
    if src_txt.exists():
        os.unlink(src_txt)    # the models folder keeps .txt for groups files
    return kept


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
