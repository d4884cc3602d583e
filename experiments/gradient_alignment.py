#!/usr/bin/env python
"""How close are e-prop's and RFLO's updates to the exact gradient, on RDM and CDI?

    python experiments/gradient_alignment.py                 # the reproduction's networks
    python experiments/gradient_alignment.py --tasks cdi --rules rflo --batches 1

e-prop and RFLO replace the gradient of the loss with respect to W_rec by a
rank-one estimate f vᵀ (rnn/rules/eprop.py: f the feedback vector, the readout
W_out for e-prop, a fixed random B for RFLO; v the trial-averaged error times
the presynaptic eligibility trace).  For every network of the reproduction
experiment trained by those rules (``models/x{task}-{rule}-v050_s*``), at its
initial weights (rebuilt from its seed, as training began) and at its trained
weights, on fresh 500-trial batches of its task (PROBE stream, seed of the
network), this measures:

* ``cos``: the cosine between the rule's estimate Ĝ and the exact gradient G
  of W_rec (BPTT's, rnn/rules/bptt.py), flattened -- 1 means the rule follows the
  gradient, 0 means its steps are orthogonal to it;
* ``rank-1 share``: σ₁² / Σσ² of G, the largest fraction of the exact
  gradient any rank-one update could capture (its best rank-one
  approximation's squared norm, over the whole);
* ``best cos``: the cosine of G with its best rank-one approximation, the most
  a rank-one estimate could reach (√ of the share);
* ``feedback``, ``trace``: |cos| of f with G's leading left singular vector
  (which units the error should reach) and of v with its leading right one
  (which presynaptic rates should change).  For a nearly rank-one G,
  |cos| ≈ feedback × trace × best cos: which of the two factors is lost says
  whether the feedback or the trace misses the gradient.

It writes ``experiments/results/ALIGNMENT.md`` (the table, generated) and
``alignment.json`` (every network's figures).
"""
from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import torch

from rnn.cli import MODELS_DIR_HELP, Parser
from rnn.errors import UserError
from rnn.io import ensure_writable, load_model, models_dir
from rnn.protocol import CLEAN, Protocol
from rnn.rng import PROBE, Streams

ROOT = Path(__file__).resolve().parents[1]
RULES = ("eprop", "rflo")
TASKS = ("rdm", "cdi")
from rnn.training import FINISHED


def networks(directory: Path, task: str, rule: str, variance: str) -> list[str]:
    """Names of the finished networks of one cell of the reproduction experiment."""
    from rnn.io.store import records
    found = records(directory, f"x{task}-{rule}-v{variance}")
    return sorted(m["name"] for ms in found.values() for m in ms
                  if m.get("status") in FINISHED and isinstance(m.get("name"), str))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else float("nan")


def rank_one_share(G: torch.Tensor) -> float:
    s = torch.linalg.svdvals(G.double())
    tot = float((s ** 2).sum())
    return float(s[0] ** 2) / tot if tot > 0 else float("nan")


def measure(model, task, feedback: torch.Tensor, seed: int, batches: int, trials: int,
            protocol: Protocol = CLEAN) -> dict:
    """Mean over ``batches`` of the figures of one network (module docstring)."""
    from rnn.rules.bptt import loss_and_grad
    from rnn.rules.eprop import loss_and_updates
    rng = Streams([seed], PROBE)
    cos, share, loss, left, right = [], [], [], [], []
    for _ in range(batches):
        tr = task.sample(trials, rng)
        x0 = protocol.initial_states(rng, trials, model.hidden)
        lo, G = loss_and_grad(model, tr.inputs, x0, tr.targets)
        _, Ghat, _ = loss_and_updates(model, tr.inputs, x0, tr.targets, feedback)
        cos.append(cosine(Ghat[0], G[0]))
        share.append(rank_one_share(G[0]))
        loss.append(float(lo[0]))
        U, _, Vh = torch.linalg.svd(G[0].double())
        f = feedback[0].double()
        v = Ghat[0].double().T @ f / float(f @ f)        # Ĝ = f vᵀ
        left.append(abs(cosine(f, U[:, 0])))
        right.append(abs(cosine(v, Vh[0])))
    mean = statistics.fmean
    return {"cos": mean(cos), "rank1_share": mean(share), "best_cos": mean(share) ** 0.5,
            "feedback_cos": mean(left), "trace_cos": mean(right), "loss": mean(loss)}


def feedback_of(rule: str, trainer, model) -> torch.Tensor:
    """The rule's feedback vector for ``model`` [1, H]: its readout (e-prop) or
    the fixed random vector drawn from its seed (RFLO)."""
    return trainer.B if rule == "rflo" else model.W_out[:, 0, :]


def run(directory: Path, tasks, rules, batches: int, trials: int, variance: str,
        say=print) -> list[dict]:
    from rnn.rules import get
    rows = []
    for task_name in tasks:
        for rule in rules:
            names = networks(directory, task_name, rule, variance)
            for name in names:
                lm = load_model(name, directory)
                task, seed = lm.task, lm.meta.get("seed")
                try:
                    protocol = Protocol.from_dict(lm.meta.get("protocol"))
                except ValueError as e:
                    raise UserError(f"{lm.path.with_suffix('.json')}: {e}") from None
                if not isinstance(seed, int) or lm.meta.get("rule") != rule:
                    raise UserError(f"{lm.path.with_suffix('.json')}: not a {rule} network "
                                    f"with a seed")
                rs = get(rule)
                cfg = rs.make_config(task)
                # the initial weights, rebuilt from the seed as training began
                trainer = rs.make(cfg, task, [seed], "cpu", protocol=protocol)
                for state, model in (("initial", trainer.model), ("trained", lm.model)):
                    fig = measure(model, task, feedback_of(rule, trainer, model), seed,
                                  batches, trials, protocol)
                    rows.append({"task": task_name, "rule": rule, "name": name, "seed": seed,
                                 "state": state, "status": lm.meta.get("status"),
                                 "accuracy": lm.meta.get("final_accuracy"), **fig})
                say(f"{name}: cos {rows[-2]['cos']:.3f} initial, {rows[-1]['cos']:.3f} trained")
    return rows


def _summary(vals: list[float]) -> str:
    vals = [v for v in vals if v == v]
    if not vals:
        return "—"
    return f"{statistics.median(vals):.3f} [{min(vals):.3f}, {max(vals):.3f}]"


def table(rows: list[dict], batches: int, trials: int) -> str:
    out = ["# e-prop and RFLO against the exact gradient",
           "",
           "Generated by `python experiments/gradient_alignment.py` from the reproduction "
           "experiment's networks (`models/x*-{eprop,rflo}-v050_s*`); each figure is the "
           f"mean over {batches} fresh batch(es) of {trials} trials, then the median "
           "[min, max] over the networks. cos: cosine between the rule's estimate of "
           "W_rec's gradient and the exact (BPTT) gradient; rank-1 share: σ₁²/Σσ² of the "
           "exact gradient (the most any rank-one update can capture); best cos: its "
           "square root, the cosine a perfect rank-one estimate would reach; feedback, "
           "trace: |cos| of the feedback vector f and of the trace vector v (the estimate "
           "is f vᵀ) with the exact gradient's leading left and right singular vectors.",
           "",
           "| task | rule | weights | networks | converged | cos | rank-1 share | best cos "
           "| feedback | trace |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["task"], r["rule"], r["state"]) for r in rows))
    for task, rule, state in keys:
        sel = [r for r in rows if (r["task"], r["rule"], r["state"]) == (task, rule, state)]
        conv = sum(r["status"] == "converged" for r in sel)
        out.append(f"| {task.upper()} | {rule} | {state} | {len(sel)} | {conv} | "
                   f"{_summary([r['cos'] for r in sel])} | "
                   f"{_summary([r['rank1_share'] for r in sel])} | "
                   f"{_summary([r['best_cos'] for r in sel])} | "
                   f"{_summary([r['feedback_cos'] for r in sel])} | "
                   f"{_summary([r['trace_cos'] for r in sel])} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS),
                    help="tasks whose networks to measure (default: rdm cdi)")
    ap.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES),
                    help="rules whose networks to measure (default: eprop rflo)")
    ap.add_argument("--batches", type=int, default=2,
                    help="fresh batches per network and weights (default 2)")
    ap.add_argument("--trials", type=int, default=500,
                    help="trials per batch (default 500, a training batch)")
    ap.add_argument("-v", "--variance", default="050", metavar="VVV",
                    help="noise tag of the cells, as in their names (default 050 = -v 0.5)")
    ap.add_argument("--models-dir", default=None, metavar="DIR", help=MODELS_DIR_HELP)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "ALIGNMENT.md"),
                    help="the table (default experiments/results/ALIGNMENT.md; the figures "
                         "of every network go beside it as alignment.json)")
    ap.add_argument("--quiet", action="store_true", help="no line per network")
    args = ap.parse_args(argv)
    if not 1 <= args.batches <= 100:
        raise UserError(f"--batches must be between 1 and 100, got {args.batches}")
    if not 2 <= args.trials <= 100_000:
        raise UserError(f"--trials must be between 2 and 100000, got {args.trials}")
    if not re.fullmatch(r"\d{3}", args.variance):
        raise UserError(f"-v/--variance is a cell's noise tag of three digits (050 for "
                        f"-v 0.5), got {args.variance!r}")
    out = Path(args.out)
    ensure_writable(out.parent, what="the folder of --out", hint="(choose another --out)")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the file to write, e.g. "
                        f"{out / 'ALIGNMENT.md'}")
    directory = models_dir(args.models_dir)
    say = (lambda *a: None) if args.quiet else print
    rows = run(directory, args.tasks, args.rules, args.batches, args.trials, args.variance,
               say)
    if not rows:
        raise UserError(f"no finished e-prop or RFLO network of the reproduction experiment "
                        f"(x{{task}}-{{rule}}-v{args.variance}_s*) in {directory}")
    out.write_text(table(rows, args.batches, args.trials))
    js = out.with_name("alignment.json")
    js.write_text(json.dumps({"batches": args.batches, "trials": args.trials, "rows": rows},
                             indent=1) + "\n")
    print(f"wrote {out}\nwrote {js}")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(main)
