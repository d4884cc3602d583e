#!/usr/bin/env python
"""The GPU measurements of issue 14, in one run (called by bench/gpu.sh).

    python bench/bench_gpu.py                 # on a GPU: the full sizes (167 s on an H200, with the tests)
    python bench/bench_gpu.py --smoke         # tiny sizes, any device (the tests run this)

1. one update of each rule for populations of P = 1, 16, 64, 256 networks (GA:
   P runs of 20 members), per batch and per network;
2. 64 BPTT networks on CDI at -v 0.5 trained to the stop rule (wall time);
3. 100 GA generations of 24 runs x 20 members x 500 trials on CDI;
then writes a markdown table and a JSON of every number (--out).  A size that
does not fit in memory is recorded as "out of memory", not a crash; a part
that would start after --budget-s seconds is skipped and said so.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from bench.common import ROOT, machine
from rnn.cli import Parser, add_device_arg, resolve_device
from rnn.protocol import Protocol
from rnn.rules import RULES, get
from rnn.training import ValidationSet, fit
from tasks import ncdi


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def update_time(rule, P, task, device, protocol, repeat):
    cfg = get(rule).make_config(task, None)
    tr = get(rule).make(cfg, task, list(range(P)), device, protocol=protocol)
    idx = torch.arange(P, device=device)
    tr.step(idx)                                           # warm-up (allocations, kernels)
    sync(device)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        tr.step(idx)
        sync(device)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes (P = 1, 2; 16 units; a few updates): checks the script")
    add_device_arg(ap, "where to measure")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"),
                    help="folder of gpu.md / gpu.json (default bench/results)")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="skip parts that would start after this many seconds (default 420)")
    args = ap.parse_args()
    device = resolve_device(args.device)
    card = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    print(f"machine: {machine()}; measuring on {device} ({card})", flush=True)
    task = ncdi(2, 0.5)
    protocol = Protocol(hidden=16) if args.smoke else Protocol()
    sizes = [1, 2] if args.smoke else [1, 16, 64, 256]
    repeat = 2 if args.smoke else 5
    res = {"device": device, "card": card, "machine": machine(), "smoke": args.smoke,
           "hidden": protocol.hidden, "updates": {}, "skipped": []}
    t_start = time.perf_counter()

    def over_budget(what):
        if time.perf_counter() - t_start > args.budget_s:
            res["skipped"].append(what)
            print(f"skipped (over --budget-s): {what}", flush=True)
            return True
        return False

    for rule in RULES:
        for P in sizes:
            if over_budget(f"{rule} update at P = {P}"):
                continue
            try:
                t = update_time(rule, P, task, device, protocol, repeat)
                res["updates"][f"{rule}/{P}"] = {"batch_s": t, "per_network_s": t / P}
                print(f"{rule:4s} P = {P:3d}: {t:.4f} s per update, {t / P:.5f} s per network",
                      flush=True)
            except torch.cuda.OutOfMemoryError:
                res["updates"][f"{rule}/{P}"] = "out of memory"
                print(f"{rule:4s} P = {P:3d}: out of memory", flush=True)
            if device == "cuda":
                torch.cuda.empty_cache()

    n_bptt = 2 if args.smoke else 64
    if not over_budget(f"{n_bptt} BPTT networks to the stop rule"):
        cfg = get("bptt").make_config(task, 3 if args.smoke else None)
        seeds = list(range(1000, 1000 + n_bptt))
        tr = get("bptt").make(cfg, task, seeds, device, protocol=protocol)
        val = ValidationSet.make(task, seeds, protocol.hidden, device, protocol)
        t = time.perf_counter()
        fr = fit(tr, val, cfg.max_steps, quiet=True)
        sync(device)
        wall = time.perf_counter() - t
        steps = sorted(fr.steps_run)
        res["bptt_to_stop_rule"] = {"networks": n_bptt, "wall_s": wall, "converged": sum(
            s == "converged" for s in fr.status), "steps_min": steps[0],
            "steps_median": steps[len(steps) // 2], "steps_max": steps[-1]}
        print(f"{n_bptt} BPTT CDI networks: {res['bptt_to_stop_rule']['converged']} reached "
              f"the stop rule in {wall:.1f} s (steps {steps[0]}-{steps[-1]})", flush=True)

    runs, gens = (2, 2) if args.smoke else (24, 100)
    if not over_budget(f"GA {gens} generations x {runs} runs"):
        cfg = get("ga").make_config(task, None)
        tr = get("ga").make(cfg, task, list(range(runs)), device, protocol=protocol)
        idx = torch.arange(runs, device=device)
        tr.step(idx)
        sync(device)
        t = time.perf_counter()
        for _ in range(gens):
            tr.step(idx)
        sync(device)
        wall = time.perf_counter() - t
        res["ga_generations"] = {"runs": runs, "members": cfg.population
                                 if hasattr(cfg, "population") else None,
                                 "generations": gens, "wall_s": wall, "per_generation_s": wall / gens}
        print(f"GA: {gens} generations of {runs} runs in {wall:.1f} s "
              f"({wall / gens:.3f} s per generation)", flush=True)
    res["total_s"] = time.perf_counter() - t_start

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_smoke" if args.smoke else "gpu"
    lines = [f"Measured by `bench/gpu.sh{' --smoke' if args.smoke else ''}` on {card} "
             f"({machine()}); {protocol.hidden} units.", "",
             "| rule | P | s per update | s per network | per-network cost vs P = 1 |",
             "|---|---|---|---|---|"]
    for rule in RULES:
        base = res["updates"].get(f"{rule}/1")
        for P in sizes:
            v = res["updates"].get(f"{rule}/{P}")
            if v is None:
                continue
            if isinstance(v, str):
                lines.append(f"| {rule} | {P} | {v} | | |")
                continue
            ratio = (f"{base['per_network_s'] / v['per_network_s']:.1f}x lower"
                     if isinstance(base, dict) else "")
            lines.append(f"| {rule} | {P} | {v['batch_s']:.4f} | {v['per_network_s']:.5f} | "
                         f"{ratio} |")
    if "bptt_to_stop_rule" in res:
        b = res["bptt_to_stop_rule"]
        lines += ["", f"{b['networks']} BPTT CDI networks to the stop rule: {b['wall_s']:.1f} s "
                  f"({b['converged']} converged; steps {b['steps_min']}-{b['steps_max']})."]
    if "ga_generations" in res:
        g = res["ga_generations"]
        lines += [f"GA: {g['generations']} generations of {g['runs']} runs in "
                  f"{g['wall_s']:.1f} s, {g['per_generation_s']:.3f} s per generation."]
    if res["skipped"]:
        lines += ["", "Skipped (over the time budget): " + "; ".join(res["skipped"]) + "."]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out / f'{stem}.md'}\nwrote {out / f'{stem}.json'}")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(lambda argv: main())
