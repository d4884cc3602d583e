#!/usr/bin/env python
"""Train an experiment grid on Dask — on this machine, or on a cluster — then compare.

    python run_grid.py experiments/grids/small.toml                 # embedded local cluster
    python run_grid.py GRID.toml --workers 4                        # 4 local workers
    python run_grid.py GRID.toml --scheduler tcp://HOST:8786        # a running Dask cluster
    python run_grid.py GRID.toml --list                             # what is trained, what not

Each cell of the grid file (see rnn/grid/format.py for the format) is split into jobs
(runs of consecutive seeds trained as one `train_models.py --count` batch);
the jobs go to the Dask workers, each job a subprocess with one CPU thread
(--threads).  Networks are written atomically into one models folder that
every worker must see (a shared file system on a cluster).  Rerunning is safe:
finished seeds are found by the seed recorded in their JSON and never trained
again; a job whose worker dies is run again elsewhere (Dask reschedules it)
and, being seeded, gives the same networks.  After training, each [[compare]]
of the grid is computed in this process (rnn.analysis.compare.compare_groups, the
analysis scripts' pipeline) on the networks that reached the stop rule.  Writes GRID_grid.json and
GRID_grid.md (what ran where, how long) into the models folder.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rnn import validate as V
from rnn.errors import UserError
from rnn.cli import Parser, add_device_arg, resolve_device, run_cli
from rnn.io import atomic_write_text, dumps_strict, ensure_writable
from rnn.rules import REGISTRY

ROOT = Path(__file__).resolve().parent


def build_parser() -> Parser:
    p = Parser(prog="run_grid.py",
               description="Train the cells of a grid file on Dask workers (embedded local "
                           "cluster by default), resumably, then run its comparisons.",
               epilog="Example: python run_grid.py experiments/grids/small.toml --workers 2")
    p.add_argument("grid", metavar="GRID.toml", help="the grid file (format: rnn/grid/format.py)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="address of a running Dask scheduler (default: start a local "
                        "cluster for this run)")
    p.add_argument("--workers", type=int, default=None, metavar="W",
                   help="local cluster: number of worker processes (default: one per CPU "
                        "core, or one per GPU with --device cuda)")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="CPU threads of each training job (default 1, so that the networks "
                        "are bit-identical however the grid is scheduled; other thread counts "
                        "round differently)")
    p.add_argument("--chunk", type=int, default=None, metavar="C",
                   help="networks per job (default: the cell's chunk, else the rule's: "
                        + ", ".join(f"{r.name} {r.chunk}" for r in REGISTRY.values()) + ")")
    add_device_arg(p, "where the jobs train")
    p.add_argument("--models-dir", default=None, metavar="DIR",
                   help="the grid's models folder, shared by all workers (default: the "
                        "grid file's models_dir, else grid-NAME/ in models/ or "
                        "$RNN_MODELS_DIR)")
    tls = p.add_argument_group(
        "TLS (a scheduler on a shared network: only holders of a certificate signed by "
        "your CA can send it work; see docs/grids.md)")
    tls.add_argument("--tls-ca-file", default=None, metavar="PEM",
                     help="the CA certificate the scheduler's and workers' certificates are "
                          "signed by; with it, --scheduler must be a tls:// address")
    tls.add_argument("--tls-cert", default=None, metavar="PEM",
                     help="this client's certificate (signed by the CA)")
    tls.add_argument("--tls-key", default=None, metavar="PEM",
                     help="this client's private key (default: inside --tls-cert)")
    p.add_argument("--retries", type=int, default=2,
                   help="times a failed job is retried (default 2); a job whose worker dies "
                        "is rescheduled by Dask in any case")
    p.add_argument("--cells", nargs="+", default=None, metavar="GLOB",
                   help="train only the cells whose names match one of these shell patterns "
                        "(e.g. '*-ga-*'); default: every cell")
    p.add_argument("--deadline", type=float, default=None, metavar="S",
                   help="start no job later than S seconds after training begins (the jobs "
                        "under way finish; the rest stay for a rerun), e.g. for a lent GPU")
    p.add_argument("--no-compare", action="store_true", help="train only")
    p.add_argument("--list", action="store_true",
                   help="print the cells, their jobs and what is trained; run nothing")
    p.add_argument("--commands", action="store_true",
                   help="print the train_models.py command line of each job still to run, "
                        "one per line (shell-quoted, for --device), and run nothing: for a "
                        "scheduler of your own, e.g. on a machine without Dask "
                        "(experiments/claims_gpu.sh)")
    p.add_argument("--quiet", action="store_true", help="no per-job lines")
    return p


def tls_security(args):
    """A Dask Security object for the --tls-* flags (None without them), checked
    before any work: the files must be readable, the scheduler a tls:// one."""
    given = [f for f in ("tls_ca_file", "tls_cert", "tls_key") if getattr(args, f)]
    if not given:
        if args.scheduler and args.scheduler.startswith("tls://"):
            raise UserError("--scheduler is a tls:// address: give --tls-ca-file and "
                            "--tls-cert (and --tls-key if the key is a separate file)")
        return None
    if not args.scheduler:
        raise UserError("--tls-* are for a running scheduler (--scheduler tls://HOST:PORT); "
                        "the local cluster listens on this machine only")
    if not args.scheduler.startswith("tls://"):
        raise UserError(f"with --tls-ca-file, --scheduler must be a tls:// address, got "
                        f"{args.scheduler!r}")
    if not (args.tls_ca_file and args.tls_cert):
        raise UserError("TLS needs both --tls-ca-file and --tls-cert")
    for f in given:
        path = Path(getattr(args, f))
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"--{f.replace('_', '-')} {path}: cannot read it "
                            f"({getattr(e, 'strerror', None) or e})") from None
        if "-----BEGIN" not in text:
            raise UserError(f"--{f.replace('_', '-')} {path}: not a PEM file")
    from distributed.security import Security
    return Security(tls_ca_file=args.tls_ca_file, tls_client_cert=args.tls_cert,
                    tls_client_key=args.tls_key, require_encryption=True)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from rnn.grid.format import read_grid
    from rnn.grid.jobs import finished, interleave, jobs_for, remaining, resumable
    from rnn.grid.runner import run_jobs
    from rnn.resume import standing
    grid = read_grid(args.grid)
    for flag, v in (("--workers", args.workers), ("--threads", args.threads),
                    ("--chunk", args.chunk)):
        if v is not None:
            V.integer(v, flag, 1)
    V.integer(args.retries, "--retries", 0)
    security = tls_security(args)
    folder = grid.folder(args.models_dir)
    longest = max(len(c.name) for c in grid.cells) + 16     # NAME_sSEED_NNN.json
    if args.deadline is not None and not (0 <= args.deadline < 1e9):
        raise UserError(f"--deadline must be a number of seconds, 0 or more, got {args.deadline}")
    train_cells = grid.cells
    if args.cells:
        import fnmatch
        train_cells = [c for c in grid.cells if any(fnmatch.fnmatchcase(c.key, g)
                                                    for g in args.cells)]
        if not train_cells:
            raise UserError(f"--cells {' '.join(args.cells)}: no cell of {grid.name} matches "
                            f"(cells: {', '.join(c.key for c in grid.cells)})")
    if args.list and args.commands:
        raise UserError("give --list or --commands, not both")
    if not (args.list or args.commands):     # they only read: they create nothing
        ensure_writable(folder, longest)
    jobs = interleave([jobs_for(c, folder, args.chunk) for c in train_cells])
    if args.commands:
        import shlex

        from rnn.grid.runner import job_command
        # as asked (the commands may be for another machine); auto: this one's
        device = args.device if args.device != "auto" else resolve_device("auto")
        for j in jobs:
            print(shlex.join(job_command(j, folder, device)))
        return 0
    total = sum(c.networks for c in grid.cells)
    done_before = sum(len(finished(folder, c)) for c in grid.cells)
    print(f"grid {grid.name}: {len(grid.cells)} cells, {total} networks; {done_before} "
          f"already trained in {folder}; {len(jobs)} jobs to run")
    if args.list:
        for c in grid.cells:
            have = len(finished(folder, c))
            todo = [j for j in jobs if j.cell is c]
            cut = [(seed, *standing(ck)) for seed, _, ck in resumable(folder, c)
                   if any(j.seed == seed for j in todo)]
            print(f"  {c.key}: {have}/{c.networks} trained" +
                  (f"; {len(todo)} job(s) of up to {max(j.count for j in todo)} networks, "
                   f"seeds {todo[0].seed}-{todo[-1].seed + todo[-1].count - 1}" if todo else "")
                  + "".join(f"; the job of seed {seed} goes on after update {step}"
                            + (f" ({how})" if how else "")
                            for seed, step, how in cut if step is not None)
                  + (f"; {left.basis}" if (left := remaining(folder, c)).missing
                     else ""))
        return 0
    if args.device == "auto":
        import torch
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.time()
    records, failed = [], []
    if jobs:
        records, failed = run_jobs(jobs, folder, scheduler=args.scheduler, security=security,
                                   workers=args.workers, threads=args.threads,
                                   device=args.device, retries=args.retries, quiet=args.quiet,
                                   deadline_s=args.deadline)
    wall = time.time() - t0
    comparisons = [] if args.no_compare else compare(grid, folder, args.quiet)
    summary = write_summary(grid, folder, records, failed, comparisons, wall)
    for path in summary:
        print(f"wrote {path}")
    if failed:
        print(f"{len(failed)} job(s) failed: " + "; ".join(f["error"] for f in failed[:3]),
              file=sys.stderr)
        return 1
    return 0


def compare(grid, folder: Path, quiet: bool) -> list[dict]:
    """Each [[compare]] of the grid on the networks that reached the stop rule,
    in this process through rnn.analysis.compare.compare_groups (the distances cached in
    the grid's folder).  Each comparison's groups file is written beside them,
    for the analysis scripts' figures."""
    from rnn.analysis.compare import compare_groups
    from rnn.grid.jobs import networks
    from rnn.io.groups import write_groups_file
    from rnn.io import load_model
    out = []
    for comp in grid.comparisons:
        groups, sizes = [], {}
        for label, cname in comp.groups.items():
            found = networks(folder, grid.cell(cname), ("converged",))
            sizes[label] = len(found)
            if found:
                groups.append((label, found))
        if len(groups) < 1 or min(sizes.values()) < 2:
            print(f"compare {comp.name}: skipped (converged networks per group: {sizes})")
            out.append({"name": comp.name, "networks": sizes, "skipped": True})
            continue
        # a groups file names networks of one folder: written where they all are
        gfile = None
        if all(f == folder for _, found in groups for f, _ in found):
            gfile = write_groups_file(folder / f"{comp.name}.txt",
                                      [(label, [m["name"] for _, m in found])
                                       for label, found in groups])
        models = [load_model(m["name"], f) for _, found in groups for f, m in found]
        labels = [label for label, found in groups for _ in found]
        res = compare_groups(models, labels, list(comp.metrics), cache_dir=folder)
        rows = [{k: v for k, v in r.row().items() if k != "metric"} for r in res.values()]
        if not quiet:
            print(f"compare {comp.name} ({sizes}):")
            for r in res.values():
                print(f"  {r.label}: silhouette {r.stats.fmt()}")
        out.append({"name": comp.name, "networks": sizes,
                    "groups_file": None if gfile is None else str(gfile),
                    "metrics": rows})
    return out


def write_summary(grid, folder: Path, records, failed, comparisons, wall) -> list[str]:
    from rnn.grid.format import cell_dict
    from rnn.grid.jobs import finished
    cells = []
    for c in grid.cells:
        have = finished(folder, c)
        st = [m["status"] for m in have.values()]
        cells.append({"cell": c.key, "settings": cell_dict(c), "networks": c.networks,
                      "trained": len(have), "converged": st.count("converged"),
                      "budget": st.count("budget"), "stalled": st.count("stalled"),
                      "diverged": st.count("diverged"),
                      "train_seconds_this_run": round(sum(r["seconds"] for r in records
                                                          if r["cell"] == c.key), 1)})
    data = {"grid": grid.name, "file": grid.path, "models_dir": str(folder),
            "wall_seconds": round(wall, 1), "cells": cells, "jobs": records, "failed": failed,
            "comparisons": comparisons}
    j = folder / f"{grid.name}_grid.json"
    atomic_write_text(j, dumps_strict(data))
    md = [f"# Grid {grid.name}", "", f"From `{grid.path}`; networks in `{folder}`. This run: "
          f"{len(records)} jobs ({sum(r['trained'] for r in records)} trained), "
          f"{len(failed)} failed, {wall:.0f} s.", "",
          "| cell | trained | converged | budget | stalled | diverged | training s (this run) |",
          "|---|---|---|---|---|---|---|"]
    for c in cells:
        md.append(f"| {c['cell']} | {c['trained']}/{c['networks']} | {c['converged']} | "
                  f"{c['budget']} | {c['stalled']} | {c['diverged']} | "
                  f"{c['train_seconds_this_run']:.0f} |")
    if records:
        md += ["", "| job | worker | seconds | statuses |", "|---|---|---|---|"]
        for r in records:
            md.append(f"| {r['job']} | {r['worker']} | {r['seconds']:.0f} | "
                      f"{' '.join(r['status'])} |")
    for comp in comparisons:
        md += ["", f"**{comp['name']}** ({', '.join(f'{k}: {v}' for k, v in comp['networks'].items())})"]
        if comp.get("skipped"):
            md.append("skipped: fewer than 2 converged networks in a group")
            continue
        md += ["", "| metric | silhouette [95% interval] | p | within | between |",
               "|---|---|---|---|---|"]
        for m in comp["metrics"]:
            ci = m["silhouette_interval_95"]
            sil = "n/a" if m["silhouette"] is None else f"{m['silhouette']:.3f}" + (
                f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
            p = m["silhouette_permutation_p"]
            btw = m["mean_between_group_distance"]
            md.append(f"| {m['label']} | {sil} | {'' if p is None else f'{p:.3g}'} | "
                      f"{m['mean_within_group_distance']:.4f} | "
                      f"{'' if btw is None else f'{btw:.4f}'} |")
    mpath = folder / f"{grid.name}_grid.md"
    atomic_write_text(mpath, "\n".join(md) + "\n")
    return [str(j), str(mpath)]


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    run_cli(main, sys.argv[1:])
