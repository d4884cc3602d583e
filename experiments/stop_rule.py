#!/usr/bin/env python
"""STOP_RULE.md: do flip-flop networks that stopped before holding every memory
hold them when trained on?

The stop rule ends training at a 0.9 validation score.  On the 3-bit
flip-flop some GRUs and LSTMs of the universality grid reached it holding 6
or 7 of the 8 bit patterns (UNIVERSALITY.md).  Their seeds, and neighbours
that held all 8 as controls, are trained again past the stop rule for a fixed
number of updates with a snapshot on the way (train_models.py's --updates and
--snapshots; the same seed gives the same network up to the stop rule):

    M=experiments/networks/stoprule
    python train_models.py flipflop-bptt-gru-v000-clean-u600_s40003 -v 0 --task flipflop \\
        --arch gru --protocol clean --count 4 --seed 40003 --updates 600 --snapshots 300 \\
        --models-dir $M
    python train_models.py flipflop-bptt-lstm-v000-clean-u600_s40004 -v 0 --task flipflop \\
        --arch lstm --protocol clean --count 2 --seed 40004 --updates 600 --snapshots 300 \\
        --models-dir $M
    python train_models.py flipflop-bptt-lstm-v000-clean-u600_s40001 -v 0 --task flipflop \\
        --arch lstm --protocol clean --count 1 --seed 40001 --updates 600 --snapshots 300 \\
        --models-dir $M
    python train_models.py flipflop-ga-vanilla-v000-clean-u1000_s40006 -v 0 --task flipflop \\
        --rule ga --arch vanilla --protocol clean --count 2 --seed 40006 --updates 1000 \\
        --snapshots 450 700 --models-dir $M
    python train_models.py flipflop-bptt-vanilla-v000-clean-u600_s40000 -v 0 --task flipflop \\
        --arch vanilla --protocol clean --count 8 --seed 40000 --updates 600 --snapshots 300 \\
        --models-dir $M
    python -m experiments.stop_rule

The GA's vanilla RNNs of seeds 40006-40007 are among those whose topology
differs most from BPTT's (many saddles with 3 or more unstable directions;
memories held on moving orbits): does that go with training past the stop rule?
The 8 BPTT vanilla RNNs trained on beside them are the same architecture's control.

For each network, at the stop rule (the universality grid's network of the
same seed, architecture, rule and task) and at each later update saved: the
validation score, the memories held from behaviour (each pattern pulsed once,
then 2000 steps of zero input: tasks.flipflop.FlipFlopTask.memories_held), those
of them held on a moving orbit rather than at a fixed point
(FlipFlopTask.orbits_and_states), the stable fixed points' corners and the
saddles by their unstable directions (rnn.analysis.compare.flipflop_descriptor).
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from rnn.cli import Parser, run_cli

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "experiments" / "networks" / "stoprule"
REFERENCE = ROOT / "experiments" / "networks" / "universality"
SNAPSHOT = re.compile(r"_u(\d{4,})$")


def build_parser() -> Parser:
    p = Parser(prog="python -m experiments.stop_rule", description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", default=str(MODELS), metavar="DIR",
                   help="the networks trained past the stop rule (default "
                        "experiments/networks/stoprule)")
    p.add_argument("--reference-dir", default=str(REFERENCE), metavar="DIR",
                   help="where the networks of the same seeds that stopped at the stop rule "
                        "are (default: the universality grid's folder)")
    p.add_argument("--out", default=str(ROOT / "experiments" / "results"), metavar="DIR",
                   help="where STOP_RULE.md and stop_rule.json go")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def records(folder: Path) -> list[dict]:
    """The finished flip-flop networks' records (NAME.json) of a folder."""
    out = []
    for js in sorted(Path(folder).glob("*.json")):
        try:
            meta = json.loads(js.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or meta.get("status") in (None, "in_progress"):
            continue
        task = meta.get("task") or {}
        if isinstance(task, dict) and task.get("name") == "flipflop" and \
                js.with_suffix(".pt").is_file():
            out.append({**meta, "name": js.stem})
    return out


def arch_of(meta: dict) -> str:
    return (meta.get("network") or {}).get("arch") or "rate"


def measure(name: str, folder: Path) -> dict:
    """Score, memories held, stable corners, saddles and recurrent weights
    (experiments.universality.recurrent_weights) of one saved network."""
    from rnn.analysis.compare import flipflop_descriptor
    from rnn.analysis.dynamics import cached_fixed_points
    from rnn.io import load_model
    from experiments.universality import recurrent_weights
    lm = load_model(name, folder)
    fp, _, _ = cached_fixed_points(lm.model, lm.task, lm.name, "small", folder)
    v, _ = flipflop_descriptor(fp, lm.model)
    periods, _ = lm.task.orbits_and_states(lm.model)
    norm, outside, *_ = recurrent_weights(lm.model)
    return {"name": name, "update": int(lm.meta.get("steps") or 0),
            "weights": norm, "outside": outside,
            "score": float(lm.meta.get("final_accuracy") or float("nan")),
            "held": sum(p != 0 for p in periods),
            "moving": sum(p not in (0, 1) for p in periods),
            "stable": 0 if v is None else int(v[0]), "corners": 0 if v is None else int(v[1]),
            "saddles": [0, 0, 0] if v is None else [int(x) for x in v[2:]]}


def collect(models: Path, reference: Path, log) -> list[dict]:
    """One row per network trained past the stop rule: its arch, rule and seed, then
    its measures at the stop rule and at each saved update, in update order."""
    from rnn.errors import UserError
    refs = {(arch_of(m), m.get("rule"), int(m["seed"])): m["name"]
            for m in records(reference) if m.get("status") == "converged"}
    mine = records(models)
    rows = []
    for m in mine:
        if SNAPSHOT.search(m["name"]) or not m.get("fixed_updates"):
            continue
        arch, rule, seed = arch_of(m), m.get("rule"), int(m["seed"])
        log(f"{m['name']} ({arch}, {rule}, seed {seed})")
        points = []
        if (arch, rule, seed) in refs:
            points.append({**measure(refs[(arch, rule, seed)], reference), "when": "stop rule"})
        for s in sorted((x for x in mine if x["name"].startswith(m["name"] + "_u")),
                        key=lambda x: x["name"]):
            points.append({**measure(s["name"], models), "when": "snapshot"})
        points.append({**measure(m["name"], models), "when": "end"})
        rows.append({"arch": arch, "rule": rule, "seed": seed, "points": points})
    if not rows:
        raise UserError(f"no flip-flop network trained with --updates in {models}: train them "
                        f"first (the commands are in experiments/stop_rule.py's docstring)")
    return rows


def write_markdown(path: Path, rows: list[dict], wall: float) -> None:
    from rnn.io import atomic_write_text
    L = ["# The stop rule and the flip-flop's memories", "",
         f"Generated by `python -m experiments.stop_rule` in {wall:.0f} s. Each network is "
         "shown at the stop rule (the universality grid's network of the same seed, "
         "architecture and rule: training ended at a 0.9 validation score) and after each "
         "later update saved by a run of that seed past the stop rule (`--updates`, "
         "`--snapshots`). *Held*: patterns of the 8 whose output signs last 2000 steps of "
         "zero input after one pulse; *moving*: those of them held on a moving orbit, not at "
         "a fixed point; *stable corners*: distinct output sign patterns at the stable fixed "
         "points (of how many stable points); *saddles*: fixed points with 1, 2, 3 or more "
         "unstable directions (three independent bistable units, the hand-built flip-flop, "
         "have 12, 6, 1); *recurrent weights*: their Frobenius norm, and for a vanilla RNN "
         "(in brackets) how many eigenvalues of W_hh lie outside the unit circle.", "",
         "| architecture | rule | seed | update | validation score | memories held (moving) "
         "| stable corners (stable points) | saddles | recurrent weights |",
         "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for p in r["points"]:
            L.append(f"| {r['arch']} | {r['rule']} | {r['seed']} | {p['update']}"
                     f"{' (stop rule)' if p['when'] == 'stop rule' else ''} | {p['score']:.3f} "
                     f"| {p['held']} ({p['moving']}) | {p['corners']} ({p['stable']}) | "
                     + ", ".join(map(str, p["saddles"])) + f" | {p['weights']:.2f}"
                     + ("" if p["outside"] is None else f" ({p['outside']})") + " |")
    L.append("")
    for rule in sorted({r["rule"] for r in rows}, key=str):
        for when, label in (("stop rule", "at the stop rule"), ("end", "at the end")):
            pts = [p for r in rows if r["rule"] == rule for p in r["points"] if p["when"] == when]
            if pts:
                L.append(f"{str(rule).upper()}, holding all 8 {label}: "
                         f"{sum(p['held'] == 8 for p in pts)} of {len(pts)} networks; the "
                         f"stable corners (with the moving memories) are the memories held "
                         f"in {sum(p['held'] == p['corners'] + p['moving'] for p in pts)} of "
                         f"{len(pts)}; with a memory held on a moving orbit: "
                         f"{sum(p['moving'] > 0 for p in pts)}.")
    atomic_write_text(path, "\n".join(L) + "\n")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    t0 = time.time()
    rows = collect(Path(args.models_dir), Path(args.reference_dir), log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wall = round(time.time() - t0, 1)
    write_markdown(out / "STOP_RULE.md", rows, wall)
    from rnn.io import atomic_write_text
    atomic_write_text(out / "stop_rule.json", json.dumps(
        {"wall_seconds": wall, "networks": rows}, indent=1) + "\n")
    print(f"wrote {out / 'STOP_RULE.md'}\nwrote {out / 'stop_rule.json'}")
    return 0


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
