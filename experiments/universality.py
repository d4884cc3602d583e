#!/usr/bin/env python
"""UNIVERSALITY.md: the architecture as a second axis beside the learning rule.

    python run_grid.py experiments/grids/universality.toml --workers 1 --threads 1   # train
    python -m experiments.universality                                            # report

Maheswaranathan et al. (NeurIPS 2019) trained vanilla RNNs, GRUs, LSTMs and
UGRNNs on the 3-bit flip-flop and on context-dependent integration and found
the representational geometry (SVCCA) clustered by architecture while the
fixed-point topology was universal.  This script asks the same of the
networks of ``universality.toml`` — the rate network, a vanilla RNN, a GRU
and an LSTM, each trained by BPTT and by the GA — and of the learning rule
beside it.  Per task, over the networks that reached the stop rule:

* the share with the expected fixed points: on the flip-flop, 8 stable points
  holding the 8 bit patterns; on CDI, one stable point per static input (a
  line of points along the input: the line attractor);
* for the attractor topology and every representational metric, the
  silhouette of the architecture as the label and of the rule as the label
  (95% bootstrap interval, permutation p), and the leave-one-out
  identification accuracy of each label (the nearest other network's label),
  against its chance: sum over labels of n_c (n_c − 1) / (n (n − 1)), the
  accuracy of labels drawn at random in the same proportions;
* on CDI, the rule as the label among the six rules on the rate network.

Networks and caches are those of the grid's models folder; the report goes to
experiments/results/UNIVERSALITY.md (and universality.json), with two figures
beside it: universality_mds.png (each metric's MDS of the networks, coloured
by architecture, marked by rule) and universality_silhouettes.png (every
silhouette with its interval).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from rnn.cli import Parser, run_cli

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "experiments" / "grids" / "universality.toml"
METRICS = ["topology", "svcca", "pwcca", "cka", "procrustes"]
EXPECTED = {"flipflop": "8 stable points holding the 8 bit patterns",
            "cdi": "one stable point per static input (a line attractor)"}
THEIRS = ("Maheswaranathan et al. 2019 (vanilla, GRU, LSTM, UGRNN; BPTT): SVCCA clusters "
          "the networks by architecture; the fixed-point topology is the same in every "
          "architecture (8 stable points on the flip-flop, a line attractor on CDI).")


def build_parser() -> Parser:
    p = Parser(prog="python -m experiments.universality", description=__doc__.splitlines()[0])
    p.add_argument("--grid", default=str(GRID), help="the grid file (default: universality.toml)")
    p.add_argument("--models-dir", default=None, metavar="DIR",
                   help="the grid's models folder (default: the grid file's models_dir)")
    p.add_argument("--out", default=str(ROOT / "experiments" / "results"), metavar="DIR",
                   help="where UNIVERSALITY.md and universality.json go")
    p.add_argument("--metrics", nargs="+", default=METRICS,
                   help=f"topology and the metrics of the metric table (default: "
                        f"{' '.join(METRICS)})")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                   help="bootstrap resamples and permutations per silhouette (default 1000)")
    p.add_argument("--include-budget", action="store_true",
                   help="also analyse the networks that ended at their rule's budget without "
                        "reaching the stop rule (the GA's 2000 generations), as PAPER.md's "
                        "secondary reading does; the report says so in its first line")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def converged(grid, models_dir, statuses=("converged",)) -> dict[str, list[tuple]]:
    """Per task, (folder, record, architecture, rule) of every network whose status
    is one of ``statuses`` (default: those that reached the stop rule)."""
    from rnn.grid.jobs import networks
    folder = grid.folder(models_dir)
    out: dict[str, list[tuple]] = {}
    for c in grid.cells:
        for where, meta in networks(folder, c, statuses=statuses):
            out.setdefault(c.task_name.spelling, []).append((where, meta, c.arch or "rate",
                                                             c.rule))
    return out


def cell_census(grid, models_dir) -> list[dict]:
    """Every cell of the grid: its networks trained, converged and ended otherwise
    (budget, stalled, diverged), against the cell's target, and what the rest
    would take (rnn.grid.jobs.remaining)."""
    from rnn.grid.jobs import networks, remaining
    folder = grid.folder(models_dir)
    rows = []
    for c in grid.cells:
        done = [m for _, m in networks(folder, c)]
        rest = [m for m in done if m.get("status") != "converged"]
        st = [str(m.get("status")) for m in rest]
        acc = [float(m["final_accuracy"]) for m in rest
               if isinstance(m.get("final_accuracy"), (int, float))]
        left = remaining(folder, c)
        rows.append({"cell": c.key, "task": c.task_name.spelling, "arch": c.arch or "rate",
                     "rule": c.rule, "target": c.networks, "trained": len(done),
                     "converged": len(done) - len(rest), "other": len(rest),
                     "ended": {k: st.count(k) for k in sorted(set(st))},
                     "other_accuracy": [min(acc), max(acc)] if acc else None,
                     "hours_left": left.hours, "left": left.describe()})
    return rows


def ended_otherwise(row: dict) -> str:
    """The grid table's cell for the networks that did not reach the stop rule: how
    many, how each ended and their final accuracies, e.g. '4 (4 budget; final
    accuracy 0.681–0.894)'."""
    if not row["other"]:
        return "0"
    how = ", ".join(f"{n} {s}" for s, n in row["ended"].items())
    acc = row["other_accuracy"]
    if acc is not None:
        lo, hi = f"{acc[0]:.3f}", f"{acc[1]:.3f}"
        how += f"; final accuracy {lo if lo == hi else lo + '–' + hi}"
    return f"{row['other']} ({how})"


def identification(D: np.ndarray, labels: list[str]) -> tuple[float, float]:
    """Leave-one-out nearest-neighbour identification accuracy of ``labels`` on the
    distances D (nearest neighbours at equal distance share the vote: the accuracy
    of breaking the tie at random), and its chance: sum_c n_c (n_c − 1) / (n (n − 1))."""
    D = np.array(D, dtype=np.float64)
    np.fill_diagonal(D, np.inf)
    lab = np.asarray(labels)
    nearest = D == D.min(axis=1, keepdims=True)
    acc = float(np.mean([np.mean(lab[row] == lab[i]) for i, row in enumerate(nearest)]))
    n = len(lab)
    counts = np.array([np.sum(lab == c) for c in np.unique(lab)])
    return acc, float((counts * (counts - 1)).sum() / (n * (n - 1)))


def expected_share(task: str, models) -> tuple[list[bool], list, int]:
    """Whether each network has the expected fixed points; and per network, on
    the flip-flop (stable corners, memories held for 2000 steps): the fixed
    points against the behaviour they should explain; on a decision task its
    census kind (monostable, bistable, mixed: rnn.analysis.census).  Last, how
    many networks' fixed points were solved now (the others read from cache)."""
    from rnn.analysis.census import census
    from rnn.analysis.compare import flipflop_descriptor
    from rnn.analysis.dynamics import cached_fixed_points, orbit_origin
    hits, checks, solved = [], [], 0
    for lm in models:
        fp, now, _ = cached_fixed_points(lm.model, lm.task, lm.name, "small", lm.path.parent)
        solved += now
        if task == "flipflop":
            v, _ = flipflop_descriptor(fp, lm.model)
            hits.append(bool(v is not None and v[0] == 8 and v[1] == 8))
            corners = 0 if v is None else int(min(v[0], v[1]))
            orbits, x = lm.task.orbits_and_states(lm.model)
            lam = lm.task.memory_exponents(lm.model, x, orbits)
            moving = [None if v is None else
                      {"exponent": v, "origin": orbit_origin(fp, x[:, k].numpy(),
                                                             lm.model.dt).as_dict()}
                      for k, v in enumerate(lam)]
            checks.append((corners, sum(o != 0 for o in orbits), orbits, moving,
                           None if v is None else v.astype(int).tolist()))
        else:
            c = census(fp, len(lm.task.static_inputs("small").values))
            hits.append(c.kind == "monostable")
            checks.append(c.kind)
    return hits, checks, solved


def lag_profile(lm) -> dict:
    """tasks.flipflop.FlipFlopTask.score_by_lag of a trained network on its own
    validation set (the stop rule's trials, drawn from its seed), so that the
    overall score is the one its NAME.json records."""
    from rnn.training import ValidationSet
    vs = ValidationSet.make(lm.task, [int(lm.meta["seed"])], lm.model.hidden, lm.model.device)
    return lm.task.score_by_lag(lm.model, vs.trials, vs.x0)


def lag_summary(profiles: list[dict], labels: list[str]) -> dict:
    """Per label (architecture/rule), over its networks: the overall score and each
    bin's score as [mean, min, max]; and each bin's mean share of the held pairs."""
    def spread(xs):
        return spread_of(xs, np.mean)
    bins = [[b["from"], b["to"]] for b in profiles[0]["bins"]]
    by = {}
    for lab in sorted(set(labels)):
        ps = [p for p, x in zip(profiles, labels) if x == lab]
        by[lab] = {"networks": len(ps), "score": spread([p["score"] for p in ps]),
                   "bins": [spread([p["bins"][i]["score"] for p in ps])
                            for i in range(len(bins))],
                   "crosstalk": {k: spread([p["crosstalk"][k]["score"] for p in ps])
                                 for k in ("near", "far")}}
    share = [float(np.mean([p["bins"][i]["share"] for p in profiles])) for i in range(len(bins))]
    c = profiles[0]["crosstalk"]
    cross = {"after": c["after"], "within": c["within"],
             "share": {k: float(np.mean([p["crosstalk"][k]["share"] for p in profiles]))
                       for k in ("near", "far")}}
    return {"bins": bins, "share": share, "crosstalk": cross, "by": by}


def lag_table(lag: dict) -> list[str]:
    """UNIVERSALITY.md's table of where each cell's flip-flop errors lie."""
    from tasks.flipflop import lag_label

    def cell(x):
        return "–" if x is None else f"{x[0]:.3f} [{x[1]:.3f}, {x[2]:.3f}]"
    c = lag["crosstalk"]
    heads = [f"{lag_label(lo, hi)} steps ({100 * sh:.0f}%)"
             for (lo, hi), sh in zip(lag["bins"], lag["share"])]
    heads += [f"{c['after']}+, another bit pulsed ({100 * c['share']['near']:.0f}%)",
              f"{c['after']}+, none did ({100 * c['share']['far']:.0f}%)"]
    L = ["Where the errors lie (tasks.flipflop.FlipFlopTask.score_by_lag, on each network's "
         "own 2000 validation trials, whose score over every held step is the one its stop "
         "rule read): the score of the held (step, bit) pairs by the steps since that bit's "
         "last pulse ended (in brackets, the bin's share of the held pairs); mean [min, max] "
         "over the cell's networks. About half the pulses repeat the held sign, so a network "
         "that has not flipped yet scores about 0.5 in a bin. The last two columns split the "
         f"{c['after']}+ bin by whether another bit pulsed within {c['within']} steps (its "
         "pulse under way or ended at most that long before): what a pulse on one channel "
         "costs the memories of the others.", "",
         "| architecture/rule | networks | every held step | " + " | ".join(heads) + " |",
         "|---|---|---|" + "---|" * len(heads)]
    L += [f"| {k} | {v['networks']} | {cell(v['score'])} | "
          + " | ".join(cell(b) for b in v["bins"]) + " | "
          + " | ".join(cell(v["crosstalk"][x]) for x in ("near", "far")) + " |"
          for k, v in lag["by"].items()]
    return L


# The topology of three independent bistable units: the hand-built flip-flop of
# every architecture (tests/test_flipflop.py), 8 stable corners and 12, 6, 1 saddles.
HAND_BUILT = [8, 8, 12, 6, 1]
DESCRIPTOR_PARTS = ["stable points", "corners", "saddles, 1 unstable direction",
                    "2 unstable directions", "3 or more"]


def descriptor_summary(descs: list, labels: list[str]) -> dict:
    """Per label (architecture/rule), over its networks' flip-flop topology
    descriptors (rnn.analysis.compare.flipflop_descriptor; None: no fixed point):
    each entry's median, min and max, and how many equal the hand-built one."""
    by = {}
    for lab in sorted(set(labels)):
        ds = [d for d, x in zip(descs, labels) if x == lab]
        got = np.array([d for d in ds if d is not None], dtype=np.float64).reshape(-1, 5)
        by[lab] = {"networks": len(ds), "none": len(ds) - len(got),
                   "median": np.median(got, axis=0).tolist() if len(got) else None,
                   "min": got.min(axis=0).astype(int).tolist() if len(got) else None,
                   "max": got.max(axis=0).astype(int).tolist() if len(got) else None,
                   "hand_built": int(sum(d == HAND_BUILT for d in ds))}
    return {"parts": DESCRIPTOR_PARTS, "hand_built": HAND_BUILT, "by": by}


def descriptor_table(desc: dict) -> list[str]:
    """UNIVERSALITY.md's table of each cell's flip-flop topology descriptors."""
    def cell(v, k):
        if v["median"] is None:
            return "–"
        m = v["median"][k]
        return f"{m:g} [{v['min'][k]}, {v['max'][k]}]"
    hb = ", ".join(str(x) for x in desc["hand_built"])
    L = ["The topology each network has at the zero input (the flip-flop's topology "
         "descriptor, rnn.analysis.compare.flipflop_descriptor: its stable points, their "
         "corners, its saddles by their unstable directions); median [min, max] over the "
         "cell's networks. Three independent bistable units, the hand-built flip-flop of "
         f"every architecture, have [{hb}].", "",
         "| architecture/rule | networks | " + " | ".join(desc["parts"])
         + f" | equal to [{hb}] |", "|---|---|" + "---|" * (len(desc["parts"]) + 1)]
    L += [f"| {k} | {v['networks']} | " + " | ".join(cell(v, i) for i in range(5))
          + f" | {v['hand_built']} |" for k, v in desc["by"].items()]
    return L


WEIGHT_PARTS = ("norm", "outside", "jacobian", "radius")   # recurrent_weights' four numbers


def spread_of(xs, centre) -> list[float] | None:
    """[centre, min, max] of the numbers in ``xs`` that are not None (None if none)."""
    xs = [x for x in xs if x is not None]
    return [float(centre(xs)), float(min(xs)), float(max(xs))] if xs else None


def recurrent_weights(model) -> tuple[float, int | None, int | None, float | None]:
    """One network's (P = 1) recurrent weights: their Frobenius norm (the rate
    network's W_rec; a cell's weight_hh, every gate's block); for a vanilla RNN
    how many eigenvalues of W_hh lie outside the unit circle (the directions
    that the linear part of its step, h <- tanh(W_hh h + ...), expands); for
    every discrete-time network how many eigenvalues of its step's Jacobian at
    the zero state and input (CellRNN.step_map) lie outside it: what the gates
    leave of W_hh there; and for the networks with one recurrent matrix W (rate,
    vanilla) its spectral radius over the circular law's for its norm,
    ||W||_F / sqrt(n): about 1 for a matrix of independent entries (a random
    walk of mutations), above 1 where a few eigenvalues stand out of the bulk
    (structure).  None where a measure does not apply."""
    import torch
    arch = getattr(model, "arch", "rate")
    W = (model.W_rec if arch == "rate" else model.weight_hh)[0].detach().double().cpu()
    norm = float(W.norm())
    eig = torch.linalg.eigvals(W).abs() if arch in ("rate", "vanilla") else None
    radius = None if eig is None else float(eig.max()) * W.shape[0] ** 0.5 / norm
    if arch == "rate":
        return norm, None, None, radius
    outside = int((eig > 1.0).sum()) if arch == "vanilla" else None
    step = model.step_map(0)
    zero = torch.zeros(1, model.hidden, dtype=torch.float64)
    J = step.jacobian(zero, torch.zeros(1, model.n_inputs, dtype=torch.float64))[0].cpu()
    return norm, outside, int((torch.linalg.eigvals(J).abs() > 1.0).sum()), radius


def weight_summary(models, labels: list[str]) -> dict:
    """Per label (architecture/rule): each network's recurrent_weights as median
    [min, max]; and per architecture the same of fresh networks from the same
    seeds (rnn.arch.init_network, one network a seed: BPTT's initial network,
    the first member of the GA's initial population)."""
    from rnn.arch import init_network
    from rnn.rng import WEIGHTS, Streams
    vals = [recurrent_weights(lm.model) for lm in models]

    def summary(rows) -> dict:
        return {"networks": len(rows), **{k: spread_of([r[i] for r in rows], np.median)
                                         for i, k in enumerate(WEIGHT_PARTS)}}
    by = {lab: summary([v for v, x in zip(vals, labels) if x == lab])
          for lab in sorted(set(labels))}
    init = {}
    for arch in sorted({lab.split("/")[0] for lab in labels}):
        mine = [lm for lm, x in zip(models, labels) if x.split("/")[0] == arch]
        m = mine[0].model
        size = m.hidden if arch == "rate" else m.units
        fresh = [recurrent_weights(init_network(arch, Streams([sd], WEIGHTS), m.n_inputs,
                                                hidden=size))
                 for sd in sorted({int(lm.meta["seed"]) for lm in mine})]
        init[arch] = summary(fresh)
    return {"by": by, "init": init}


def weight_table(w: dict) -> list[str]:
    """UNIVERSALITY.md's table of the recurrent weights, trained and at initialisation."""
    def norm(x):
        return "–" if x is None else f"{x[0]:.2f} [{x[1]:.2f}, {x[2]:.2f}]"

    def count(x):
        return "–" if x is None else f"{x[0]:g} [{x[1]:.0f}, {x[2]:.0f}]"
    L = ["The recurrent weights (median [min, max]): their Frobenius norm (the rate "
         "network's W_rec, a cell's W_hh with every gate's block), and for the vanilla RNN "
         "the eigenvalues of W_hh outside the unit circle, the directions the linear part of "
         "its step expands; for every discrete-time network the eigenvalues of its step's "
         "Jacobian at the zero state and input outside the unit circle (CellRNN.step_map), "
         "what its gates leave of W_hh there; for the networks with one recurrent matrix W "
         "(rate, vanilla) its spectral radius over the circular law's for its norm, ‖W‖/√n: "
         "about 1 for a matrix of independent entries, above 1 where eigenvalues stand out of "
         "the random bulk. The initial rows are fresh networks from the same seeds "
         "(rnn.arch.init_network). The GA adds a random mutation to every weight at every "
         "generation; BPTT moves the weights only along the loss's gradient.", "",
         "| architecture/rule | networks | norm of the recurrent weights | eigenvalues of W_hh "
         "outside the unit circle | eigenvalues of the step's Jacobian at the zero state "
         "outside the unit circle | spectral radius over ‖W‖/√n |", "|---|---|---|---|---|---|"]
    rows = list(w["by"].items()) + [(f"{a}, at initialisation", v) for a, v in w["init"].items()]
    L += [f"| {k} | {v['networks']} | {norm(v['norm'])} | {count(v['outside'])} | "
          f"{count(v['jacobian'])} | {norm(v['radius'])} |"
          for k, v in sorted(rows, key=lambda t: t[0])]
    return L


def exponents_line(away: dict) -> str:
    """The moving memories' largest Lyapunov exponents, by what they say of the orbit."""
    from rnn.analysis.dynamics import LYAPUNOV_ZERO
    parts = []
    for kind in ("contracting", "quasi-periodic", "chaotic"):
        es = [e for e in away["exponents"] if e["kind"] == kind]
        if es:
            vals = ", ".join(f"{e['exponent']:+.2g}" + (f" (period {e['period']})"
                                                        if e["period"] > 1 else " (no period)")
                             for e in es)
            parts.append(f"{len(es)} {kind}: {vals}")
    none = [k for k in ("contracting", "quasi-periodic", "chaotic")
            if not any(e["kind"] == k for e in away["exponents"])]
    return (f"Their largest Lyapunov exponents per step over {away['lyapunov_steps']} steps of "
            f"zero input (rnn.analysis.dynamics.largest_lyapunov; |λ| · steps < "
            f"{LYAPUNOV_ZERO:g} counts as 0): " + "; ".join(parts) + "."
            + (f" None is {' or '.join(none)}." if none else ""))


def origins_table(away: dict) -> list[str]:
    """Each moving memory beside the fixed point nearest its centroid
    (rnn.analysis.dynamics.orbit_origin): the orbit's turn per step against
    the angle of that point's leading eigenvalue."""
    from tasks.flipflop import pattern_signs
    L = ["Each moving memory beside the fixed point nearest its centroid (rnn.analysis."
         "dynamics.orbit_origin; μ: that point's leading eigenvalue of the step map; the "
         "pattern as the signs of bits 1, 2, 3):", "",
         "| network | pattern | period | λ per step | orbit: radius, turn per step, variance "
         "in 2 PCs | fixed point: distance, unstable directions, modulus and angle of μ |",
         "|---|---|---|---|---|---|"]
    for e in away["exponents"]:
        o = e["origin"]
        signs = pattern_signs(e["pattern"])
        L.append(f"| {e['network']} | {signs} | {e['period'] if e['period'] > 0 else 'none'} "
                 f"| {e['exponent']:+.2g} | {o['radius']:.3f}, {o['turn']:.3f} rad, "
                 f"{100 * o['planar']:.1f}% | {o['distance']:.3f}, {o['n_unstable']}, "
                 f"{o['modulus']:.4f}, {o['angle']:.3f} rad |")
    return L


def labelled(D: np.ndarray, kept: list[int], labels: list[str], n_boot: int) -> dict:
    """Silhouette (interval, p) and identification of ``labels`` on D (over ``kept``)."""
    from rnn.analysis.compare import silhouette_stats
    lab = [labels[i] for i in kept]
    order = sorted(set(lab))
    if len(order) < 2 or min(lab.count(g) for g in order) < 2:
        return {"silhouette": None, "n": len(lab), "groups": {g: lab.count(g) for g in order},
                "why": "fewer than two labels with two networks each"}
    s = silhouette_stats(D, [order.index(x) for x in lab], n_boot, n_boot)
    acc, chance = identification(D, lab)
    return {**s.summary(), "identification": acc, "chance": chance, "n": len(lab),
            "groups": {g: lab.count(g) for g in order}}


def within(D: np.ndarray, kept: list[int], labels: list[str], strata: list[str],
           n_boot: int) -> dict[str, dict]:
    """``labels`` as the label among the networks of one level of ``strata`` at a time
    (the other factor held fixed): {level: :func:`labelled` on those networks' rows and
    columns of D (over ``kept``)}, for every level with a network."""
    D = np.asarray(D)
    out = {}
    for level in sorted({strata[i] for i in kept}):
        pos = [j for j, i in enumerate(kept) if strata[i] == level]
        out[level] = labelled(D[np.ix_(pos, pos)], [kept[j] for j in pos], labels, n_boot)
    return out


def analyse_task(task: str, entries: list[tuple], metrics: list[str], n_boot: int,
                 cache_dir: Path, log, panels: dict | None = None) -> dict:
    """The task's section of the report; ``panels`` (when given) gets, per metric, what
    its figure draws: (MDS embedding, architectures, rules, the metric's result)."""
    from rnn.analysis.compare import cluster_distances, compare_groups
    from rnn.io import load_model
    two = [e for e in entries if e[3] in ("bptt", "ga")]
    res = {"networks": {f"{a}/{r}": sum(1 for e in two if (e[2], e[3]) == (a, r))
                        for a in sorted({e[2] for e in two}) for r in ("bptt", "ga")}}
    if len({e[2] for e in two}) < 2 and len({e[3] for e in two}) < 2:
        res["skipped"] = "fewer than two architectures and two rules trained"
        return res
    models = [load_model(m["name"], where) for where, m, _, _ in two]
    archs, rules = [e[2] for e in two], [e[3].upper() for e in two]
    hits, checks, res["solved_now"] = expected_share(task, models)
    res["analysed"] = len(models)
    from rnn.analysis.census import KINDS
    flip = task == "flipflop"
    by: dict[str, list[int]] = {}
    held: dict[str, list[int]] = {}
    away: dict[str, int] = {}          # networks holding a memory away from a fixed point
    kinds: dict[str, dict[str, int]] = {}
    for i, (a, r) in sorted(enumerate(zip(archs, rules)), key=lambda t: t[1]):
        k = by.setdefault(f"{a}/{r.lower()}", [0, 0])
        k[0], k[1] = k[0] + hits[i], k[1] + 1
        if flip:
            k = held.setdefault(f"{a}/{r.lower()}", [0, 0])
            k[0], k[1] = k[0] + (checks[i][1] == 8), k[1] + 1
            if any(o not in (0, 1) for o in checks[i][2]):
                away[f"{a}/{r.lower()}"] = away.get(f"{a}/{r.lower()}", 0) + 1
        else:
            k = kinds.setdefault(f"{a}/{r.lower()}", dict.fromkeys(KINDS, 0))
            k[checks[i]] += 1
    res["expected"] = {"what": EXPECTED.get(task, "?"), "networks": sum(hits), "of": len(hits),
                       "by": by}
    if not flip:
        res["census"] = kinds
    if flip:
        from rnn.analysis.dynamics import LYAPUNOV_STEPS, exponent_kind
        periods = [o for _, _, orb, _, _ in checks for o in orb if o not in (0, 1)]
        exps = [{"network": lm.name, "pattern": k, "period": p, "exponent": v["exponent"],
                 "kind": exponent_kind(v["exponent"]), "origin": v["origin"]}
                for lm, (_, _, orb, mov, _) in zip(models, checks)
                for k, (p, v) in enumerate(zip(orb, mov)) if v is not None]
        group_of = [f"{a}/{r.lower()}" for a, r in zip(archs, rules)]
        res["lag"] = lag_summary([lag_profile(lm) for lm in models], group_of)
        res["descriptor"] = descriptor_summary([c[4] for c in checks], group_of)
        res["held"] = {"all8": sum(h == 8 for _, h, *_ in checks), "of": len(checks),
                       "by": held, "agree": sum(c == h for c, h, *_ in checks),
                       "away": {"networks": sum(away.values()), "patterns": len(periods),
                                "by": away, "periods": {str(p): periods.count(p)
                                                        for p in sorted(set(periods))},
                                "lyapunov_steps": LYAPUNOV_STEPS, "exponents": exps}}
    res["weights"] = weight_summary(models, [f"{a}/{r.lower()}" for a, r in zip(archs, rules)])
    res["metrics"] = {}
    cmp = compare_groups(models, archs, metrics, cache_dir=cache_dir, n_boot=n_boot)
    for m, c in cmp.items():
        D, kept = c.result.distances, c.result.kept
        res["metrics"][m] = {"architecture": labelled(D, kept, archs, n_boot),
                             "rule": labelled(D, kept, rules, n_boot),
                             "architecture_within_rule": within(D, kept, archs, rules, n_boot),
                             "rule_within_architecture": within(D, kept, rules, archs, n_boot)}
        if panels is not None and len(kept) > 1:
            a, r = [archs[i] for i in kept], [rules[i] for i in kept]
            panels[m] = (cluster_distances(D, a).embedding, a, r, res["metrics"][m])
        log(f"  {task} {m}: done")
    rate = [e for e in entries if e[2] == "rate"]
    if len({e[3] for e in rate}) > 2:
        rm = [load_model(m["name"], where) for where, m, _, _ in rate]
        rl = [e[3].upper() for e in rate]
        rcmp = compare_groups(rm, rl, metrics, cache_dir=cache_dir, n_boot=n_boot)
        if "topology" in rcmp:      # the BPTT and GA networks' were cached above
            res["solved_now"] += rcmp["topology"].result.computed
            res["analysed"] += sum(e[3] not in ("bptt", "ga") for e in rate)
        res["rate_rules"] = {m: labelled(c.result.distances, c.result.kept, rl, n_boot)
                             for m, c in rcmp.items()}
    return res


FIGURES = {"universality_mds.png": "each metric's distances between the networks as a "
                                   "2-D metric MDS, one row per task; colour: the "
                                   "architecture, marker: the rule; the title gives both "
                                   "silhouettes",
           "universality_silhouettes.png": "per task, every metric's silhouette with its 95% "
                                           "bootstrap interval and permutation p, with the "
                                           "architecture and with the rule as the label; "
                                           "hollow markers: the same among the networks of "
                                           "one rule, or of one architecture, at a time"}


def plot_report(panels: dict[str, dict], out: Path) -> list[str]:
    """The report's figures (FIGURES) from the panels of each task (analyse_task)."""
    from rnn import plotting as plots
    tasks = [t for t in panels if panels[t]]
    if not tasks:
        return []
    plots.use_backend(False)
    cols = max(len(panels[t]) for t in tasks)
    drawn = [p for t in tasks for p in panels[t].values()]
    from rnn.arch import ARCHS
    seen = list(dict.fromkeys(a for p in drawn for a in p[1]))
    archs_all = [a for a in ARCHS if a in seen] + [a for a in seen if a not in ARCHS]
    rules_all = sorted({r for p in drawn for r in p[2]})    # one colour, one marker each
    fig, axes = plots.new_figure(cols, len(tasks), width=3.4, height=3.3,
                                 layout="constrained")
    for row, t in zip(axes, tasks):
        for ax, (m, (emb, archs, rules, res)) in zip(row, panels[t].items()):
            sil = [res[k].get("silhouette") for k in ("architecture", "rule")]
            title = f"{t}: {m}\nsilhouette: " + ", ".join(
                f"{k} {'–' if v is None else f'{v:.2f}'}" for k, v in
                zip(("architecture", "rule"), sil))
            plots.plot_groups_embedding(ax, emb, archs, [], title, annotate=False,
                                        shapes=rules, groups=archs_all, kinds=rules_all,
                                        legend=False)
        for ax in row[len(panels[t]):]:
            ax.set_axis_off()
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center",
               frameon=False, fontsize=9)
    written = [plots.save(fig, out / "universality_mds.png")]
    fig, axes = plots.new_figure(len(tasks), 1, width=4.2, height=0.9 + 0.45 * 2 * cols,
                                 sharey=True, layout="constrained")
    held = {"architecture": "architecture_within_rule", "rule": "rule_within_architecture"}
    levels = sorted({v for p in drawn for k in held.values() for v in p[3].get(k, {})},
                    key=lambda v: (v not in rules_all, ARCHS.index(v) if v in ARCHS else 0, v))
    handles: dict = {}
    for ax, t in zip(axes[0], tasks):
        rows = [{"label": f"{m} · {k}", "silhouette": res[k].get("silhouette"),
                 "silhouette_interval_95": res[k].get("ci"),
                 "silhouette_permutation_p": res[k].get("p"),
                 "within": {v: x.get("silhouette") for v, x in res.get(held[k], {}).items()}}
                for m, (_, _, _, res) in panels[t].items() for k in ("architecture", "rule")]
        plots.plot_metric_silhouettes(ax, rows, levels)
        ax.set_title(f"{t}: architecture or rule as the label", fontsize=10)
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    if handles:                              # in the order of ``levels``
        handles = dict(sorted(handles.items(), key=lambda kv: levels.index(
            kv[0].removeprefix("within ").removesuffix(" only"))))
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=min(len(handles), 6), frameon=False, fontsize=8,
                   title="dot and interval: all networks; hollow: the other factor held "
                         "fixed", title_fontsize=8)
    written.append(plots.save(fig, out / "universality_silhouettes.png"))
    return written


def fmt(x: dict) -> str:
    if x.get("silhouette") is None:
        return f"– ({x['why']})" if x.get("why") else "–"
    lo, hi = x["ci"]
    return (f"{x['silhouette']:.3f} [{lo:.3f}, {hi:.3f}], p {x['p']:.3g}; NN "
            f"{x['identification']:.2f} (chance {x['chance']:.2f})")


def held_fixed(metrics: dict) -> list[str]:
    """The report's tables of each factor with the other held fixed (:func:`within`):
    one column per level that has two labels with two networks each under some metric;
    the levels without are named below the table."""
    first = next(iter(metrics.values()), {})
    if "architecture_within_rule" not in first:
        return []
    L = ["", "Each factor with the other held fixed (the networks of one rule, or of one "
         "architecture, at a time). The pooled table above mixes the two wherever the grid "
         "is unbalanced: while a cell is missing, one rule's networks come from fewer "
         "architectures than the other's, and what separates the architectures can pass for "
         "a difference between the rules. Maheswaranathan et al.'s comparison is the "
         "architecture among the BPTT networks."]
    for key, label in (("architecture_within_rule", "architecture"),
                       ("rule_within_architecture", "rule")):
        levels = sorted(set().union(*(x[key] for x in metrics.values())))
        shown = [v for v in levels if any(x[key].get(v, {}).get("silhouette") is not None
                                          for x in metrics.values())]
        if not shown:
            L += ["", f"The {label} as the label within one level of the other factor: no "
                  "level has two labels with two networks each."]
            continue
        L += ["", "| metric | " + " | ".join(f"{label} as the label, {v} networks only"
                                            for v in shown) + " |",
              "|---|" + "---|" * len(shown)]
        L += [f"| {m} | " + " | ".join(fmt(x[key].get(v, {})) for v in shown) + " |"
              for m, x in metrics.items()]
        left = [v for v in levels if v not in shown]
        if left:
            groups = "; ".join(f"{v}: " + ", ".join(f"{g} {n}" for g, n in next(
                x[key][v] for x in metrics.values() if v in x[key])["groups"].items())
                for v in left)
            L += ["", f"Not shown (fewer than two labels with two networks each): {groups}."]
    return L


def solved_note(results: dict) -> str:
    """Where the run's time went: the networks whose fixed points it solved, and
    those it read from the caches of an earlier run."""
    done = [r for r in results.values() if "solved_now" in r]
    if not done:
        return ""
    now = sum(r["solved_now"] for r in done)
    total = sum(r["analysed"] for r in done)
    where = "the caches of an earlier run (NAME_fixed_points_small.npz in the models folder)"
    if now == total:
        return f", solving the fixed points of all {total} networks analysed"
    if now == 0:
        return f", reading the fixed points of all {total} networks analysed from {where}"
    return (f", solving the fixed points of {now} of the {total} networks analysed (the "
            f"others' read from {where})")


def write_markdown(path: Path, results: dict, args, wall: float, cells: list[dict],
                   figures: list[str] = ()) -> None:
    from rnn.grid.jobs import MIN_STRETCH
    from rnn.io import atomic_write_text
    short = [r for r in cells if r["converged"] < r["target"]]
    L = ["# Universality: the architecture beside the learning rule", "",
         f"Generated by `python -m experiments.universality` from the networks of "
         f"`{Path(args.grid).name}` that reached the stop rule"
         f"{' or ended at their budget (--include-budget)' if args.include_budget else ''}; "
         f"{args.bootstrap} bootstrap "
         f"resamples and permutations per silhouette; this run took {wall:.0f} s"
         f"{solved_note(results)}. Each cell: "
         "silhouette [95% bootstrap interval], permutation p; NN: leave-one-out "
         "nearest-neighbour identification accuracy of the label, and its chance. "
         "The p is the share of label shuffles whose silhouette reaches the one "
         "observed: a test against shuffled labels, not against 0, so a silhouette "
         "below 0 has a small p where shuffles score further below it (small groups, "
         "or many networks at distance 0; docs/findings.md).", "",
         f"What it is set beside: {THEIRS}", "",
         "## The grid", "",
         (f"{len(short)} of {len(cells)} cells have fewer converged networks than their "
          f"target: the comparisons below are of what has trained, not of the experiment "
          f"as designed." if short else
          f"Every one of the {len(cells)} cells has its target of converged networks."), "",
         "| cell | architecture | rule | trained | converged | ended otherwise (how; their "
         "final accuracy) | target | still to train |",
         "|---|---|---|---|---|---|---|---|"]
    L += [f"| {r['cell']} | {r['arch']} | {r['rule']} | {r['trained']} | {r['converged']} | "
          f"{ended_otherwise(r)} | {r['target']} | {r['left']} |" for r in cells]
    timed = [r["hours_left"] for r in cells if r["hours_left"]]
    if any(r["trained"] < r["target"] for r in cells):
        L += ["", "Still to train: the CPU time of one thread, on the machines that trained "
              "the cell's networks (each network's `segments` name the CPU): the median of the "
              "cell's own trained networks times the networks missing, else at most its rule's "
              "budget of updates at the pace of a job in progress that has run at least "
              f"{MIN_STRETCH} updates (of its latest stretch, since it last went on from a "
              "checkpoint, where its record says). "
              f"In all, {sum(timed):.0f} h for the cells timed"
              + (f"; {sum(r['hours_left'] is None for r in cells)} cell(s) not timed yet"
                 if any(r["hours_left"] is None for r in cells) else "")
              + ". `python run_grid.py experiments/grids/universality.toml --workers 1 "
              "--threads 1` trains exactly what is missing, a job cut short going on from its "
              "checkpoint."]
    L.append("")
    for task, r in results.items():
        L += [f"## {task}", "", ("Networks analysed" if args.include_budget else "Converged networks") + " (architecture/rule): " + ", ".join(
            f"{k} {v}" for k, v in r["networks"].items()) + ".", ""]
        if r.get("skipped"):
            L += [f"Not analysed: {r['skipped']}.", ""]
            continue
        e = r["expected"]
        by = "; ".join(f"{k} {h} of {n}" for k, (h, n) in e["by"].items())
        L += [f"Networks with {e['what']}: {e['networks']} of {e['of']} ({by}).", ""]
        if r.get("held"):
            h = r["held"]
            hb = "; ".join(f"{k} {a} of {n}" for k, (a, n) in h["by"].items())
            L += [f"From behaviour (each pattern pulsed once, then 2000 steps of zero input): "
                  f"{h['all8']} of {h['of']} networks hold all 8 patterns ({hb}). The stable "
                  f"points' corners are the patterns held in {h['agree']} of {h['of']} "
                  f"networks.", ""]
            w = h["away"]
            if w["networks"]:
                from tasks.flipflop import ORBIT_WINDOW, SETTLE_STEPS
                per = ", ".join(f"{n} with no period up to {ORBIT_WINDOW} steps" if p == "-1"
                                else f"{n} on a cycle of period {p}"
                                for p, n in w["periods"].items())
                wb = "; ".join(f"{k} {n}" for k, n in w["by"].items())
                L += [f"Held away from any fixed point (tasks.flipflop.FlipFlopTask."
                      f"memory_orbits: the state still moves after the 2000 steps, and "
                      f"{SETTLE_STEPS} steps later): "
                      f"{w['patterns']} patterns in {w['networks']} networks ({wb}): {per}. "
                      "Such a memory lives on a moving orbit, not at a fixed point, so no "
                      "count of stable points shows it.", ""]
                L += [exponents_line(w), ""] + origins_table(w) + [""]
        if r.get("descriptor"):
            L += descriptor_table(r["descriptor"]) + [""]
        if r.get("weights"):
            L += weight_table(r["weights"]) + [""]
        if r.get("lag"):
            L += lag_table(r["lag"]) + [""]
        if r.get("census"):
            cb = "; ".join(f"{k} " + " / ".join(str(c[x]) for x in c)
                           for k, c in r["census"].items())
            L += ["The census (rnn/analysis/census.py) of each network, monostable / "
                  f"bistable (two choice attractors under every input) / mixed: {cb}.", ""]
        L += ["| metric | architecture as the label | rule as the label |", "|---|---|---|"]
        L += [f"| {m} | {fmt(x['architecture'])} | {fmt(x['rule'])} |"
              for m, x in r["metrics"].items()]
        L += held_fixed(r["metrics"])
        if r.get("rate_rules"):
            L += ["", "The six rules on the rate network, the rule as the label:", "",
                  "| metric | rule as the label |", "|---|---|"]
            L += [f"| {m} | {fmt(x)} |" for m, x in r["rate_rules"].items()]
        L.append("")
    if figures:
        L += ["## Figures", ""]
        for f in figures:
            name = Path(f).name
            L += [f"`{name}`: {FIGURES[name]}.", "", f"![{name}]({name})", ""]
    atomic_write_text(path, "\n".join(L) + "\n")


def main(argv=None) -> int:
    from rnn.grid.format import read_grid
    args = build_parser().parse_args(argv)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    t0 = time.time()
    grid = read_grid(args.grid)
    found = converged(grid, args.models_dir,
                      ("converged", "budget") if args.include_budget else ("converged",))
    cells = cell_census(grid, args.models_dir)
    cache = grid.folder(args.models_dir)
    results, panels = {}, {}
    for task, entries in found.items():
        log(f"{task}: {len(entries)} converged networks")
        results[task] = analyse_task(task, entries, args.metrics, args.bootstrap, cache, log,
                                     panels.setdefault(task, {}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = plot_report(panels, out)
    wall = round(time.time() - t0, 1)
    write_markdown(out / "UNIVERSALITY.md", results, args, wall, cells, figures)
    from rnn.io import atomic_write_text
    atomic_write_text(out / "universality.json", json.dumps(
        {"wall_seconds": round(wall, 1), "cells": cells, "results": results}, indent=1,
        default=float) + "\n")
    for f in figures:
        print(f"wrote {f}")
    print(f"wrote {out / 'UNIVERSALITY.md'}\nwrote {out / 'universality.json'}")
    return 0


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
