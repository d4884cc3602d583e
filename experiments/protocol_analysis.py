"""The analysis half of experiments/protocol.py: every cell under this tool's
SVCCA analysis and the original's, silhouettes with bootstrap intervals and
permutation p-values, the reference matrix through the same code, and the
tables experiments/results/PROTOCOL.md and protocol.json."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from experiments.protocol_cells import ProtocolCell, networks
from rnn.analysis.compare import (batched_silhouette, paired_silhouette_difference, silhouette_stats,
                         within_between)
from rnn.analysis.fixed_points import weights_hash
from rnn.io import load_model
from rnn.analysis.reference import REFERENCE, rule_block
from rnn.analysis.metrics import METRICS
from rnn.analysis.metrics import label as metric_label
from rnn.rules import REGISTRY
from rnn.analysis.similarity import network_distances
from rnn.analysis.svcca import SVCCAOptions
from rnn.training import ValidationSet

ANALYSES = {"original": SVCCAOptions.original(), "tool": SVCCAOptions()}
LABEL = {name: rule.label for name, rule in REGISTRY.items()}


def group_numbers(D: np.ndarray, g: np.ndarray, n_boot: int, seed: int = 0) -> dict:
    """Silhouette with interval and p-value, within-group and between means."""
    s = silhouette_stats(D, g, n_boot, n_boot, seed)
    bal = silhouette_stats(D, g, n_boot, n_boot, seed, balanced=True)
    off = ~np.eye(len(g), dtype=bool)
    within = [float(D[(g[:, None] == k) & (g[None, :] == k) & off].mean()) for k in (0, 1)]
    _, between = within_between(D, list(g))
    return {"n": [int(np.sum(g == 0)), int(np.sum(g == 1))], **s.summary(),
            "balanced": bal.summary(), "within_bptt": within[0], "within_ga": within[1],
            "between": between}


def reference_tables(n_boot: int) -> dict:
    """(d): the reference matrix, per N, BPTT against GA."""
    out = {}
    rng = np.random.default_rng(0)
    for N in range(1, 7):
        sub, g = rule_block(N)
        out[N] = group_numbers(sub, g, n_boot)
        # how noisy is a 10-against-10 design? random subsets of this N's networks
        reps = 2000
        pick = np.stack([np.concatenate([rng.choice(np.flatnonzero(g == 0), 10, replace=False),
                                         rng.choice(np.flatnonzero(g == 1), 10, replace=False)])
                         for _ in range(reps)])
        s10 = batched_silhouette(sub, pick, np.broadcast_to(np.repeat([0, 1], 10), pick.shape), 2)
        out[N]["subsets_10v10"] = {"p05": float(np.percentile(s10, 5)),
                                   "p95": float(np.percentile(s10, 95)),
                                   "min": float(s10.min()), "max": float(s10.max())}
    return out


def strict_accuracy(lm) -> float:
    """Accuracy on this tool's clean validation set (fixed starts, strength-0 trials
    scored against their random sign), whatever protocol trained the network."""
    seed = int(lm.meta.get("seed", 0))
    val = ValidationSet.make(lm.task, [seed], lm.model.hidden, "cpu")
    return float(val.accuracy(lm.model, torch.tensor([0]))[0])


def analyse_cell(cell: ProtocolCell, n_boot: int) -> dict | None:
    found = {r: networks(cell, r) for r in ("bptt", "ga")}
    loaded = {r: [(load_model(m["name"], folder), m) for folder, m in found[r]]
              for r in ("bptt", "ga")}
    if min(len(v) for v in loaded.values()) < 2:
        return None
    rows = [(r, lm, m) for r in ("bptt", "ga") for lm, m in loaded[r]]
    g = np.array([0 if r == "bptt" else 1 for r, _, _ in rows])
    conv = np.array([m["status"] == "converged" for _, _, m in rows])
    keys = [weights_hash(lm.model) for _, lm, _ in rows]
    res = {"description": cell.description, "task": list(cell.task), "training": {},
           "analyses": {},
           "_rows": [(r, int(m["seed"])) for r, _, m in rows], "_D": {}}
    for r in ("bptt", "ga"):
        ms = [m for rr, _, m in rows if rr == r]
        lms = [lm for rr, lm, _ in rows if rr == r]
        res["training"][r] = {
            "networks": len(ms), "planned": cell.counts()[r],
            "converged": sum(m["status"] == "converged" for m in ms),
            "updates_median": float(np.median([m["steps"] for m in ms])),
            "accuracy_own_rule_mean": float(np.mean([m["final_accuracy"] for m in ms])),
            "accuracy_clean_validation_mean": float(np.mean([strict_accuracy(lm)
                                                             for lm in lms])),
            "protocol": ms[0].get("protocol", {}).get("label", "clean"),
            # training time: each batched run's wall time once (its members share it),
            # for the networks this cell trained itself
            "train_wall_s": round(sum({(f, m.get("population", {}).get("name", m["name"])):
                                       float(m.get("wall_time_s", 0.0))
                                       for f, m in found[r] if f == cell.folder()}.values()), 1),
            "train_devices": sorted({m.get("device", "cpu") for f, m in found[r]
                                     if f == cell.folder()}),
            # networks that are another cell's (protocol.reusable: the same training)
            "shared_with": {cell.reuse_from: sum(f != cell.folder() for f, _ in found[r])}
            if cell.reuse_from else {}}
    for aname, opts in ANALYSES.items():
        # distances cached beside the cells' folders, keyed by the networks'
        # weights: a rerun, and a cell that shares another's networks, reuse them
        sv = network_distances([lm for _, lm, _ in rows], ["svcca"], opts, cell.root,
                               keys)["svcca"]
        res["_D"][aname] = sv.distances
        entry = {"all_saved": group_numbers(sv.distances, g, n_boot),
                 "noise_floor_mean": float(sv.noise_floor.mean()),
                 "dims": [min(sv.directions), max(sv.directions)]}
        if conv.all():
            entry["converged_only"] = entry["all_saved"]
        elif min(np.sum(conv & (g == k)) for k in (0, 1)) >= 2:
            idx = np.flatnonzero(conv)
            entry["converged_only"] = group_numbers(sv.distances[np.ix_(idx, idx)], g[idx],
                                                    n_boot)
        else:
            entry["converged_only"] = None
        res["analyses"][aname] = entry
    res["metrics"] = metric_numbers([lm for _, lm, _ in rows], keys, g, n_boot, cell.root)
    return res


def metric_numbers(models, keys, g, n_boot: int, cache_dir: Path) -> dict:
    """BPTT against GA under every similarity metric (this tool's activity),
    the distances cached in ``cache_dir``."""
    res = network_distances(models, list(METRICS), SVCCAOptions(), cache_dir, keys)
    return {m: group_numbers(r.distances, g, n_boot) for m, r in res.items()}


BASE = "original"


def paired_differences(cells: dict, n_boot: int) -> None:
    """Each cell analysed in this run against ``original`` (when it was too),
    over the seeds both have: balanced silhouette, cell − original, with a
    paired bootstrap interval (the cells share seeds, so a seed's networks
    differ only in the protocol).  Cells of another task (N = 1) are not
    paired: their seeds train other networks on another task.  Stored as
    cell["vs_original"]; drops the cells' in-memory distances."""
    base = cells.get(BASE, {})
    for name, c in cells.items():
        if name == BASE or "_D" not in c or "_D" not in base or \
                c.get("task") != base.get("task"):
            continue
        pos = {k: i for i, k in enumerate(base["_rows"])}
        both = [(i, pos[k]) for i, k in enumerate(c["_rows"]) if k in pos]
        mine = np.array([i for i, _ in both])
        theirs = np.array([j for _, j in both])
        g = np.array([0 if c["_rows"][i][0] == "bptt" else 1 for i in mine])
        c["vs_original"] = {"seeds": [int(np.sum(g == 0)), int(np.sum(g == 1))]}
        for aname, D in c["_D"].items():
            Db = base["_D"][aname][np.ix_(theirs, theirs)]
            c["vs_original"][aname] = paired_silhouette_difference(
                Db, D[np.ix_(mine, mine)], g, n_boot)
    for c in cells.values():
        c.pop("_D", None)
        c.pop("_rows", None)


def fmt_diff(x: dict | None) -> str:
    if x is None or x.get("difference") is None:
        return "n/a"
    return f"{x['difference']:+.3f} [{x['ci'][0]:+.3f}, {x['ci'][1]:+.3f}], p {x['p']:.2g}"


def fmt_sil(x: dict | None) -> str:
    if x is None or x["silhouette"] is None:
        return "n/a"
    return f"{x['silhouette']:.3f} [{x['ci'][0]:.3f}, {x['ci'][1]:.3f}], p {x['p']:.3g}"


def fmt_bal(x: dict | None) -> str:
    return "n/a" if x is None else fmt_sil(x["balanced"])


def fmt_dist(x: dict | None) -> str:
    if x is None:
        return "n/a"
    return f"{x['within_bptt']:.4f} / {x['within_ga']:.4f} / {x['between']:.4f}"


def analyse_all(cells: list[ProtocolCell], n_boot: int, wall: float, out: Path) -> None:
    t0 = time.time()
    out_json = out / "protocol.json"
    try:
        old = json.loads(out_json.read_text()).get("cells", {})
    except (OSError, ValueError):
        old = {}
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch "
                          f"{torch.__version__}", "resamples": n_boot,
               "analyses": {k: v.to_dict() for k, v in ANALYSES.items()},
               "reference": reference_tables(n_boot) if (REFERENCE / "distances.npy").exists()
               else {}, "cells": dict(old)}
    for cell in cells:
        print(f"[{cell.name}] analysing ...", flush=True)
        r = analyse_cell(cell, n_boot)
        if r is not None:
            results["cells"][cell.name] = r
    paired_differences(results["cells"], n_boot)
    results["run_wall_time_s"] = round(wall + time.time() - t0, 1)
    out_json.write_text(json.dumps(results, indent=1) + "\n")
    (out / "PROTOCOL.md").write_text(render(results))
    print(f"wrote {out / 'PROTOCOL.md'}\nwrote {out_json}")


def fmt_duration(seconds: float) -> str:
    """Hours from one hour up, minutes below."""
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def render(res: dict) -> str:
    ref = res["reference"]
    L = ["# Original protocol vs this tool's: which behaviour carries the SVCCA separation?", "",
         "Generated by `experiments/protocol.py` (`bash experiments/reproduce.sh --protocol "
         "original`). Silhouettes of BPTT against GA on precomputed SVCCA distances, with a 95% "
         f"bootstrap interval over networks (each rule resampled within itself) and a "
         f"permutation p-value (labels shuffled); {res['resamples']} resamples each. "
         "Distances: within BPTT / within GA / between. All CDI at -v 0.5 unless the cell says "
         "N = 1. scikit-learn's silhouette is the mean over networks, so it moves with the "
         "groups' sizes: when one rule's networks are tight and the other's spread, the larger "
         "group dominates it. The *balanced* silhouette is the mean of the two rules' mean "
         "silhouettes (same interval and test); compare cells of unequal sizes by it.", "",
         f"Machine: {res['machine']}.", "",
         "## The reference: the original study's own distance matrix", "",
         "`../shared/reference/distances.npy` (561 networks, the original's analysis), through "
         "this tool's silhouette code. Last column: the 5th–95th percentile of the silhouette "
         "of random 10-against-10 subsets (2000 draws).", "",
         "| N | networks BPTT + GA | silhouette [95% CI], p | balanced silhouette | within "
         "BPTT / within GA / between | 10 v 10 subsets |", "|---|---|---|---|---|---|"]
    if not ref:
        L.append(f"| – | {REFERENCE} not found | | | |")
    for N, x in ref.items():
        s = x["subsets_10v10"]
        L.append(f"| {N} | {x['n'][0]} + {x['n'][1]} | {fmt_sil(x)} | {fmt_bal(x)} | "
                 f"{fmt_dist(x)} | "
                 f"{s['p05']:.3f} – {s['p95']:.3f} |")
    cells = res["cells"]
    L += ["", "## CDI: the original protocol, one behaviour removed at a time", "",
          "Analysis *original*: 2 SVD directions, 120/N levels per context, every probe "
          "trial from its own random start. *tool*: x from 0, 10 levels, 95% of the variance. "
          "*all saved*: every network the training saved, as the original analysed them; "
          "*converged*: only those that met their stop rule. Accuracy: on this tool's "
          "clean validation set.", "",
          "| cell | BPTT converged / saved (median updates) | GA converged / saved (median "
          "generations) | clean accuracy BPTT / GA | original analysis, all saved | "
          "distances | original analysis, converged | tool analysis, all saved | "
          "balanced silhouette: original analysis / tool analysis |",
          "|---|---|---|---|---|---|---|---|---|"]
    for name in ["original", "original-shared_x0", "original-lenient_stop",
                 "original-budgets", "clean"]:
        if name not in cells:
            L.append(f"| {name} | not trained yet | | | | | | | |")
            continue
        c = cells[name]
        tb, tg = c["training"]["bptt"], c["training"]["ga"]
        ao, at = c["analyses"]["original"], c["analyses"]["tool"]
        L.append(f"| {name} | {tb['converged']} / {tb['networks']} ({tb['updates_median']:.0f}) | "
                 f"{tg['converged']} / {tg['networks']} ({tg['updates_median']:.0f}) | "
                 f"{tb['accuracy_clean_validation_mean']:.3f} / "
                 f"{tg['accuracy_clean_validation_mean']:.3f} | {fmt_sil(ao['all_saved'])} | "
                 f"{fmt_dist(ao['all_saved'])} | {fmt_sil(ao['converged_only'])} | "
                 f"{fmt_sil(at['all_saved'])} | {fmt_bal(ao['all_saved'])} / "
                 f"{fmt_bal(at['all_saved'])} |")
    shared = [f"{name} shares {n} BPTT and {cells[name]['training']['ga']['shared_with'][o]} "
              f"GA networks with {o}"
              for name in cells for o, n in
              cells[name]["training"]["bptt"].get("shared_with", {}).items()]
    L += ["", "Planned networks per cell: 24 BPTT + 24 GA; a cell with fewer saved is still "
          "training (see `python experiments/protocol.py --list`). "
          + (("; ".join(shared) + " (networks that reached the stop rule in fewer updates "
              "than the stall window, 500, before any budget or stall rule could act, so "
              "the same seed trains the same network under both protocols). ") if shared
             else "") + "Noise floor of the "
          "original analysis (a network against itself under a second draw of the random "
          "starts), mean: " + ", ".join(f"{n} {c['analyses']['original']['noise_floor_mean']:.4f}"
                                        for n, c in cells.items()) + ".", ""]
    paired = [(n, c) for n, c in cells.items() if "vs_original" in c]
    if paired:
        L += ["### Paired: each cell against *original*, seed by seed", "",
              "Every cell trains the same seeds, so a seed's network in two cells differs "
              "only in the protocol. Balanced silhouette of the cell minus that of "
              "*original*, over the seeds both cells have, with a 95% paired bootstrap "
              "interval (seeds resampled once, both cells scored on them) and a two-sided "
              "bootstrap p. A behaviour carries the separation when removing it gives a "
              "clearly negative difference.", "",
              "| cell | seeds BPTT + GA | original analysis: cell − original | "
              "tool analysis: cell − original |", "|---|---|---|---|"]
        for n, c in paired:
            v = c["vs_original"]
            L.append(f"| {n} | {v['seeds'][0]} + {v['seeds'][1]} | "
                     f"{fmt_diff(v.get('original'))} | {fmt_diff(v.get('tool'))} |")
        L.append("")
    walls = {n: sum(c["training"][r].get("train_wall_s", 0.0) for r in ("bptt", "ga"))
             for n, c in cells.items()}
    if any(walls.values()):
        devices = {n: sorted({d for r in ("bptt", "ga")
                              for d in c["training"][r].get("train_devices", [])})
                   for n, c in cells.items()}
        per = [f"{n} {fmt_duration(w)}" + (f" ({', '.join(devices[n])})" if devices[n] else "")
               for n, w in walls.items() if w]
        L += ["Training time, the sum of the batched runs' wall times (on a CPU BPTT 8 and "
              "GA 2 networks per run, on a GPU a whole cell per run; on the machines that "
              "trained them, devices in brackets): " + ", ".join(per)
              + f"; {fmt_duration(sum(walls.values()))} in all.", ""]
    L += ["## Does the answer depend on the metric?", "",
          "BPTT against GA under each metric of `similarity_analysis.py` (this tool's "
          "activity: x from 0, 10 levels per context; all saved networks): balanced "
          "silhouette [95% CI], permutation p.", "",
          "| cell | " + " | ".join(metric_label(m, dsa_score="wasserstein") for m in METRICS) + " |",
          "|---" * (len(METRICS) + 1) + "|"]
    for name, c in cells.items():
        if "metrics" not in c:
            continue
        L.append(f"| {name} | " + " | ".join(fmt_bal(c["metrics"].get(m)) for m in METRICS)
                 + " |")
    L.append("")
    if "n1-original" in cells and ref:
        c = cells["n1-original"]
        x = c["analyses"]["original"]["all_saved"]
        r1 = ref[1] if 1 in ref else ref.get("1")
        L += ["## N = 1 like for like", "",
              "| | networks BPTT + GA | silhouette [95% CI], p | within BPTT / within GA / "
              "between |", "|---|---|---|---|",
              f"| reference (original code) | {r1['n'][0]} + {r1['n'][1]} | {fmt_sil(r1)} | "
              f"{fmt_dist(r1)} |",
              f"| this tool, original protocol and analysis | {x['n'][0]} + {x['n'][1]} | "
              f"{fmt_sil(x)} | {fmt_dist(x)} |", ""]
    return "\n".join(L) + "\n"
