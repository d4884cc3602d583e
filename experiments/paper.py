"""The paper's three claims, tested on this tool's networks: experiments/results/PAPER.md.

    python -m experiments.paper                      # from the committed networks
    python -m experiments.paper --bootstrap 500      # quicker, wider-grained intervals

The abstract of McMahan, Kleinman & Kao (NeurIPS 2021) claims:

1. for relatively complex tasks, attractor topology is invariant to the choice
   of learning rule, but representational geometry is not;
2. for simple tasks, attractor topology depends on the task's input noise;
3. as a task becomes more complex, attractor topology becomes invariant to
   input noise.

The networks are those of the grid files (default experiments/grids/claims.toml
and, where its networks exist, claims_high.toml), trained with run_grid.py.
From their cells this script forms every comparison there is:

* by noise: cells that differ only in the noise level (one group per level);
* by rule: BPTT and GA cells that differ only in the rule; at N = 1 and 2 also
  the protocol experiment's 24 + 24 original-protocol networks
  (experiments/networks/n1-original and original).

Each comparison is made on the networks that reached the stop rule, with the
attractor input topology (fixed points under the 'small' inputs, the
30-number descriptor of fixed_point_input_topology.py, Euclidean) and the
representational metrics: SVCCA under the original's analysis and this tool's,
PWCCA, 1 − CKA, Procrustes and DSA.  Every silhouette has a 95% bootstrap
interval over networks and a permutation p-value.  The BPTT–GA SVCCA rows
stand beside the reference matrix's (../shared/reference/) through the same
code.

A comparison *separates* its groups when p < 0.05 and the interval's lower end
is above 0; it shows *no separation* when p ≥ 0.05 and the interval's upper end
is below --negligible (default 0.1: a silhouette that small is a weak structure
at best); anything else is *undecided at this sample size*.  The verdicts of
the claims follow from those (PAPER.md states the rule for each).  Beside them,
not part of any verdict, the slope of the topology silhouette against N with a
bootstrap interval (claim 3's trend; the original fitted a line to its series
too).

Caches (fixed points beside each network, distances per metric in the grid's
networks folder) make a rerun only tabulate.  Writes PAPER.md, paper.json
and the figures paper_noise.png and paper_rules.png into --out.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn.analysis.census import summarise
from rnn.errors import UserError
from rnn.cli import Parser, run_cli
from rnn.grid.jobs import median_hours
from rnn.analysis.metrics import LABEL as SIMILARITY_LABEL
from rnn.analysis.metrics import METRICS as SIMILARITY
from rnn.analysis.metrics import TOPOLOGY
from tasks.table import TaskName, parse

ROOT = Path(__file__).resolve().parents[1]
GRIDS = [ROOT / "experiments" / "grids" / "claims.toml",
         ROOT / "experiments" / "grids" / "claims_high.toml"]
RESULTS = ROOT / "experiments" / "results"
FIXED_LENGTH = ROOT / "experiments" / "grids" / "fixed_length.toml"
PROTOCOL_CELLS = {1: "n1-original", 2: "original"}   # of experiments/grids/protocol.toml
METRICS = [TOPOLOGY, "svcca_original", *SIMILARITY]
LABEL = {**SIMILARITY_LABEL, TOPOLOGY: "attractor topology",
         "svcca_original": "SVCCA (original analysis)", "svcca": "SVCCA (tool analysis)"}
SIMPLE = ("rdm", 1)                      # the simple tasks of claim 2
# converged networks every group of a comparison needs for it to enter a verdict; a
# smaller comparison is reported in the tables and named as short, never decides
MIN_FOR_VERDICT = 16
CLAIMS = {
    1: "For relatively complex tasks, attractor topology is invariant to the choice of "
       "learning rule, but representational geometry is not.",
    2: "For simple tasks, attractor topology depends on task input noise.",
    3: "When a task becomes increasingly complex, RNN attractor topology becomes invariant "
       "to input noise."}
# numbers typed at the end of the original's svcca_analysis.py (see PAPER.md)
ORIGINAL_SERIES = {
    "by_N": {"commit": "87b8586", "date": "2021-05-30", "x": [1, 2, 3, 4, 5, 6],
             "y": [0.25, 6.2e-4, 0.012, -0.013, -1.7e-5, -0.015]},
    "by_N_earlier": [{"commit": "c59e132", "date": "2021-05-14",
                      "y": [0.34, 0.13, 0.12, 0.21, 0.38, 0.45]},
                     {"commit": "8a21aef", "date": "2021-05-21",
                      "y": [0.203, 0.346, 0.0343, -0.125, -0.0421, 0.0126]}],
    "by_noise": {"commit": "71cb99e", "date": "2021-05-12", "x": [0.1, 0.5, 1.0],
                 "y": [0.114, 0.148, 0.154]}}


def build_parser() -> Parser:
    p = Parser(prog="python -m experiments.paper",
               description="Test the paper's three claims on the trained networks of the claims "
                           "grids and write experiments/results/PAPER.md.",
               epilog="Example: python -m experiments.paper --bootstrap 2000")
    p.add_argument("--grids", nargs="+", default=None, metavar="GRID.toml",
                   help="grid files whose networks to analyse (default: "
                        "experiments/grids/claims.toml and claims_high.toml)")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="B",
                   help="bootstrap resamples and label permutations per silhouette (default "
                        "2000)")
    p.add_argument("--negligible", type=float, default=0.1, metavar="S",
                   help="a comparison shows no separation when p >= 0.05 and its interval lies "
                        "below S (default 0.1)")
    p.add_argument("--metrics", nargs="+", default=METRICS, metavar="METRIC",
                   help=f"what to compare by, any of {', '.join(METRICS)} (default: all)")
    p.add_argument("--models-dir", default=None, metavar="DIR",
                   help="the grids' networks folder (default: each grid file's models_dir)")
    p.add_argument("--fixed-length", default=str(FIXED_LENGTH), metavar="GRID.toml",
                   help="the fixed-length experiment's grid (noise or training length; default "
                        "experiments/grids/fixed_length.toml); 'none' leaves the section out")
    p.add_argument("--no-protocol-networks", action="store_true",
                   help="leave out the protocol experiment's N = 1, 2 BPTT/GA networks")
    p.add_argument("--out", default=str(RESULTS), metavar="DIR",
                   help="where PAPER.md, paper.json and the figures go (default "
                        "experiments/results)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


# ---- which comparisons there are -------------------------------------------

@dataclass
class ClaimComparison:
    kind: str                        # "noise" or "rule"
    task: str                        # "rdm" or "ncdi"
    N: int | None
    protocol: str
    groups: dict                     # label -> [(folder, meta)] of finished networks
    planned: dict                    # label -> networks planned
    source: str = ""                 # "", "protocol" or WITH_BUDGET
    include: tuple = ("converged",)  # the statuses of the networks analysed
    result: dict = field(default_factory=dict)
    boots: dict = field(default_factory=dict)   # metric -> bootstrap silhouettes

    @property
    def task_label(self) -> str:
        return TaskName(self.task, self.N).label

    @property
    def order(self) -> float:
        return TaskName(self.task, self.N).order

    @property
    def label(self) -> str:
        """The task as a table row names it, with where its networks come from."""
        return self.task_label + SOURCE_LABEL.get(self.source, "")

    @property
    def key(self) -> str:
        # family and N run together (ncdi2, not the table's spelling cdi): paper.json's keys
        t = self.task if self.N is None else f"{self.task}{self.N}"
        return f"{self.kind}-{t}-{self.protocol}" + (f"-{self.source}" if self.source else "")


# the secondary comparison of claim 1: the networks that ended at the budget too (the
# original kept every network it trained: its train_models.py saves after train()
# whatever the accuracy, at the same 2000-generation budget and 0.9 threshold)
WITH_BUDGET = "with-budget"
SOURCE_LABEL = {"protocol": " (protocol networks)",
                WITH_BUDGET: " (with the networks ended at the budget)"}


def with_budget(comps: list[ClaimComparison]) -> list[ClaimComparison]:
    """For each rule comparison of the grids with a network that ended at its
    budget, the same comparison with those networks in: the original's way,
    beside the converged-only one (which alone decides the verdicts)."""
    out = []
    for c in comps:
        if c.kind == "rule" and not c.source and any(
                m.get("status") == "budget" for g in c.groups.values() for _, m in g):
            out.append(ClaimComparison(c.kind, c.task, c.N, c.protocol, c.groups, c.planned,
                                       source=WITH_BUDGET, include=("converged", "budget")))
    return out


def task_of(cell) -> tuple[str, int | None]:
    """(family, N) of a grid cell's task (the task table's)."""
    tn = cell.task_name
    return tn.family, tn.N


def comparisons_of(grids, use_protocol_networks: bool, models_dir=None) -> list[ClaimComparison]:
    """Every noise and rule comparison the grids' cells allow."""
    from rnn.grid.jobs import networks
    cells = {}
    for grid in grids:
        folder = grid.folder(models_dir)
        for c in grid.cells:
            cells.setdefault(c.name, (c, folder))
    out = []

    def same_but(c, d, key):
        return all(getattr(c, k) == getattr(d, k) for k in
                   ("rule", "noise", "protocol", "shared_x0", "lenient_stop",
                    "original_budgets", "hidden", "max_steps", "stall_window")
                   if k != key) and task_of(c) == task_of(d)

    for kind, key, label in (("noise", "noise", lambda c: f"v = {c.noise:g}"),
                             ("rule", "rule", lambda c: c.rule.upper())):
        seen = set()
        for name, (c, folder) in cells.items():
            if name in seen:
                continue
            family = [(d, f) for d, f in cells.values() if same_but(c, d, key)]
            seen |= {d.name for d, _ in family}
            if kind == "rule":
                family = [(d, f) for d, f in family if d.rule in ("bptt", "ga")]
            family.sort(key=lambda df: (df[0].noise, df[0].rule))
            if len({getattr(d, key) for d, _ in family}) < 2:
                continue
            task, N = task_of(c)
            out.append(ClaimComparison(kind, task, N, c.protocol,
                                  {label(d): networks(f, d) for d, f in family},
                                  {label(d): d.networks for d, _ in family}))
    if use_protocol_networks:
        from experiments.protocol_cells import CELLS as PROTOCOL
        for N, name in PROTOCOL_CELLS.items():
            cell = PROTOCOL[name]
            if not cell.folder().is_dir():
                continue
            groups = {r.upper(): networks(cell.root, c) for r, c in cell.cells.items()}
            out.append(ClaimComparison("rule", "ncdi", N, "original", groups,
                                  {k: len(v) for k, v in groups.items()}, source="protocol"))
    out += with_budget(out)
    out.sort(key=lambda c: (c.kind, c.protocol != "original", c.order, c.source))
    return out


# ---- the numbers of one comparison -------------------------------------------

def stats(D: np.ndarray, labels: list[str], n_boot: int, keep: dict | None = None,
          name: str = "") -> dict:
    """Silhouette, interval, p (plain and balanced) and the mean distances;
    the bootstrap silhouettes go into keep[name] when keep is given."""
    from rnn.analysis.compare import silhouette_stats, within_between
    index = [sorted(set(labels)).index(lab) for lab in labels]
    s = silhouette_stats(D, index, n_boot, n_boot)
    if keep is not None and s.boots is not None:
        keep[name] = s.boots
    bal = silhouette_stats(D, index, n_boot, n_boot, balanced=True)
    w, b = within_between(D, index)
    return {**s.summary(), "balanced": bal.summary(), "within": w, "between": b,
            "n": len(labels)}


def analyse(comp: ClaimComparison, metrics: list[str], n_boot: int, cache_dir: Path,
            log, quiet: bool = True) -> dict:
    from rnn.analysis.fixed_points import weights_hash
    from rnn.io import load_model
    from rnn.analysis.compare import compare_groups
    from rnn.analysis.svcca import SVCCAOptions
    training, models, labels, updates = {}, [], [], []
    for label, found in comp.groups.items():
        st = [m["status"] for _, m in found]
        training[label] = {"planned": comp.planned[label], "trained": len(found),
                           "converged": st.count("converged"),
                           "other": {s: st.count(s) for s in sorted(set(st)) if s != "converged"},
                           "updates_median": float(np.median([m["steps"] for _, m in found]))
                           if found else None}
        for folder, m in found:
            if m["status"] in comp.include:
                models.append(load_model(m["name"], folder))
                labels.append(label)
                updates.append(m["steps"])
    res = {"training": training, "metrics": {}}
    sizes = [labels.count(lab) for lab in comp.groups]
    if min(sizes) < 2:
        what = " or ".join(comp.include)
        res["skipped"] = f"fewer than 2 {what} networks in a group ({sizes})"
        return res
    t0 = time.time()
    keys = [weights_hash(lm.model) for lm in models]
    order = sorted(set(labels))

    def numbers(c, name: str) -> dict:
        """A comparison's silhouettes and distances; its bootstraps kept for the trends."""
        if c.stats.boots is not None:
            comp.boots[name] = c.stats.boots
        return {**c.stats.summary(), "balanced": c.balanced.summary(), "within": c.within,
                "between": c.between, "n": len(c.labels)}

    def compared(names, options):
        from tqdm import tqdm
        return compare_groups(models, labels, names, options, cache_dir, order=order,
                              n_boot=n_boot, balanced=True, keys=keys,
                              progress=lambda it, desc: tqdm(
                                  it, desc=f"  {desc}", leave=False, disable=quiet))
    if "topology" in metrics:
        c = compared(["topology"], SVCCAOptions())["topology"]
        topo = c.result.topology
        res["metrics"]["topology"] = numbers(c, "topology")
        res["metrics"]["topology"]["left_out_no_fixed_points"] = len(models) - len(topo.kept)
        res["fixed_points_median"] = float(np.median(topo.points))
        cs, spi = attractor_census(models)
        res["census"] = {lab: summarise([c for c, l in zip(cs, labels) if l == lab],
                                        [u for u, l in zip(updates, labels) if l == lab])
                         for lab in comp.groups}
        res["matched"] = matched_silhouettes(topo, cs, spi, labels, n_boot)
        log(f"  topology: {topo.solved} networks solved, {len(models) - topo.solved} cached")
    if "svcca_original" in metrics:
        c = compared(["svcca"], SVCCAOptions.original())["svcca"]
        res["metrics"]["svcca_original"] = numbers(c, "svcca_original")
        res["metrics"]["svcca_original"]["noise_floor_mean"] = float(
            c.result.noise_floor.mean())
    rest = [m for m in metrics if m not in ("topology", "svcca_original")]
    for m, c in (compared(rest, SVCCAOptions()) if rest else {}).items():
        res["metrics"][m] = numbers(c, m)
    res["analysis_seconds"] = round(time.time() - t0, 1)
    return res


def attractor_census(models) -> tuple[list, list]:
    """Each network's census and stable points per input under the 'small'
    inputs (rnn/analysis/census.py), from the fixed points cached beside it."""
    from rnn.analysis.census import census, stable_per_input
    from rnn.analysis.dynamics import cached_fixed_points
    cs, spi = [], []
    for lm in models:
        fp, _, _ = cached_fixed_points(lm.model, lm.task, lm.name, "small", lm.path.parent)
        n_in = len(lm.task.static_inputs("small").values)
        cs.append(census(fp, n_in))
        spi.append(stable_per_input(fp, n_in))
    return cs, spi


def matched_silhouettes(topo, cs: list, spi: list, labels: list[str], n_boot: int) -> dict:
    """Does the topology descriptor separate the groups beyond the census?  The
    silhouette of the same labels on two census descriptors (the count of fixed
    points alone; the stable points per input), and the topology silhouette
    within the networks of one kind (monostable, bistable: every input alike),
    where at least two groups have two such networks."""
    from rnn.analysis.census import KINDS
    from rnn.analysis.compare import euclidean_distances
    out = {"count": stats(euclidean_distances(np.array([[c.points] for c in cs], float)),
                          labels, n_boot),
           "stable_per_input": stats(euclidean_distances(np.stack(spi)), labels, n_boot)}
    D = topo.distances()
    pos = {i: k for k, i in enumerate(topo.kept)}
    for kind in KINDS[:2]:
        idx = [i for i in topo.kept if cs[i].kind == kind]
        labs = [labels[i] for i in idx]
        keep = sorted({lab for lab in labs if labs.count(lab) >= 2})
        idx = [i for i in idx if labels[i] in keep]
        groups = {lab: labs.count(lab) for lab in keep}
        if len(keep) < 2:
            out[f"topology_{kind}"] = {"silhouette": None, "groups": groups}
            continue
        sub = [pos[i] for i in idx]
        out[f"topology_{kind}"] = {**stats(D[np.ix_(sub, sub)], [labels[i] for i in idx],
                                           n_boot), "groups": groups}
    return out


# ---- noise or training length (the fixed-length grid) -------------------------

def fixed_length(grid, models_dir, claims_folder: Path, n_boot: int, log) -> dict | None:
    """The fixed-length experiment (experiments/grids/fixed_length.toml): each
    network's census, topology descriptor and validation accuracy after every
    snapshot update and after K, beside its claims-grid twin (same cell and seed,
    trained to the stop rule); per task and update the noise-label silhouettes
    of the topology and of the fixed-point count; whether each network retraced
    its twin (loss histories over the twin's updates)."""
    import dataclasses
    from rnn.analysis.census import census
    from rnn.analysis.compare import euclidean_distances, topology_descriptor
    from rnn.analysis.dynamics import cached_fixed_points
    from rnn.grid.jobs import finished
    from rnn.io import load_model
    from rnn.run import snapshot_names
    folder = grid.folder(models_dir)
    cells = [c for c in grid.cells if c.updates]
    if not cells:
        return None
    K = cells[0].updates
    points = [*cells[0].snapshots, K]
    nets, twins = [], {"compared": 0, "identical": 0, "max_abs_diff": 0.0}
    for c in cells:
        twin_cell = dataclasses.replace(c, updates=None, snapshots=None, name="")
        twin_of = finished(claims_folder, twin_cell) if claims_folder.is_dir() else {}
        for seed, m in sorted(finished(folder, c).items()):
            names = dict(zip(c.snapshots, snapshot_names(m["name"], list(c.snapshots))))
            names[K] = m["name"]
            at = {}
            for u, nm in names.items():
                if not (folder / f"{nm}.pt").exists():
                    continue
                lm = load_model(nm, folder)
                at[u] = _fixed_length_point(lm, census, topology_descriptor,
                                            cached_fixed_points)
            tm = twin_of.get(seed)
            if tm is not None and tm["status"] == "converged":
                tl = load_model(tm["name"], claims_folder)
                at["stop"] = {**_fixed_length_point(tl, census, topology_descriptor,
                                                    cached_fixed_points), "update": tm["steps"]}
                own = load_model(m["name"], folder).history["loss"]
                theirs = tl.history["loss"]
                if len(own) >= len(theirs):
                    d = float((own[:len(theirs)] - theirs).abs().max()) if len(theirs) else 0.0
                    twins["compared"] += 1
                    twins["identical"] += d == 0.0
                    twins["max_abs_diff"] = max(twins["max_abs_diff"], d)
            nets.append({"task": c.task, "N": c.N, "noise": c.noise, "seed": seed,
                         "status": m["status"], "at": at})
    log(f"fixed-length experiment: {len(nets)} networks")
    planned: dict = {}                 # task label -> the noise levels the grid trains
    for c in cells:
        planned.setdefault(c.task_name.label, set()).add(c.noise)
    keys = ["stop", *points]
    table, by_update = [], []
    for task, N in dict.fromkeys((n["task"], n["N"]) for n in nets):
        label = parse(task, N).label
        mine = [n for n in nets if (n["task"], n["N"]) == (task, N)]
        for v in sorted({n["noise"] for n in mine}):
            row = {"task": label, "noise": v, "networks": 0, "at": {}}
            grp = [n for n in mine if n["noise"] == v]
            row["networks"] = len(grp)
            for k in keys:
                have = [n["at"][k] for n in grp if k in n["at"]]
                if have:
                    row["at"][str(k)] = {
                        "networks": len(have),
                        "bistable": sum(h["kind"] == "bistable" for h in have),
                        "monostable": sum(h["kind"] == "monostable" for h in have),
                        "accuracy_mean": float(np.mean([h["accuracy"] for h in have])),
                        "bistable_inputs": float(np.mean([h["bistable_inputs"] for h in have])),
                        "points_median": float(np.median([h["points"] for h in have])),
                        **({"update_median": float(np.median([h["update"] for h in have]))}
                           if k == "stop" else {})}
            table.append(row)
        for k in keys:
            have = [(f"v = {n['noise']:g}", n["at"][k]) for n in mine
                    if k in n["at"] and n["at"][k]["vector"] is not None]
            labels = [lab for lab, _ in have]
            if len(set(labels)) < 2 or min(labels.count(x) for x in set(labels)) < 2:
                continue
            X = np.stack([h["vector"] for _, h in have])
            cnt = np.array([[h["points"]] for _, h in have], float)
            by_update.append({"task": label, "at": str(k),
                              "topology": stats(euclidean_distances(X), labels, n_boot),
                              "count": stats(euclidean_distances(cnt), labels, n_boot)})
    return {"updates": K, "snapshots": list(cells[0].snapshots), "grid": grid.path,
            "planned": sum(c.networks for c in cells), "trained": len(nets),
            "cells": table, "by_update": by_update, "twins": twins,
            "answer": fixed_length_answer(table, K, planned)}


def _fixed_length_point(lm, census, topology_descriptor, cached_fixed_points) -> dict:
    fp, _, _ = cached_fixed_points(lm.model, lm.task, lm.name, "small", lm.path.parent)
    cs = census(fp, len(lm.task.static_inputs("small").values))
    v, _ = topology_descriptor(fp, lm.model)
    return {"kind": cs.kind, "points": cs.points, "vector": v,
            "bistable_inputs": cs.bistable / cs.inputs,
            "accuracy": float(lm.meta["final_accuracy"])}


# a change of at least this much in the mean share of bistable inputs counts as a change
KIND_SHIFT = 0.5


def fixed_length_answer(table: list[dict], K: int, planned: dict | None = None) -> dict:
    """Per task: does bistability come with training length at fixed noise (the
    mean share of bistable static inputs of some noise level changes by at least
    KIND_SHIFT between the stop rule and update K), with noise at fixed length
    (at update K those shares differ by at least KIND_SHIFT between noise
    levels), both, or neither.  A task is 'not yet' until every noise level the
    grid plans for it (``planned``: task label -> noise levels) has networks at
    both points."""
    out = {}
    for task in dict.fromkeys([*(planned or {}), *(r["task"] for r in table)]):
        rows = [r for r in table if r["task"] == task]
        share = {}
        for r in rows:
            for k in ("stop", str(K)):
                x = r["at"].get(k)
                if x:
                    share[(r["noise"], k)] = x["bistable_inputs"]
        noises = sorted(set((planned or {}).get(task, set())) | {r["noise"] for r in rows})
        if len(noises) < 2 or any((v, k) not in share for v in noises for k in ("stop", str(K))):
            out[task] = {"answer": "not yet"}
            continue
        length = {v: share[(v, str(K))] - share[(v, "stop")] for v in noises}
        at_k = [share[(v, str(K))] for v in noises]
        by_length = any(abs(d) >= KIND_SHIFT for d in length.values())
        by_noise = max(at_k) - min(at_k) >= KIND_SHIFT
        out[task] = {"answer": {(True, True): "both", (True, False): "training length",
                                (False, True): "noise", (False, False): "neither"}[
                                    (by_length, by_noise)],
                     "length_change": {f"{v:g}": d for v, d in length.items()},
                     "noise_spread_at_K": max(at_k) - min(at_k)}
    return out


def fixed_length_section(fl: dict | None) -> list[str]:
    if fl is None:
        return []
    K = fl["updates"]
    grid = Path(fl["grid"])
    run = (f"`python run_grid.py {grid.relative_to(ROOT) if grid.is_relative_to(ROOT) else grid}"
           " --workers 1 --threads 1 --no-compare`")
    if not fl["trained"]:
        return ["", "## Noise or training length: the fixed-length experiment", "",
                f"BPTT networks at the three noise levels ({grid.name}), to be trained for "
                f"exactly {K} updates past the stop rule with snapshots after "
                + ", ".join(str(u) for u in fl["snapshots"]) + f" updates: none of the "
                f"{fl['planned']} is trained yet ({run})."]
    keys = ["stop", *fl["snapshots"], K]
    L = ["", "## Noise or training length: the fixed-length experiment", "",
         f"BPTT networks at the three noise levels ({Path(fl['grid']).name}), trained for "
         f"exactly {K} updates past the stop rule, with their weights kept after "
         + ", ".join(str(u) for u in fl["snapshots"]) + f" and {K} updates; each beside its "
         "claims-grid twin (same cell and seed, stopped by the stop rule: the 'stop rule' "
         f"column). {fl['trained']} of {fl['planned']} networks trained. Each cell: the "
         "networks monostable / bistable / mixed (the census above); the mean share of their "
         "static inputs that are bistable; their mean validation accuracy.", ""]
    tw = fl["twins"]
    if tw["compared"]:
        L += [f"Does each network retrace its twin up to the twin's stop rule? Of "
              f"{tw['compared']} pairs, {tw['identical']} have the same loss history to the last "
              f"bit over the twin's updates (largest difference {tw['max_abs_diff']:.2g}).", ""]
    L += ["| task | noise | networks | stop rule | " + " | ".join(
              f"after {k}" for k in keys[1:]) + " |", "|---|---|---|" + "---|" * len(keys)]
    for r in fl["cells"]:
        cells = []
        for k in keys:
            x = r["at"].get(str(k))
            if not x:
                cells.append("–")
                continue
            where = f" (median update {x['update_median']:.0f})" if k == "stop" else ""
            mixed = x["networks"] - x["bistable"] - x["monostable"]
            cells.append(f"{x['monostable']} / {x['bistable']} / {mixed}; "
                         f"{x['bistable_inputs']:.2f}; acc {x['accuracy_mean']:.3f}{where}")
        L.append(f"| {r['task']} | v = {r['noise']:g} | {r['networks']} | " + " | ".join(cells)
                 + " |")
    if fl["by_update"]:
        L += ["", "The noise-label silhouettes at each point of training (the topology "
              "descriptor, and the fixed-point count alone):", "",
              "| task | after | attractor topology | count of fixed points alone |",
              "|---|---|---|---|"]
        for b in fl["by_update"]:
            at = "the stop rule" if b["at"] == "stop" else f"{b['at']} updates"
            L.append(f"| {b['task']} | {at} | {fmt(b['topology'])} | {fmt(b['count'])} |")
    L += ["", f"**Answer**, per task (a change of at least {KIND_SHIFT:g} in a noise level's "
          "mean share of bistable inputs between its stop rule and update "
          f"{K} counts as *training length*; shares at update {K} that differ by at least "
          f"{KIND_SHIFT:g} between noise levels count as *noise*):", ""]
    for task, a in fl["answer"].items():
        if a["answer"] == "not yet":
            L.append(f"* {task}: not yet (networks still training: {run})")
            continue
        ch = ", ".join(f"v = {v}: {d:+.2f}" for v, d in a["length_change"].items())
        L.append(f"* {task}: **{a['answer']}** — change of the mean share of bistable inputs "
                 f"from the stop rule to update {K}: {ch}; spread of those shares across noise "
                 f"levels at update {K}: {a['noise_spread_at_K']:.2f}.")
    return L


# ---- verdicts ----------------------------------------------------------------

def separation(x: dict | None, negligible: float) -> str:
    """'separated', 'none' or 'undecided' (see the module docstring)."""
    if not x or x.get("silhouette") is None:
        return "n/a"
    lo, hi = x["ci"]
    if x["p"] < 0.05 and lo > 0:
        return "separated"
    if x["p"] >= 0.05 and hi < negligible:
        return "none"
    return "undecided"


WORD = {"separated": "separated", "none": "no separation", "undecided": "undecided",
        "n/a": "n/a"}


def group_sizes(c: ClaimComparison) -> list[int]:
    """The networks analysed in each group of a comparison (converged ones, and
    for the secondary comparison those ended at the budget too)."""
    return [sum(1 for _, m in g if m.get("status") in c.include) for g in c.groups.values()]


def sized(c: ClaimComparison) -> bool:
    """Whether every group has the MIN_FOR_VERDICT networks a verdict needs."""
    return all(n >= MIN_FOR_VERDICT for n in group_sizes(c))


def _scope(decided: str, short: list[ClaimComparison]) -> str:
    """What a verdict covers: ``decided``, and the tasks too short to enter it."""
    parts = [decided] if decided else []
    if short:
        ns = ", ".join(str(c.N) for c in sorted(short, key=lambda c: c.N))
        parts.append(f"N = {ns} short of {MIN_FOR_VERDICT} networks per group")
    return "; ".join(parts)


def verdicts(comps: list[ClaimComparison], negligible: float) -> dict:
    """Per claim: the verdict and the per-task evidence behind it."""
    def sep(c, m):
        return separation(c.result.get("metrics", {}).get(m), negligible)

    def short(c):
        return f"too few networks ({' + '.join(map(str, group_sizes(c)))}; " \
               f"{MIN_FOR_VERDICT} per group decide)"

    analysed = [c for c in comps if c.protocol == "original" and c.result.get("metrics")]
    secondary = [c for c in analysed if c.source == WITH_BUDGET]
    analysed = [c for c in analysed if c.source != WITH_BUDGET]
    noise = [c for c in analysed if c.kind == "noise" and sized(c)]
    rule = [c for c in analysed if c.kind == "rule" and sized(c)]
    noise_short = [c for c in analysed if c.kind == "noise" and not sized(c)]
    rule_short = [c for c in analysed if c.kind == "rule" and not sized(c)]
    out = {}
    # claim 2: simple tasks (RDM, N = 1): topology by noise separated
    simple = [c for c in noise if (c.task if c.N is None else c.N) in SIMPLE]
    s2 = [sep(c, "topology") for c in simple]
    out[2] = {"tasks": {**{c.task_label: s for c, s in zip(simple, s2)},
                        **{c.task_label: short(c) for c in noise_short
                           if (c.task if c.N is None else c.N) in SIMPLE}},
              "verdict": "undecided at this sample size" if not s2 else
              "holds" if all(s == "separated" for s in s2) else
              "does not hold" if all(s == "none" for s in s2) else
              "holds in part" if any(s == "separated" for s in s2) else
              "undecided at this sample size",
              "rule": "holds when the topology separates the noise levels (p < 0.05, interval "
                      "above 0) on every simple task (RDM, N = 1); does not hold when it shows "
                      "no separation on every one"}
    # claim 3: the most complex tasks: no separation; and separation on simple tasks
    complex_ = [c for c in noise if c.task == "ncdi" and c.N >= 2]
    s3 = {c.task_label: sep(c, "topology") if sized(c) else short(c)
          for c in sorted([c for c in noise + noise_short if c.task == "ncdi" and c.N >= 2],
                          key=lambda c: c.N)}
    top = max(complex_, key=lambda c: c.N) if complex_ else None
    if top is None:
        v3 = "undecided at this sample size"
    else:
        hi = sep(top, "topology")
        simple_sep = any(s == "separated" for s in s2)
        v3 = ("holds" if hi == "none" and simple_sep else
              "does not hold" if hi == "separated" or (hi == "none" and s2 and
                                                       all(s == "none" for s in s2)) else
              "undecided at this sample size")
    out[3] = {"tasks": s3, "verdict": v3,
              "scope": _scope(f"N ≤ {top.N} trained" if top is not None else "",
                              [c for c in noise_short if c.task == "ncdi" and c.N >= 2]),
              "rule": "holds when the topology separates the noise levels on a simple task and "
                      "shows no separation on the most complex task trained; does not hold when "
                      "the most complex task still separates them (or no task ever does)"}
    # claim 1: at each N >= 3 (and below, for the record): topology none, SVCCA separated
    per_n, complex_ns = {}, []          # complex_ns: (N, key) of the rule comparisons at N >= 3
    for c in rule:
        t, g = sep(c, "topology"), sep(c, "svcca_original")
        v = ("holds" if t == "none" and g == "separated" else
             "does not hold" if t == "separated" or g == "none" else
             "undecided at this sample size")
        key = c.label
        per_n[key] = {"topology": t, "svcca_original": g, "verdict": v}
        if c.task == "ncdi" and c.N >= 3:
            complex_ns.append((c.N, key))
    for c in rule_short:
        per_n[c.label] = short(c)
    vs = [per_n[k]["verdict"] for _, k in complex_ns]
    too_few = [c for c in rule_short if c.task == "ncdi" and c.N >= 3]
    out[1] = {"tasks": per_n,
              "scope": _scope("N = " + ", ".join(str(n) for n, _ in complex_ns) + " trained"
                              if complex_ns else "", too_few),
              "verdict": ("not decided yet" if too_few else "undecided at this sample size")
              if not vs else
              "holds" if all(v == "holds" for v in vs) else
              "does not hold" if all(v == "does not hold" for v in vs) else
              "undecided at this sample size" if all(v.startswith("undecided") for v in vs)
              else "mixed: " + ", ".join(f"{k} {per_n[k]['verdict']}" for _, k in complex_ns),
              "rule": "at each N ≥ 3: holds when the topology shows no separation of BPTT and "
                      "GA and SVCCA (original analysis) separates them; does not hold when the "
                      "topology separates them or SVCCA shows no separation"}
    # the same reading of the secondary comparison (budget-ended networks in): not a verdict
    out[1]["with_budget"] = {
        c.task_label: {"topology": sep(c, "topology"), "svcca_original": sep(c, "svcca_original"),
                       "sizes": group_sizes(c), "sized": sized(c)} for c in secondary}
    return out


# ---- the trend over N (claim 3) ----------------------------------------------

def trend(comps: list[ClaimComparison], metric: str = "topology", protocol: str = "original",
          seed: int = 0) -> dict | None:
    """Least-squares slope of the noise-label silhouette against N over the
    N-CDI tasks of one protocol, with a 95% bootstrap interval: each task's
    networks are resampled on their own (the bootstrap silhouettes of its
    comparison, shuffled independently of the other tasks') and the slope is
    refitted per resample; share_nonnegative is the share of resampled slopes
    >= 0 (a one-sided bootstrap p for a falling trend).  The original's last
    series is fitted over the same N and over N = 1...6 (it fitted a line to
    it, too).  Not part of any verdict: claim 3 is about invariance at high N,
    which a falling slope alone does not show."""
    rows = sorted((c for c in comps if c.kind == "noise" and c.protocol == protocol
                   and c.task == "ncdi" and not c.source and metric in c.boots
                   and c.result.get("metrics", {}).get(metric, {}).get("silhouette")
                   is not None), key=lambda c: c.N)
    if len(rows) < 2:
        return None
    x = np.array([c.N for c in rows], dtype=float)
    y = np.array([c.result["metrics"][metric]["silhouette"] for c in rows])
    rng = np.random.default_rng(seed)
    B = min(len(c.boots[metric]) for c in rows)
    Y = np.stack([rng.permutation(np.asarray(c.boots[metric]))[:B] for c in rows])
    xc = x - x.mean()
    slopes = xc @ (Y - Y.mean(axis=0)) / (xc @ xc)
    s = ORIGINAL_SERIES["by_N"]
    ox, oy = np.array(s["x"], float), np.array(s["y"], float)
    same = np.isin(ox, x)
    return {"metric": metric, "protocol": protocol, "N": [int(v) for v in x],
            "silhouettes": [float(v) for v in y],
            "slope": float(np.polyfit(x, y, 1)[0]),
            "ci": [float(v) for v in np.percentile(slopes, [2.5, 97.5])],
            "share_nonnegative": float(np.mean(slopes >= 0)), "n_boot": int(B),
            "original_slope_same_N": float(np.polyfit(ox[same], oy[same], 1)[0])
            if same.sum() >= 2 else None,
            "original_slope_all_N": float(np.polyfit(ox, oy, 1)[0])}


def series_match(comps: list[ClaimComparison], protocol: str = "original") -> dict:
    """How close the original's last N series lies to each of this tool's
    noise-label silhouettes (BPTT, N-CDI, one protocol): metric -> {"N": the
    N both have, "rms": root-mean-square difference}; metrics with fewer than
    two such N are left out.  Evidence on which analysis the series came
    from, not a verdict."""
    s = ORIGINAL_SERIES["by_N"]
    orig = dict(zip(s["x"], s["y"]))
    out = {}
    rows = [c for c in comps if c.kind == "noise" and c.protocol == protocol
            and c.task == "ncdi" and not c.source and c.N in orig]
    metrics = {m for c in rows for m in c.result.get("metrics", {})}
    for m in sorted(metrics):
        pts = sorted((c.N, c.result["metrics"][m]["silhouette"]) for c in rows
                     if c.result["metrics"].get(m, {}).get("silhouette") is not None)
        if len(pts) >= 2:
            d = np.array([y - orig[n] for n, y in pts])
            out[m] = {"N": [n for n, _ in pts], "rms": float(np.sqrt(np.mean(d ** 2)))}
    return out


def series_match_sentence(match: dict) -> str:
    if not match:
        return ""
    order = sorted(match, key=lambda m: match[m]["rms"])
    ns = match[order[0]]["N"]
    span = f"N = {ns[0]}…{ns[-1]}" if len(ns) > 2 else " and ".join(f"N = {n}" for n in ns)
    return (f" Measured against this tool's own noise-label silhouettes (BPTT, original "
            f"protocol, {span}), the last series lies closest to "
            f"{LABEL[order[0]]} (root-mean-square difference {match[order[0]]['rms']:.3f}); "
            "in full: " + ", ".join(f"{LABEL[m]} {match[m]['rms']:.3f}" for m in order) + ".")


# ---- the reference's rule rows -----------------------------------------------

def reference_rows(n_boot: int) -> dict:
    from rnn.analysis import reference
    if not reference.available():
        return {}
    out = {}
    for N in range(1, 7):
        D, g = reference.rule_block(N)
        out[N] = stats(D, ["BPTT" if k == 0 else "GA" for k in g], n_boot)
    return out


# ---- output ------------------------------------------------------------------

def fmt(x: dict | None) -> str:
    if not x or x.get("silhouette") is None:
        return "n/a"
    return f"{x['silhouette']:.3f} [{x['ci'][0]:.3f}, {x['ci'][1]:.3f}], p {x['p']:.2g}"


def training_line(c: ClaimComparison) -> str:
    """E.g. 'v = 0.1: 16 of 24 trained, all converged, median 46 updates'."""
    parts = []
    for lab, t in c.result["training"].items():
        n, conv = t["trained"], t["converged"]
        if n == 0:
            parts.append(f"{lab}: 0 of {t['planned']} trained")
            continue
        other = "".join(f", {k} {s}" for s, k in t["other"].items())
        how = "all converged" if conv == n else f"{conv} converged{other}"
        parts.append(f"{lab}: {n} of {t['planned']} trained, {how}"
                     + (f", median {t['updates_median']:.0f} updates"
                        if t["updates_median"] is not None else ""))
    return "; ".join(parts)


def short_cells(comps) -> list[str]:
    """One line per comparison with a group trained short of its plan: what is
    missing and the hours it would take on this CPU, one thread, from the
    measured training walls of the group's own networks (else of the same rule
    at the nearest task below that has some)."""
    timed: dict = {}
    for c in comps:
        if c.source:
            continue
        for lab, nets in c.groups.items():
            h, _ = median_hours([m for _, m in nets])
            if h is not None:
                timed[(c.kind, c.protocol, lab, c.order)] = h
    out = []
    for c in comps:
        if c.source:
            continue
        short = []
        for lab, t in c.result["training"].items():
            missing = t["planned"] - t["trained"]
            if missing <= 0:
                continue
            own = timed.get((c.kind, c.protocol, lab, c.order))
            below = sorted((o, h) for (k, pr, lb, o), h in timed.items()
                           if (k, pr, lb) == (c.kind, c.protocol, lab) and o < c.order)
            if own is not None:
                est = f"about {missing * own:.1f} h"
            elif below:
                o, h = below[-1]
                task = "RDM" if o == 0 else f"N = {o:g}"
                est = f"at least {missing * h:.1f} h (timed at {task})"
            else:
                est = "not timed yet"
            short.append(f"{lab} {t['trained']} of {t['planned']} ({est})")
        if short:
            what = "noise" if c.kind == "noise" else "rule"
            out.append(f"* {c.task_label}, {what} comparison, {c.protocol} protocol: "
                       + ", ".join(short))
    return out


def trend_sentence(t: dict) -> str:
    ns = f"N = {t['N'][0]}…{t['N'][-1]}" if len(t["N"]) > 2 else \
        " and ".join(f"N = {n}" for n in t["N"])
    orig = (f"; the original's last series ({ORIGINAL_SERIES['by_N']['commit']}) has "
            f"{t['original_slope_same_N']:+.3f} over the same N and "
            f"{t['original_slope_all_N']:+.3f} over N = 1…6"
            if t.get("original_slope_same_N") is not None else "")
    return (f"**Trend over N, {t['protocol']} protocol** (not part of a verdict): the "
            f"{LABEL[t['metric']].lower()} silhouette with the noise level as the label has a "
            f"least-squares slope of {t['slope']:+.3f} per unit of N over {ns} "
            f"[{t['ci'][0]:+.3f}, {t['ci'][1]:+.3f}] (each task's networks resampled on their "
            f"own, {t['n_boot']} resamples; share of resampled slopes ≥ 0: "
            f"{t['share_nonnegative']:.3g}){orig}.")


def verdict_text(claim: dict) -> str:
    """'does not hold (N ≤ 4 trained)': the verdict and how far up in N it reaches."""
    return claim["verdict"] + (f" ({claim['scope']})" if claim.get("scope") else "")


def write_markdown(path: Path, comps, claims, ref, args, wall: float, figures,
                   trends: list | None = None, match: dict | None = None,
                   fl: dict | None = None) -> None:
    neg = args.negligible
    L = ["# The paper's three claims", "",
         "Generated by `python -m experiments.paper` (experiments/paper.py) from the networks "
         "of " + ", ".join(f"`{Path(g).relative_to(ROOT)}`" if Path(g).is_relative_to(ROOT)
                           else f"`{g}`" for g in args.grid_paths) +
         (" and the protocol experiment's N = 1, 2 networks" if not args.no_protocol_networks
          else "") + f"; {args.bootstrap} bootstrap resamples and permutations per silhouette; "
         f"this run took {wall:.0f} s. Silhouettes: scikit-learn's (mean over networks) "
         "[95% bootstrap interval], permutation p; networks that reached the stop rule only. "
         f"A comparison **separates** its groups when p < 0.05 and the interval is above 0, "
         f"shows **no separation** when p ≥ 0.05 and the interval lies below {neg:g}, and is "
         "**undecided** otherwise.", "",
         "| claim | the original's evidence | this tool (attractor topology silhouette) | "
         "verdict |", "|---|---|---|---|"]
    by_n = ORIGINAL_SERIES["by_N"]
    evidence = {
        1: "reference matrix, BPTT vs GA SVCCA silhouette: " + ", ".join(
            f"N = {N} {ref[N]['silhouette']:.3f}" for N in sorted(ref)) if ref else "—",
        2: f"series typed into its svcca_analysis.py ({by_n['commit']}): silhouette "
           f"{by_n['y'][0]:g} at N = 1",
        3: f"the same series ({by_n['commit']}) for N = 1…6: " +
           ", ".join(f"{y:g}" for y in by_n["y"])}

    def counts(c) -> str:
        """' (24 + 11 networks)': the converged networks of each group analysed."""
        n = [str(t["converged"]) for t in c.result["training"].values()]
        return f" ({' + '.join(n)} networks)"

    def topo_of(kind, pred):
        return "; ".join(f"{c.label}: "
                         f"{fmt(c.result.get('metrics', {}).get('topology'))}{counts(c)}"
                         for c in comps if c.kind == kind and c.protocol == "original"
                         and pred(c) and c.result.get("metrics"))
    mine = {1: topo_of("rule", lambda c: c.source != WITH_BUDGET),
            2: topo_of("noise", lambda c: c.order <= 1),
            3: topo_of("noise", lambda c: c.order >= 2)}
    for k in (1, 2, 3):
        L.append(f"| {k}. {CLAIMS[k]} | {evidence[k]} | {mine[k] or 'not trained yet'} | "
                 f"**{claims[k]['verdict']}**"
                 + (f" ({claims[k]['scope']})" if claims[k].get("scope") else "") + " |")
    L += ["", "How each verdict is reached:", ""]
    for k in (1, 2, 3):
        per = claims[k]["tasks"]
        ev = "; ".join(f"{t}: " + (WORD.get(v, v) if isinstance(v, str) else
                                   f"topology {WORD[v['topology']]}, SVCCA "
                                   f"{WORD[v['svcca_original']]} → {v['verdict']}")
                       for t, v in per.items())
        L.append(f"* Claim {k} — {claims[k]['rule']}. Per task: {ev or 'nothing analysed'}.")
    wb = claims[1].get("with_budget")
    if wb:
        L.append("* Claim 1 with the networks that ended at the budget (2000 generations without "
                 "reaching the stop rule) in, as the original kept them — a secondary reading "
                 "beside the verdict, not one: " + "; ".join(
                     f"{t}: topology {WORD[v['topology']]}, SVCCA {WORD[v['svcca_original']]} "
                     f"({' + '.join(map(str, v['sizes']))} networks"
                     + ("" if v["sized"] else f"; short of {MIN_FOR_VERDICT} per group") + ")"
                     for t, v in wb.items()) + ".")
    for t in trends or []:
        L += ["", trend_sentence(t)]
    for f in figures:
        L += ["", f"![{f}]({f})"]
    for kind, title in (("noise", "Input noise as the group label (BPTT)"),
                        ("rule", "Learning rule as the group label (BPTT against GA, -v 0.5)")):
        for protocol in ("original", "clean"):
            rows = [c for c in comps if c.kind == kind and c.protocol == protocol]
            if not rows:
                continue
            L += ["", f"## {title}, {protocol} protocol", "",
                  "| task | networks | " + " | ".join(LABEL[m] for m in args.metrics) + " |",
                  "|---|---|" + "---|" * len(args.metrics)]
            for c in rows:
                r = c.result
                cells = [fmt(r.get("metrics", {}).get(m)) for m in args.metrics] \
                    if r.get("metrics") else \
                    ["not yet: fewer than 2 converged networks in a group"] + \
                    ["–"] * (len(args.metrics) - 1)
                L.append(f"| {c.label} | "
                         f"{training_line(c)} | " + " | ".join(cells) + " |")
            if kind == "rule" and protocol == "original" and ref:
                L.append("| reference matrix (original code), N = 1…6 | BPTT/GA "
                         + ", ".join(f"{ref[N]['n']}" for N in sorted(ref)) + " | – | "
                         + "<br>".join(f"N = {N}: {fmt(ref[N])}" for N in sorted(ref))
                         + " |" + " – |" * (len(args.metrics) - 2))
    L += census_sections(comps, args.metrics)
    L += fixed_length_section(fl)
    short = short_cells(comps)
    if short:
        L += ["", "## Cells short of their plan", "",
              "Networks not trained yet, by comparison (the plan is the grid file's "
              "`networks`), with the CPU time the missing ones would take on this project's "
              "2-core CPU, one thread per job: the median training wall per network of the "
              "group's own networks (a job's wall shared by the networks it trained "
              "together), else of the same rule at the nearest task below (a lower bound: "
              "training grows longer with N). Rerunning `python run_grid.py "
              "experiments/grids/claims.toml --workers 1 --threads 1` (and `claims_high.toml` "
              "for N = 5, 6) trains exactly the missing seeds, in the background, across "
              "sessions; `bash experiments/claims_gpu.sh` does the same on a GPU where one is "
              "lent. A network that did not converge counts as trained and is kept out of the "
              "silhouettes.", ""] + short
    L += ["", "## What the original's code says about claims 2 and 3", "",
          "The original repository holds no table of these claims. At the end of its "
          "`svcca_analysis.py` three commits type in a series of silhouettes against N = 1…6 "
          "and fit a line to it: " + "; ".join(
              f"{e['commit']} ({e['date']}) {', '.join(f'{y:g}' for y in e['y'])}"
              for e in ORIGINAL_SERIES["by_N_earlier"]) +
          f"; {by_n['commit']} ({by_n['date']}, the last) "
          f"{', '.join(f'{y:g}' for y in by_n['y'])}. One commit earlier, "
          f"{ORIGINAL_SERIES['by_noise']['commit']} ({ORIGINAL_SERIES['by_noise']['date']}) had "
          f"a series against the noise level 0.1, 0.5, 1.0: "
          f"{', '.join(f'{y:g}' for y in ORIGINAL_SERIES['by_noise']['y'])}. Its "
          "`fixed_point_input_topology.py` (and `svcca_analysis.py`) switch to a six-colour "
          "palette 'when plotting against noise levels' whenever a groups file has other than "
          "2 or 4 groups. By its shape alone the last N series reads as claims 2 and 3 (it "
          "falls from 0.25 at N = 1 to about 0 from N = 2 on; the BPTT–GA SVCCA silhouettes "
          "of the reference, 0.29 to 0.15, are not it), and the claims are about the "
          f"attractor topology.{series_match_sentence(match or {})} It changed by up to 0.4 "
          "between commits 9 days apart, so the networks or the analysis behind it changed "
          "too. Which rule, how many networks per noise level, which protocol, and whether "
          "the numbers came from the topology or the SVCCA script (the file it is typed "
          "into) is not recorded anywhere in the repository, and cannot be known. This tool "
          "therefore compares BPTT networks (the rule the original trains by default) at "
          "the three noise levels of its README under the original protocol, with both the "
          "topology and every representational metric, and shows the original's last "
          "series beside its own topology and SVCCA (original analysis) silhouettes.", ""]
    path.write_text("\n".join(L) + "\n")


def census_cell(x: dict) -> tuple[str, str, str]:
    """(networks by kind, mean share of inputs by class, fixed points) of one group."""
    k, i = x["kinds"], x["inputs"]
    return (f"{k['monostable']} / {k['bistable']} / {k['mixed']}",
            f"{i['monostable']:.2f} / {i['bistable']:.2f} / {i['other']:.2f}",
            f"{x['points_median']:.0f} [{x['points_range'][0]}, {x['points_range'][1]}]")


def census_sections(comps, metrics) -> list[str]:
    """PAPER.md's census sections: what separates the noise levels (the census
    by noise level and the matched-descriptor silhouettes) and claim 1's
    mechanism (the census by learning rule)."""
    if "topology" not in metrics:
        return []
    L = []
    head = ("| task | group | networks (converged) | networks monostable / bistable / mixed | "
            "share of inputs monostable / bistable / other | fixed points, median [range] | "
            "updates, median |", "|---|---|---|---|---|---|---|")
    for kind, protocols, title in (
            ("noise", ("original", "clean"), "What separates the noise levels: the attractor "
                                            "census"),
            ("rule", ("original",), "Claim 1's mechanism: the attractor census by learning "
                                    "rule (-v 0.5)")):
        rows = [c for c in comps if c.kind == kind and c.result.get("census")]
        if not rows:
            continue
        L += ["", f"## {title}", ""]
        if kind == "noise":
            L += ["Each network's fixed points under the 'small' static inputs (those of the "
                  "topology column), counted per input: an input is *monostable* with exactly "
                  "one fixed point, stable; *bistable* with two stable points and one saddle "
                  "(one unstable direction); *other* otherwise. A network is monostable or "
                  "bistable when every input is, *mixed* otherwise. Converged networks only; "
                  "updates: to the stop rule.", ""]
        else:
            L += ["The same census for BPTT against GA: whether the two rules' attractors "
                  "differ in kind (monostable against bistable) or only in where they lie "
                  "(the representational metrics above).", ""]
        for protocol in protocols:
            sub = [c for c in rows if c.protocol == protocol]
            if not sub:
                continue
            L += [f"{protocol.capitalize()} protocol:", "", *head]
            for c in sub:
                for lab, x in c.result["census"].items():
                    if not x.get("networks"):
                        continue
                    a, b, pts = census_cell(x)
                    upd = f"{x['updates_median']:.0f}" if "updates_median" in x else "–"
                    L.append(f"| {c.label} | {lab} | {x['networks']} | {a} | {b} | "
                             f"{pts} | {upd} |")
            L.append("")
        if kind == "noise":
            L += ["Does the topology descriptor separate the noise levels beyond the census? "
                  "The silhouette of the noise label on the topology descriptor beside two "
                  "census descriptors — the count of fixed points alone (one number per "
                  "network) and the number of stable points under each input — and the "
                  "topology silhouette within the networks of one kind only (groups with at "
                  "least two such networks; their sizes in brackets):", "",
                  "| task | protocol | attractor topology | count of fixed points alone | "
                  "stable points per input | topology, monostable networks only | topology, "
                  "bistable networks only |", "|---|---|---|---|---|---|---|"]
            for c in rows:
                mt = c.result.get("matched", {})
                within = []
                for k in ("monostable", "bistable"):
                    x = mt.get(f"topology_{k}", {})
                    g = ", ".join(f"{lab} {n}" for lab, n in x.get("groups", {}).items())
                    within.append((fmt(x) if x.get("silhouette") is not None else
                                   "fewer than two groups") + (f" ({g})" if g else ""))
                L.append(f"| {c.task_label} | {c.protocol} | "
                         f"{fmt(c.result['metrics'].get('topology'))} | "
                         f"{fmt(mt.get('count'))} | {fmt(mt.get('stable_per_input'))} | "
                         f"{within[0]} | {within[1]} |")
    return L


def plot_census(comps, out: Path) -> list[str]:
    """paper_attractors.png: against the task, per noise level (BPTT, original
    protocol) and for GA at -v 0.5, the mean share of bistable static inputs,
    the median count of fixed points per static input ('small' set: 21 per
    context) and the median training length."""
    from rnn import plotting as plots
    rows = [c for c in comps if c.protocol == "original" and not c.source
            and c.result.get("census")]
    if not rows:
        return []
    plots.use_backend(False)
    fig, axes = plots.new_figure(3, 1, width=4.4, height=3.8)
    series: dict = {}
    for c in rows:
        for lab, x in c.result["census"].items():
            if c.kind == "rule" and lab != "GA" or not x.get("networks"):
                continue
            name = f"BPTT, {lab}" if c.kind == "noise" else "GA, v = 0.5"
            series.setdefault(name, {})[c.order] = x
    for name in sorted(series, key=lambda n: (n.startswith("GA"), n)):
        pts = sorted(series[name].items())
        xs = [o for o, _ in pts]
        style = dict(marker="s", ls=":", color="k") if name.startswith("GA") else \
            dict(marker="o", ls="-")
        axes[0][0].plot(xs, [x["inputs"]["bistable"] for _, x in pts], label=name, **style)
        axes[0][1].plot(xs, [x["points_median"] / x["static_inputs"] for _, x in pts],
                        label=name, **style)
        axes[0][2].plot(xs, [x.get("updates_median", np.nan) for _, x in pts], label=name,
                        **style)
    for ax, title, ylab in zip(axes[0], ("bistable inputs", "fixed points",
                                         "training length"),
                               ("share of static inputs bistable (mean over networks)",
                                "median count per static input",
                                "median updates to the stop rule")):
        ax.set_xticks(range(0, 7), ["RDM"] + [str(n) for n in range(1, 7)])
        ax.set_xlabel("task (N of N-CDI)")
        ax.set_title(title)
        ax.set_ylabel(ylab)
    axes[0][2].set_yscale("log")
    axes[0][0].set_ylim(-0.05, 1.05)
    axes[0][0].legend(fontsize=7)
    return [plots.save(fig, out / "paper_attractors.png")]


def plot(comps, ref, out: Path, trends: list | None = None) -> list[str]:
    from rnn import plotting as plots
    plots.use_backend(False)
    written = []
    fig, axes = plots.new_figure(2, 1, width=5.2, height=4.0)
    for ax, metric in zip(axes[0], ("topology", "svcca_original")):
        for protocol, marker, dx in (("original", "o", 0.0), ("clean", "s", 0.15)):
            rows = [c for c in comps if c.kind == "noise" and c.protocol == protocol
                    and c.result.get("metrics", {}).get(metric)]
            if rows:
                _errorbars(ax, [c.order + dx for c in rows],
                           [c.result["metrics"][metric] for c in rows], marker,
                           f"this tool, {protocol} protocol")
        for t in trends or []:
            if t["metric"] == metric and t["protocol"] == "original":
                xs = np.array([t["N"][0], t["N"][-1]], float)
                y0 = np.mean(t["silhouettes"]) - t["slope"] * np.mean(t["N"])
                ax.plot(xs, y0 + t["slope"] * xs, "--", color="C0", lw=1,
                        label=f"line fitted over N = {t['N'][0]}…{t['N'][-1]}")
        if metric in ("topology", "svcca_original"):
            s = ORIGINAL_SERIES["by_N"]
            ax.plot(s["x"], s["y"], "x", color="grey", ms=8,
                    label=f"original code's series ({s['commit']})")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(range(0, 7), ["RDM"] + [str(n) for n in range(1, 7)])
        ax.set_xlabel("task (N of N-CDI)")
        ax.set_ylabel("silhouette, noise level as label")
        ax.set_title(LABEL[metric] + " by input noise")
        ax.legend(fontsize=7)
    written.append(plots.save(fig, out / "paper_noise.png"))
    fig, axes = plots.new_figure(2, 1, width=5.2, height=4.0)
    for ax, metric in zip(axes[0], ("topology", "svcca_original")):
        rows = [c for c in comps if c.kind == "rule" and c.protocol == "original"
                and c.result.get("metrics", {}).get(metric)]
        for src, marker, lab in (("", "o", "this tool (claims grid)"),
                                 ("protocol", "s", "this tool (protocol networks)"),
                                 (WITH_BUDGET, "D", "this tool, networks ended at the budget "
                                                    "in")):
            sub = [c for c in rows if c.source == src]
            if sub:
                _errorbars(ax, [c.order for c in sub], [c.result["metrics"][metric] for c in sub],
                           marker, lab)
        if metric == "svcca_original" and ref:
            _errorbars(ax, [N + 0.15 for N in sorted(ref)], [ref[N] for N in sorted(ref)], "^",
                       "reference matrix (original code)")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(range(1, 7))
        ax.set_xlabel("N of N-CDI")
        ax.set_ylabel("silhouette, rule as label")
        ax.set_title(LABEL[metric] + ": BPTT vs GA")
        if ax.get_legend_handles_labels()[0]:        # nothing to label where nothing is drawn
            ax.legend(fontsize=7)
    written.append(plots.save(fig, out / "paper_rules.png"))
    return written


def _errorbars(ax, x, rows, marker, label):
    """Each silhouette as a marker and its bootstrap interval as a bar; the
    bar is drawn on its own because a silhouette can lie outside its
    percentile interval (the resamples' silhouettes are biased), which
    matplotlib's asymmetric yerr cannot show."""
    y = np.array([r["silhouette"] for r in rows])
    lo = np.array([r["ci"][0] for r in rows])
    hi = np.array([r["ci"][1] for r in rows])
    pt = ax.plot(x, y, marker, ls="none", label=label)[0]
    ax.errorbar(x, (lo + hi) / 2, yerr=(hi - lo) / 2, fmt="none", capsize=3,
                ecolor=pt.get_color())


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from rnn.grid.format import read_grid
    if args.bootstrap < 1:
        raise UserError(f"--bootstrap must be at least 1, got {args.bootstrap}")
    bad = [m for m in args.metrics if m not in METRICS]
    if bad:
        raise UserError(f"unknown metric {bad[0]!r} (known: {', '.join(METRICS)})")
    if not (0 < args.negligible <= 1):
        raise UserError(f"--negligible must be in (0, 1], got {args.negligible}")
    paths = [Path(g) for g in args.grids] if args.grids else [g for g in GRIDS if g.exists()]
    grids = [read_grid(p) for p in paths]
    args.grid_paths = [str(p.resolve()) for p in paths]
    from rnn.io import ensure_writable
    out = ensure_writable(Path(args.out), what="the --out folder", hint="(choose another with "
                                                                        "--out)")
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    t0 = time.time()
    comps = comparisons_of(grids, not args.no_protocol_networks, args.models_dir)
    if not comps:
        raise UserError("the grids have no cells that differ only in the noise level or rule")
    cache_dir = grids[0].folder(args.models_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for c in comps:
        log(f"{c.kind} {c.label}, {c.protocol} protocol: "
            + ", ".join(f"{k} {len(v)}" for k, v in c.groups.items()))
        c.result = analyse(c, args.metrics, args.bootstrap, cache_dir, log, args.quiet)
        if c.result.get("skipped"):
            log(f"  skipped: {c.result['skipped']}")
        else:
            log("  " + "; ".join(f"{m} {fmt(x)}" for m, x in c.result["metrics"].items()))
    fl = None
    if args.fixed_length != "none" and "topology" in args.metrics:
        fl = fixed_length(read_grid(args.fixed_length), None, cache_dir, args.bootstrap, log)
    ref = reference_rows(args.bootstrap) if "svcca_original" in args.metrics else {}
    claims = verdicts(comps, args.negligible)
    trends = [t for t in (trend(comps, "topology", pr) for pr in ("original", "clean"))
              if t is not None] if "topology" in args.metrics else []
    figures = plot(comps, ref, out, trends) + plot_census(comps, out)
    wall = round(time.time() - t0, 1)       # PAPER.md and paper.json print the same figure
    md = out / "PAPER.md"
    match = series_match(comps)
    write_markdown(md, comps, claims, ref, args, wall, [Path(f).name for f in figures], trends,
                   match, fl)
    js = out / "paper.json"
    from rnn.io import atomic_write_text, dumps_strict
    atomic_write_text(js, dumps_strict({
        "claims": {k: {"claim": CLAIMS[k], **v} for k, v in claims.items()},
        "comparisons": [{"key": c.key, "kind": c.kind, "task": c.task, "N": c.N,
                         "protocol": c.protocol, "source": c.source, **c.result}
                        for c in comps],
        "trends": trends, "original_series_match": match, "fixed_length": fl,
        "reference_rule_svcca": ref, "original_series": ORIGINAL_SERIES,
        "bootstrap": args.bootstrap, "negligible": args.negligible, "grids": args.grid_paths,
        "wall_seconds": round(wall, 1)}))
    for k in (1, 2, 3):
        print(f"claim {k}: {verdict_text(claims[k])}")
    for w in [str(md), str(js), *figures]:
        print(f"wrote {w}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    run_cli(main, sys.argv[1:])
