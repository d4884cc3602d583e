#!/usr/bin/env python
"""Does the learning rule change attractor structure, representational
geometry, or both?  Train populations with every rule, compare them.

    bash experiments/reproduce.sh                      # CDI and RDM, 10 networks per rule
    bash experiments/reproduce.sh --tasks cdi --per-rule 4 --max-steps 300   # a quick look
    bash experiments/reproduce.sh --protocol original  # the original study's protocol and its
                                                       # ablations (experiments/protocol.py)

For each task: trains ``--per-rule`` networks per rule at ``-v`` (one batched
run per rule, ``train_models.py --count``; existing models are reused), then
compares the networks that reached the stop rule — all the rules together and
every pair — in this process through the one compare pipeline
(``rnn.analysis.compare.compare_groups``, with the analysis scripts' default
analysis and caches): SVCCA, every similarity metric, the attractor topology.
Writes experiments/results/RESULTS.md (the tables, generated here), a JSON of
every number, and the figures of the all-rule comparisons (drawn by
``svcca_analysis.py`` and ``fixed_point_input_topology.py`` from the same
caches).
"""
from __future__ import annotations

import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from rnn.errors import UserError
from rnn.cli import Parser, add_device_arg, finite_float, run_cli
from rnn.grid.format import Cell
from rnn.grid.jobs import finished, jobs_for
from rnn.grid.runner import run_jobs
from rnn.io.groups import write_groups_file
from rnn.io import ensure_writable, models_dir
from rnn.analysis.metrics import METRICS
from rnn.rules import REGISTRY, RULES

ROOT = Path(__file__).resolve().parents[1]
LABEL = {name: rule.label for name, rule in REGISTRY.items()}
SIMILARITY_METRICS = list(METRICS)
TASKS = ("cdi", "rdm", "ncdi3", "ncdi4")    # spellings of the task table (tasks/table.py)


def sh(args: list[str], log) -> None:
    """Run one of the tool's commands (a script's path and its arguments) in
    this process, through its ``main(argv)``, its output into the log: the
    same as ``python SCRIPT ARGS`` without starting Python and torch again."""
    import contextlib
    import importlib
    import io
    module = importlib.import_module(args[0][:-3].replace("/", "."))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = module.main(args[1:])
        except UserError as e:
            print(f"{args[0]}: error: {e}")
            code = 2
        except SystemExit as e:                     # argparse, or a script's own exit
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            import matplotlib.pyplot as plt
            plt.close("all")
    log.write(f"$ python {' '.join(args)}\n{out.getvalue()}\n")
    log.flush()
    if code:
        raise SystemExit(f"failed: python {' '.join(args)}\n{out.getvalue()}")


def _copy_small(src: Path, dst: Path) -> None:
    """Copy a figure as a 256-colour PNG (a few times smaller, for git)."""
    from PIL import Image
    with Image.open(src) as im:
        im.convert("RGB").quantize(colors=256).save(dst, optimize=True)


def build_parser() -> Parser:
    ap = Parser(prog="reproduce.py", description=__doc__.split("\n\n")[0].strip())
    ap.add_argument("--tasks", nargs="+", default=["cdi", "rdm"], choices=list(TASKS),
                    help="tasks to train and compare (default: cdi rdm)")
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES,
                    help=f"learning rules to train and compare (default: all: {' '.join(RULES)})")
    ap.add_argument("--per-rule", type=int, default=10,
                    help="networks per rule and task (default 10)")
    ap.add_argument("-v", "--variance", type=finite_float, default=0.5,
                    help="input noise level of every cell (default 0.5)")
    ap.add_argument("--seed", type=int, default=5000,
                    help="first seed of every rule's networks; seeds weights, training data "
                         "and validation sets (default 5000)")
    ap.add_argument("--first-seed", nargs="+", default=[], metavar="RULE=SEED",
                    help="a rule's first seed instead of --seed + 1000 × its place in the "
                         "rule list (e.g. ff=6000: networks trained when the list was "
                         "shorter keep their seeds and are reused)")
    ap.add_argument("--max-steps", type=int, default=None, help="cap per rule (default: budgets)")
    add_device_arg(ap, "where to train")
    ap.add_argument("--workers", type=int, default=None,
                    help="training jobs at once (Dask workers; default one per core, or one "
                         "per GPU)")
    ap.add_argument("--chunk", type=int, default=None, metavar="K",
                    help="networks per training job (default: the grid runner's per rule on "
                         "a CPU, " + ", ".join(f"{r} {REGISTRY[r].chunk}" for r in RULES) +
                         "; all --per-rule on a GPU); a network is the same in any chunk")
    ap.add_argument("--only-train", action="store_true",
                    help="train what is missing for every task at once (one pool of jobs, "
                         "e.g. several jobs sharing a lent GPU with --workers), analyse nothing")
    ap.add_argument("--quiet", action="store_true",
                    help="no progress lines (the paths of the files written are printed)")
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results"),
                    help="folder of RESULTS.md, results.json and the figures (default "
                         "experiments/results)")
    ap.add_argument("--metrics", nargs="+", default=SIMILARITY_METRICS,
                    help="similarity metrics of the metrics table (similarity_analysis.py; "
                         f"default: {' '.join(SIMILARITY_METRICS)})")
    return ap


def parse_args(argv: list[str]):
    """The checked arguments (``--protocol original`` hands over to
    experiments/protocol.py)."""
    argv = list(argv)
    if "--protocol" in argv:
        i = argv.index("--protocol")
        choice = argv[i + 1] if i + 1 < len(argv) else ""
        if choice == "original":
            from experiments.protocol import main as protocol_main
            raise SystemExit(protocol_main(argv[:i] + argv[i + 2:]))
        if choice != "clean":
            raise UserError(f"--protocol must be clean or original, got {choice!r}")
        del argv[i:i + 2]
    ap = build_parser()
    args = ap.parse_args(argv)
    bad = [m for m in args.metrics if m not in SIMILARITY_METRICS]
    if bad:
        ap.error(f"--metrics: unknown metric {bad[0]!r} (known: {', '.join(SIMILARITY_METRICS)})")
    if args.variance < 0:
        ap.error(f"-v must be 0 or more, got {args.variance:g}")
    for flag, v in (("--per-rule", args.per_rule), ("--chunk", args.chunk),
                    ("--workers", args.workers), ("--max-steps", args.max_steps)):
        if v is not None and v < 1:
            ap.error(f"{flag} must be at least 1, got {v}")
    args.first_seeds = {}
    for item in args.first_seed:
        rule, _, seed = item.partition("=")
        if rule not in args.rules or not seed.isdigit():
            ap.error(f"--first-seed takes RULE=SEED with RULE one of --rules "
                     f"({' '.join(args.rules)}) and SEED a whole number, got {item!r}")
        args.first_seeds[rule] = int(seed)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    say = (lambda *a, **k: None) if args.quiet else print
    device = args.device if args.device != "auto" else \
        ("cuda" if torch.cuda.is_available() else "cpu")
    chunk = args.chunk or (args.per_rule if device == "cuda" else None)
    out = Path(args.out)
    try:
        ensure_writable(out, what="the --out folder", hint="(choose another with --out)")
        log = open(out / "log.txt", "a")
    except OSError as e:
        raise UserError(f"cannot write into --out {out}: {e.strerror or e}") from None
    mdir = models_dir()
    t_start = time.time()
    settings = {**vars(args), "out": os.path.relpath(out, ROOT)}
    results = {"settings": settings, "tasks": {},
               "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                          f"torch {torch.__version__}, device {device}"}
    previous = _previous_tasks(out / "results.json", keep_out=args.tasks)
    vtag = f"v{int(round(args.variance * 100)):03d}"
    if args.only_train:
        jobs = [j for task in args.tasks for c in task_cells(task, args, vtag, chunk).values()
                for j in jobs_for(c, mdir)]
        say(f"training {sum(j.count for j in jobs)} networks in {len(jobs)} job(s) on "
            f"{device}", flush=True)
        records, failed = run_jobs(jobs, mdir, workers=args.workers, device=device) \
            if jobs else ([], [])
        for r in records:
            log.write(f"{r}\n")
        say(f"trained in {time.time() - t_start:.0f} s; {len(failed)} job(s) failed", flush=True)
        return 1 if failed else 0
    for task in args.tasks:
        results["tasks"][task] = run_task(task, args, settings, vtag, chunk, device, mdir, out,
                                          log, say)
        results["this_run_wall_time_s"] = round(time.time() - t_start, 1)
        write_outputs(out, results, previous)
    print(f"wrote {out / 'RESULTS.md'}")
    print(f"wrote {out / 'results.json'}")
    return 0


def run_task(task: str, args, settings: dict, vtag: str, chunk, device: str, mdir: Path,
             out: Path, log, say) -> dict:
    """Train what is missing of one task's cells (through the grid runner: the
    same jobs, found by seed, as run_grid.py), then compare the rules that have
    two converged networks: all together, and every pair."""
    tres = {"settings": {k: settings[k] for k in ("per_rule", "rules", "variance", "seed",
                                                   "max_steps", "first_seeds")},
            "rules": {}, "comparisons": {}}
    cells = task_cells(task, args, vtag, chunk)
    jobs = [j for c in cells.values() for j in jobs_for(c, mdir)]
    trained_now = {j.cell.rule for j in jobs}
    for rule in args.rules:
        say(f"[{task}] {rule}: training the unfinished of {args.per_rule} networks ..."
            if rule in trained_now else
            f"[{task}] {rule}: reusing {args.per_rule} trained networks", flush=True)
    if jobs:
        _, failed = run_jobs(jobs, mdir, workers=args.workers, device=device, quiet=True)
        if failed:
            raise SystemExit(f"training failed: {failed[0]['error']}")
    members = {}
    for rule in args.rules:
        found = finished(mdir, cells[rule])
        metas = [found[s] for s in cells[rule].seeds() if s in found]
        members[rule] = [m["name"] for m in metas if m["status"] == "converged"]
        tres["rules"][rule] = rule_summary(metas, args.per_rule, rule in trained_now)
        say(f"[{task}] {rule}: {len(members[rule])}/{args.per_rule} reached the stop rule",
            flush=True)
    usable = [r for r in args.rules if len(members[r]) >= 2]
    comps = [tuple(usable)] + list(itertools.combinations(usable, 2)) if len(usable) > 2 \
        else ([tuple(usable)] if len(usable) == 2 else [])
    for comp in comps:
        gname = f"x{task}_{vtag}_{'-'.join(comp)}.txt"
        write_groups_file(mdir / gname, [(LABEL[r], members[r]) for r in comp])
        tres["comparisons"]["-".join(comp)] = compare_rules(gname, mdir, args.metrics)
        if len(comp) == len(usable):
            tres["svcca_variants"] = figures(task, gname, mdir, out, log)
    return tres


def rule_summary(metas: list[dict], per_rule: int, trained_now: bool) -> dict:
    """A rule's row: its networks, how many converged, their updates, accuracy,
    wall time and devices."""
    conv = [m for m in metas if m["status"] == "converged"]
    return {"networks": per_rule, "converged": len(conv),
            "wall_time_s": round(max((m["wall_time_s"] for m in metas), default=0.0), 1),
            "devices": sorted({m.get("device", "cpu") for m in metas}),
            "updates_median": sorted(m["steps"] for m in metas)[len(metas) // 2],
            "final_accuracy_mean": round(sum(m["final_accuracy"] for m in metas)
                                         / max(1, len(metas)), 4),
            "not_converged": not_converged_summary(metas),
            "trained_in_this_run": trained_now}


def compare_rules(gname: str, mdir: Path, metrics: list[str]) -> dict:
    """One comparison of the rules in the groups file ``gname``, through the one
    compare pipeline (rnn.analysis.compare.compare_groups, the caches of the
    analysis scripts, their default analysis): SVCCA (and the original's
    rows-as-features silhouette), every similarity metric, the topology."""
    from rnn.analysis.compare import compare_groups, load_group_models, silhouette
    from rnn.analysis.fixed_points import weights_hash
    from rnn.io.groups import read_groups
    groups = read_groups([gname], mdir)
    models = load_group_models(groups, mdir)
    labels = groups.label_of_each
    keys = [weights_hash(lm.model) for lm in models]
    act = compare_groups(models, labels, list(dict.fromkeys(["svcca", *metrics])), None, mdir,
                         order=groups.labels, balanced=True, keys=keys)
    topo = compare_groups(models, labels, ["topology"], order=sorted(set(labels)))["topology"]
    sv = act["svcca"]
    return {"svcca_silhouette": sv.stats.silhouette,
            "svcca_silhouette_ci": sv.stats.interval(),
            "svcca_silhouette_p": sv.stats.p_value,
            # the original's convention: rows of the distance matrix as feature vectors
            "svcca_silhouette_rows_as_features": silhouette(sv.distances, sv.labels,
                                                            "euclidean"),
            "topology_silhouette": topo.stats.silhouette,
            "svcca_within": sv.within, "svcca_between": sv.between,
            "networks": {lab: len(m) for lab, m in zip(groups.labels, groups.members)},
            "metrics": {act[m].label: {k: v for k, v in act[m].row().items() if k in (
                "silhouette", "silhouette_interval_95", "silhouette_permutation_p",
                "mean_within_group_distance", "mean_between_group_distance")}
                for m in metrics}}


def figures(task: str, gname: str, mdir: Path, out: Path, log) -> str:
    """The all-rule comparison's figures, drawn by the analysis scripts from the
    same caches, into ``out``; and whether the SVCCA answer is an artefact of
    the analysis's choices (experiments/svcca_variants.py): its table."""
    sh(["svcca_analysis.py", gname, "--quiet"], log)
    sh(["fixed_point_input_topology.py", gname, "--quiet"], log)
    stem = gname[:-4]
    for fig in ("svcca_mds", "topology_mds", "svcca_heatmap"):
        _copy_small(mdir / f"{stem}_{fig}.png", out / f"{task}_{fig}.png")
    vpath = out / f"{task}_svcca_variants.md"
    sh(["experiments/svcca_variants.py", gname, "--out", str(vpath)], log)
    return vpath.read_text()


def first_seed(rule: str, seed: int, first_seeds: dict) -> int:
    """A rule's first seed: ``first_seeds[rule]`` (--first-seed), else ``seed`` +
    1000 × the rule's place in rnn.rules.RULES, whichever rules are asked for."""
    return first_seeds.get(rule, seed + 1000 * RULES.index(rule))


def task_cells(task: str, args, vtag: str, chunk: int | None) -> dict:
    """The grid cells of one task, one per rule (seeds from :func:`first_seed`)."""
    return {rule: Cell(task=task, rule=rule,
                       noise=args.variance, networks=args.per_rule,
                       first_seed=first_seed(rule, args.seed, args.first_seeds),
                       max_steps=args.max_steps, chunk=chunk, name=f"x{task}-{rule}-{vtag}")
            for rule in args.rules}


def fmt_ci(c: dict) -> str:
    """' [lo, hi], p P' when the comparison has an interval (runs since it was added)."""
    ci, p = c.get("svcca_silhouette_ci"), c.get("svcca_silhouette_p")
    return "" if not ci else f" [{ci[0]:.3f}, {ci[1]:.3f}], p {p:.3g}"


def metrics_table(comparisons: dict) -> list[str]:
    """Silhouette [95% interval], p of every comparison under each similarity
    metric, beside the topology silhouette (runs since the metrics were added)."""
    labels = list(dict.fromkeys(m for c in comparisons.values() for m in c.get("metrics", {})))
    if not labels:
        return []
    out = ["Silhouette of the rules under each similarity metric "
           "(`similarity_analysis.py`; [95% bootstrap interval], permutation p), and under the "
           "attractor topology:", "",
           "| comparison | " + " | ".join(labels) + " | topology |",
           "|---" * (len(labels) + 2) + "|"]
    for tag, c in comparisons.items():
        cells = []
        for lab in labels:
            m = c.get("metrics", {}).get(lab)
            if m is None or m["silhouette"] is None:
                cells.append("n/a")
                continue
            ci, p = m["silhouette_interval_95"], m["silhouette_permutation_p"]
            cells.append(f"{m['silhouette']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}], p {p:.2g}"
                                                      if ci else ""))
        out.append(f"| {' vs '.join(LABEL[r] for r in tag.split('-'))} | " + " | ".join(cells)
                   + f" | {fmt(c['topology_silhouette'])} |")
    return out + [""]


def fmt(x, nd=3):
    return "n/a" if x is None else f"{x:.{nd}f}"


def _previous_tasks(path: Path, keep_out: list[str]) -> dict:
    """Tasks of an earlier run's results.json that this run does not redo (a
    run of some tasks keeps the tables of the others)."""
    try:
        old = json.loads(path.read_text())
        return {t: v for t, v in old.get("tasks", {}).items()
                if t not in keep_out and "settings" in v}
    except (OSError, ValueError, AttributeError):
        return {}


def not_converged_summary(metas: list[dict]) -> dict:
    """How the networks that did not reach the stop rule ended: their count per
    status and the range of their final validation accuracies."""
    rest = [m for m in metas if m["status"] != "converged"]
    statuses: dict[str, int] = {}
    for m in rest:
        statuses[m["status"]] = statuses.get(m["status"], 0) + 1
    acc = [m["final_accuracy"] for m in rest]
    return {"statuses": statuses,
            "accuracy_range": [round(min(acc), 4), round(max(acc), 4)] if acc else None}


def left_out_lines(rules: dict) -> list[str]:
    """One sentence per rule that is in no comparison: a silhouette needs two
    networks of a group, and only networks that reached the stop rule count."""
    ended = {"budget": "at the update budget", "stalled": "stalled",
             "diverged": "diverged"}
    lines = []
    for r, v in rules.items():
        if v["converged"] >= 2:
            continue
        rest = v.get("not_converged") or {}
        how = ", ".join(f"{k} {ended.get(s, s)}" for s, k in rest.get("statuses", {}).items())
        acc = rest.get("accuracy_range")
        rest_txt = (f"the others: {how}, final validation accuracy "
                    f"{acc[0]:.3f}–{acc[1]:.3f}") if acc else "no other network was trained"
        lines += ["", f"{LABEL[r]} is in no comparison below: {v['converged']} of "
                      f"{v['networks']} networks reached the stop rule, and a rule needs "
                      f"two; {rest_txt}."]
    return lines


def write_outputs(out: Path, results: dict, previous: dict | None = None) -> None:
    tasks = {**(previous or {}), **results["tasks"]}
    tasks = {t: tasks[t] for t in TASKS if t in tasks}
    lines = ["# Learning rule vs. attractor structure and representational geometry",
             "",
             "Generated by `experiments/reproduce.py`. Only networks that reached "
             "the stop rule are compared. Silhouettes: SVCCA on the precomputed distances "
             "(and, for comparison with the paper, with distance rows as features); "
             "topology on the 30-number input-topology descriptors.", "",
             f"Machine: {results['machine']}. The last run of the script "
             f"({', '.join(results['tasks'])}) took {results['this_run_wall_time_s']:.0f} s "
             f"(networks already in `models/` are reused; the training wall times, on the "
             f"devices that trained them, are in the tables).", ""]
    for task, t in tasks.items():
        st = t["settings"]
        lines += [f"## {task.upper()}", "",
                  f"{st['per_rule']} networks per rule, -v {st['variance']}, first seeds "
                  + ", ".join(f"{r} {first_seed(r, st['seed'], st.get('first_seeds') or {})}"
                              for r in st["rules"])
                  + (f", at most {st['max_steps']} updates"
                                     if st["max_steps"] else "") + ".", "",
                  "| rule | networks | reached stop rule | median updates | mean accuracy "
                  "| wall time (s, longest batched run) | trained on |",
                  "|---|---|---|---|---|---|---|"]
        for r, v in t["rules"].items():
            lines.append(f"| {LABEL[r]} | {v['networks']} | {v['converged']} | "
                         f"{v['updates_median']} | {v['final_accuracy_mean']:.3f} | "
                         f"{v['wall_time_s']:.0f} | {', '.join(v.get('devices', [])) or '—'} |")
        lines += left_out_lines(t["rules"])
        lines += ["", "| comparison | SVCCA silhouette [95% bootstrap interval], permutation p "
                  "| SVCCA silhouette (rows as features) "
                  "| topology silhouette | mean SVCCA distance within rule | between rules |",
                  "|---|---|---|---|---|---|"]
        for tag, c in t["comparisons"].items():
            lines.append(f"| {' vs '.join(LABEL[r] for r in tag.split('-'))} | "
                         f"{fmt(c['svcca_silhouette'])}{fmt_ci(c)} | "
                         f"{fmt(c['svcca_silhouette_rows_as_features'])} | "
                         f"{fmt(c['topology_silhouette'])} | {fmt(c['svcca_within'], 4)} | "
                         f"{fmt(c['svcca_between'], 4)} |")
        lines.append("")
        lines += metrics_table(t["comparisons"])
        if t.get("svcca_variants"):
            lines += ["SVCCA silhouettes (precomputed distances) of the same networks when one "
                      "choice of the analysis is changed (`experiments/svcca_variants.py`):",
                      "", t["svcca_variants"]]
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({**results, "tasks": tasks}, indent=1)
                                      + "\n")


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    run_cli(main, sys.argv[1:])
