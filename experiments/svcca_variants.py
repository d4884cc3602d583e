#!/usr/bin/env python
"""How much do the SVCCA silhouettes depend on the analysis choices?

    python experiments/svcca_variants.py xcdi_v050_bptt-ga-ff-heb.txt

Recomputes the SVCCA distances of a groups file's networks under the tool's
definition (states x from x = 0, SVD directions explaining >= 95% of the
variance) and under single changes of it — the original code's fixed two SVD
directions, its random initial state 0.3·N(0,1), firing rates φ(x) instead of
x, 99% of the variance, and the trial without its first 100 steps — and
prints, for each, the silhouette score of all groups and of every pair
(precomputed distances), and the mean within- and between-group distance, as
a markdown table.  ``--out FILE`` also writes the table and a JSON of it.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from rnn.cli import MODELS_DIR_HELP, Parser
from rnn.analysis.compare import load_group_models, silhouette, within_between
from rnn.io.groups import read_groups
from rnn.io import models_dir
from rnn.analysis.similarity import pair_distances, represent
from rnn.analysis.svcca import SVCCAOptions, network_activity

# name: (description, activity options, reduction options, steps left out at the start)
VARIANTS = {
    "tool": ("this tool: x from 0, >=95% variance", {}, {}, 0),
    "dims2": ("2 SVD directions (original's NUM_DIMENSIONS)", {}, {"dims": 2}, 0),
    "x0rand": ("random start x0 ~ 0.3·N(0,1) (original's feed)", {"x0_scale": 0.3}, {}, 0),
    "rates": ("rates φ(x) instead of x", {"rates": True}, {}, 0),
    "keep99": (">=99% variance", {}, {"keep": 0.99}, 0),
    "late": ("without the first 100 steps", {}, {}, 100),
}


def variant_distances(models, variant: str, activity_cache: dict) -> tuple[np.ndarray,
                                                                          list[int]]:
    """Distances under one variant; ``activity_cache`` keeps each network's
    activity per activity option, so variants that share it simulate once."""
    _, act_kw, red_kw, skip = VARIANTS[variant]
    reduced = []
    for i, lm in enumerate(models):
        key = (i, tuple(sorted(act_kw.items())))
        if key not in activity_cache:
            activity_cache[key] = network_activity(lm.model, lm.task, **act_kw)
        A = activity_cache[key]
        if skip:
            T = lm.task.steps
            A = A.reshape(A.shape[0], -1, T)[:, :, skip:].reshape(A.shape[0], -1)
        reduced.append(represent(A, SVCCAOptions(**red_kw), "kept"))
    D = pair_distances(reduced, ["svcca"])["svcca"]
    return D, [r.k for r in reduced]


def scores(D: np.ndarray, labels: list[str]) -> dict:
    order = list(dict.fromkeys(labels))
    idx = [order.index(l) for l in labels]
    w, b = within_between(D, idx)
    out = {"all": silhouette(D, labels, "precomputed"), "within": w, "between": b}
    for a, c in itertools.combinations(order, 2):
        keep = [i for i, l in enumerate(labels) if l in (a, c)]
        sub = [labels[i] for i in keep]
        out[f"{a} vs {c}"] = silhouette(D[np.ix_(keep, keep)], sub, "precomputed")
    return out


def table(results: dict, labels: list[str]) -> str:
    order = list(dict.fromkeys(labels))
    pairs = [f"{a} vs {c}" for a, c in itertools.combinations(order, 2)]
    head = ["analysis", "SVD dims", "silhouette, all", *pairs, "within", "between"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    f = lambda x, nd=3: "n/a" if x is None else f"{x:.{nd}f}"  # noqa: E731
    for v, r in results.items():
        dims = sorted(set(r["dims"]))
        lines.append("| " + " | ".join([VARIANTS[v][0], "/".join(map(str, dims)), f(r["all"]),
                                        *[f(r[p]) for p in pairs], f(r["within"], 4),
                                        f(r["between"], 4)]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("groups", help="groups file in the models folder")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                    metavar="VARIANT", help=f"analysis variants to run (default: all of "
                                            f"{', '.join(VARIANTS)})")
    ap.add_argument("--models-dir", default=None, metavar="DIR", help=MODELS_DIR_HELP)
    ap.add_argument("--out", default=None, help="write the table here (and FILE.json)")
    args = ap.parse_args(argv)
    directory = models_dir(args.models_dir)
    groups = read_groups([args.groups], directory, min_groups=2)
    models = load_group_models(groups, directory)
    labels = groups.label_of_each
    results, cache = {}, {}
    for v in args.variants:
        D, dims = variant_distances(models, v, cache)
        results[v] = {**scores(D, labels), "dims": dims}
    text = table(results, labels)
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {out}\nwrote {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(main)
