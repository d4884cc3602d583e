#!/usr/bin/env python
"""Would CUDA graphs remove the launch overhead of a lone network's update?

    python bench/bench_cuda_graph.py            # on a GPU (bench/gpu.sh runs it)
    python bench/bench_cuda_graph.py --smoke    # tiny sizes, any device (the tests)

On an H200 a lone BPTT update took 0.101 s (bench/results/gpu.md), about what
this project's CPU takes: its 750-step forward and backward sweeps are some
7000 small kernels, each launched from Python.  A CUDA graph records them once
and replays them with one launch.  The random draws (keyed by Python integers
that change every update) and Adam (whose step counts live on the CPU) cannot
be recorded, so what is captured is the gradient computation alone: BPTT's
``loss_and_grad`` and e-prop's ``loss_and_updates``, on static input and
weight buffers that each update copies into.

For P = 1 and P = 16 CDI networks (500 trials x 750 steps, 50 units) it
times, in one process: the eager gradient, the graphed one (copies in,
replay, copy out), and a whole eager update for scale; and checks that the
replayed gradient equals the eager one (the same kernels on the same data:
it should, bit for bit).  Without a GPU (``--smoke``) the graph rows say so
and only the eager path runs.  Writes a markdown table and a JSON (--out).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from bench.common import ROOT, machine
from rnn.cli import Parser
from rnn.model import RateRNN
from rnn.rules import get
from tasks import ncdi

FIELDS = ("W_in", "W_rec", "W_out", "b")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str, repeat: int) -> float:
    fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def gradient_fn(rule: str, trainer):
    """(model, inputs, x0, targets) -> tensors: the rule's gradient computation."""
    if rule == "bptt":
        from rnn.rules.bptt import loss_and_grad
        return lambda m, u, x0, y: loss_and_grad(m, u, x0, y)
    from rnn.rules.eprop import loss_and_updates
    return lambda m, u, x0, y: loss_and_updates(m, u, x0, y, trainer.feedback(m, None))


class Graphed:
    """``fn`` recorded as a CUDA graph on static buffers shaped like the first
    call's arguments; each call copies the arguments in, replays, and returns
    copies of the outputs."""

    def __init__(self, fn, model: RateRNN, inputs, x0, targets):
        self.static = {k: getattr(model, k).clone() for k in FIELDS}
        self.model = model.replace(**self.static)
        self.args = [inputs.clone(), x0.clone(), targets.clone()]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):                  # warm-up off the capture
            for _ in range(3):
                fn(self.model, *self.args)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = fn(self.model, *self.args)

    def __call__(self, model: RateRNN, inputs, x0, targets):
        for k in FIELDS:
            self.static[k].copy_(getattr(model, k))
        for s, a in zip(self.args, (inputs, x0, targets)):
            s.copy_(a)
        self.graph.replay()
        return tuple(o.clone() for o in self.out)


def measure(rule: str, P: int, task, device: str, repeat: int, protocol) -> dict:
    rs = get(rule)
    trainer = rs.make(rs.make_config(task), task, list(range(P)), device, protocol=protocol)
    idx = torch.arange(P, device=device)
    trials, x0 = trainer.draw_batch(idx, trainer.cfg.batch, trainer.model.hidden)
    args = (trainer.model, trials.inputs, x0, trials.targets)
    fn = gradient_fn(rule, trainer)
    row = {"rule": rule, "P": P,
           "eager_gradient_s": timed(lambda: fn(*args), device, repeat),
           "eager_update_s": timed(lambda: trainer.step(idx), device, repeat)}
    if device != "cuda":
        row["graphed_gradient_s"] = None
        row["note"] = "CUDA graphs need a GPU"
        return row
    try:
        g = Graphed(fn, *args)
    except RuntimeError as e:                     # a capture the graph cannot hold
        row["graphed_gradient_s"] = None
        row["note"] = f"capture failed: {str(e).splitlines()[0][:160]}"
        return row
    want, got = fn(*args), g(*args)
    row["equal"] = all(torch.equal(a, b) for a, b in zip(want, got))
    row["max_abs_diff"] = max(float((a - b).abs().max()) for a, b in zip(want, got))
    row["graphed_gradient_s"] = timed(lambda: g(*args), device, repeat)
    row["speedup"] = row["eager_gradient_s"] / row["graphed_gradient_s"]
    return row


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes (16 units, 40 steps, P = 1, 2): checks the script anywhere")
    ap.add_argument("--repeat", type=int, default=10, help="timed calls per figure (default 10)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"),
                    help="folder of cuda_graph.md / .json (default bench/results)")
    args = ap.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    from rnn.protocol import Protocol
    protocol = Protocol(hidden=16) if args.smoke else Protocol()
    task = ncdi(2, 0.5, steps=40) if args.smoke else ncdi(2, 0.5)
    sizes = (1, 2) if args.smoke else (1, 16)
    repeat = 1 if args.smoke else args.repeat
    print(f"machine: {machine()}; measuring on {device}", flush=True)
    rows = [measure(rule, P, task, device, repeat, protocol)
            for rule in ("bptt", "eprop") for P in sizes]
    lines = [f"# CUDA graphs for the gradient sweep ({machine()})", "",
             f"CDI, {task.steps} steps, {protocol.hidden} units; median of {repeat}.", "",
             "| rule | P | eager gradient (s) | graphed gradient (s) | speedup | equal | "
             "eager whole update (s) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        gs = "—" if r["graphed_gradient_s"] is None else f"{r['graphed_gradient_s']:.4f}"
        sp = f"{r['speedup']:.1f}×" if "speedup" in r else r.get("note", "—")
        lines.append(f"| {r['rule']} | {r['P']} | {r['eager_gradient_s']:.4f} | {gs} | {sp} | "
                     f"{r.get('equal', '—')} | {r['eager_update_s']:.4f} |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "cuda_graph_smoke" if args.smoke else "cuda_graph"
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out / (stem + '.md')}\nwrote {out / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(main)
