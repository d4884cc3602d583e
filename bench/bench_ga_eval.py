#!/usr/bin/env python
"""Four costs of a GA generation outside its arithmetic, each beside its fix.

    python -m bench.bench_ga_eval                       # vanilla RNN, 3 generations each
    python -m bench.bench_ga_eval --arch gru --repeat 2
    python -m bench.bench_ga_eval --arch lstm --only 3

1. **Dask's allocator setting.**  A Dask nanny starts its worker with
   MALLOC_TRIM_THRESHOLD_=65536, and a training subprocess inherited it until
   rnn.grid.runner.training_env removed it.  Two subprocesses each time one GA
   generation on CDI (-v 0.5, 2 runs x 20 members, 500 trials of 750 steps),
   with and without that variable; their user and system CPU seconds are
   read from the kernel (getrusage of the children).
2. **Every state of a sequence held at once.**  The GA's loss on the flip-flop
   (2 runs x 50 members, 500 trials of 200 steps) by tasks.flipflop.
   sequence_mean (2 steps at a time at this size), against the same loss from one
   simulation that keeps all 200 states with the trials repeated for each
   member (what GATrainer.evaluate did before), in one process; the largest
   relative difference between the two losses is printed (both with the
   population in one piece, as before 3).
3. **A whole population's gates streamed through memory.**  A discrete-time
   population stepped as one stack writes and reads its gate tensor (100 GRUs
   x 500 trials x 150 rows: 30 MB) from memory at each of a step's elementwise
   passes; in chunks of a few networks (rnn.arch.CHUNK_FLOATS, each chunk over
   all its steps) they stay in a core's cache.  The rate network's flip-flop
   population is chunked by its states (RateRNN.chunk); on CDI its simulate
   groups whole runs itself, so that row times the same code twice.  The
   GA's evaluation of a population (GATrainer.evaluate, the bulk of a
   generation) on the flip-flop (2 runs x 50 members) and on CDI (-v 0.5,
   2 runs x 20 members, 500 trials of 750 steps), in one piece against in
   chunks, with the largest relative difference of the losses.
4. **Each term of a step a fresh tensor.**  The discrete-time step as the
   plain formulas (each gate block's input and recurrent sums apart, then
   their sum, each nonlinearity and product a new tensor: the step up to
   81678a5) against rnn.arch.CellRNN._step, which accumulates both products
   into one buffer per block and applies the nonlinearities in place
   (GRU: r, z and n by baddbmm_, sigmoid_, addcmul_, tanh_, then lerp); the
   GA's evaluation as in 3, in chunks; not for the rate network.

Each figure is the median of --repeat calls after one warm-up; a ratio is
measured in one run, so it holds on a loaded machine better than the times do.
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys

import torch

from bench.common import ROOT, machine, median_time
from rnn.cli import Parser


def _trainer(task, arch: str):
    from rnn.rules.ga import GAConfig, GATrainer
    cfg = GAConfig.for_task(task)
    return GATrainer(cfg, task, [1, 2], torch.device("cpu"), arch=arch), cfg


def child(arch: str, repeat: int) -> None:
    """One process: the median time of a CDI generation (printed as JSON)."""
    from tasks import ncdi
    tr, cfg = _trainer(ncdi(2, 0.5), arch)
    act = torch.arange(2)

    def one():
        trials, x0 = tr.draw_batch(act, cfg.batch, tr.pop.hidden)
        tr.generation(act, trials.inputs, x0, trials.targets)
    print(json.dumps({"generation": median_time(one, repeat)}))


def in_subprocess(arch: str, repeat: int, malloc: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    if malloc is not None:
        env["MALLOC_TRIM_THRESHOLD_"] = malloc
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-m", "bench.bench_ga_eval", "--child", "--arch", arch,
                        "--repeat", str(repeat)], cwd=ROOT, env=env, capture_output=True,
                       text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["user"] = after.ru_utime - before.ru_utime
    out["sys"] = after.ru_stime - before.ru_stime
    return out


def flipflop_eval(arch: str, repeat: int) -> tuple[float, float, float]:
    from tasks import flipflop
    from tasks.flipflop import SequenceTrials, sequence_mean
    task = flipflop()
    tr, cfg = _trainer(task, arch)
    act = torch.arange(2)
    trials, x0 = tr.draw_batch(act, cfg.batch, tr.pop.hidden)
    pop = tr.pop.select(tr.members(act))
    G = tr.G

    def whole():
        rep = SequenceTrials(*(t.repeat_interleave(G, dim=1) for t in
                               (trials.inputs, trials.targets, trials.mask, trials.hold)))
        sim = pop.simulate(trials.inputs, x0, keep="all")
        return task.loss(pop, sim, rep)

    def windowed():
        return sequence_mean(pop, trials, x0, task.loss_terms, G)
    with torch.no_grad():
        a, b = whole(), windowed()
        diff = float(((a - b).abs() / a.abs()).max())
        return median_time(whole, repeat), median_time(windowed, repeat), diff


def _before_after(arch: str, repeat: int, before) -> list[tuple[str, str, float, float, float]]:
    """(task, networks per chunk, time under the context manager ``before``, time as the
    code stands, largest relative difference of the losses) of GATrainer.evaluate
    on the flip-flop (2 runs x 50 members) and on CDI (2 runs x 20 members)."""
    from tasks import flipflop, ncdi
    rows = []
    for name, task in (("flip-flop", flipflop()), ("CDI", ncdi(2, 0.5))):
        tr, cfg = _trainer(task, arch)
        act = torch.arange(2)
        trials, x0 = tr.draw_batch(act, cfg.batch, tr.pop.hidden)
        seq = getattr(task, "sequence", False)

        def evaluate():
            return tr.evaluate(act, trials.inputs, x0, trials if seq else trials.targets)
        with torch.no_grad():
            with before():
                a, t_a = evaluate(), median_time(evaluate, repeat)
            b, t_b = evaluate(), median_time(evaluate, repeat)
        most = ("its own (whole runs)" if arch == "rate" and not seq
                else str(min(tr.pop.chunk(cfg.batch), tr.pop.n_networks)))
        rows.append((name, most, t_a, t_b, float(((a - b).abs() / a.abs()).max())))
    return rows


@contextlib.contextmanager
def _one_piece():
    """Section 3's "before": the population in one piece (no chunks)."""
    import rnn.arch
    default, rnn.arch.CHUNK_FLOATS = rnn.arch.CHUNK_FLOATS, 2 ** 62
    try:
        yield
    finally:
        rnn.arch.CHUNK_FLOATS = default


def chunked_eval(arch: str, repeat: int) -> list[tuple[str, str, float, float, float]]:
    """Section 3: (task, networks per chunk, time in one piece, in chunks, largest
    relative difference of the losses) on the flip-flop and on CDI."""
    return _before_after(arch, repeat, _one_piece)


# ---- section 4: the step as the plain formulas, each term a fresh tensor ---------

def _plain_prepared(self):
    w_ih, w_hh = self.weight_ih.transpose(1, 2), self.weight_hh.transpose(1, 2)
    b_ih, b_hh = self.bias_ih[:, None, :], self.bias_hh[:, None, :]
    if self.arch != "lstm":
        return w_ih, w_hh, b_ih, b_hh
    H = self.units
    scale = torch.ones(4 * H, dtype=w_ih.dtype)
    scale[2 * H:3 * H] = 2.0
    return w_ih * scale, w_hh * scale, (b_ih + b_hh) * scale, torch.zeros_like(b_hh)


def _plain_step(self, x, u, w):
    """The step before the in-place one (rnn.arch.CellRNN._step up to 81678a5):
    each gate block's input and recurrent sums apart, then their sum, each
    nonlinearity and each product a fresh tensor."""
    w_ih, w_hh, b_ih, b_hh = w
    H = self.units
    h = x[..., :H]
    if self.arch == "lstm":
        s = torch.sigmoid(torch.baddbmm(torch.baddbmm(b_ih, u, w_ih), h, w_hh))
        i, f, gg, o = s.split(H, dim=-1)
        c = torch.addcmul(f * x[..., H:], i, gg.mul(2.0).sub_(1.0))
        return torch.cat([o * torch.tanh(c), c], dim=-1)
    gi, gh = torch.baddbmm(b_ih, u, w_ih), torch.baddbmm(b_hh, h, w_hh)
    if self.arch == "vanilla":
        s = gi + gh
        return torch.tanh(s) if self.nonlinearity == "tanh" else torch.relu(s)
    i_rz, i_n = gi.split([2 * H, H], dim=-1)
    h_rz, h_n = gh.split([2 * H, H], dim=-1)
    r, z = torch.sigmoid(i_rz + h_rz).split(H, dim=-1)
    n = torch.tanh(i_n + r * h_n)
    return n + z * (h - n)


@contextlib.contextmanager
def _plain():
    """Section 4's "before": CellRNN's step as the plain formulas."""
    from rnn.arch import CellRNN
    saved = CellRNN._prepared, CellRNN._step
    CellRNN._prepared, CellRNN._step = _plain_prepared, _plain_step
    try:
        yield
    finally:
        CellRNN._prepared, CellRNN._step = saved


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="vanilla", choices=["rate", "vanilla", "gru", "lstm"],
                    help="the architecture of the population (default vanilla)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed calls of each (median, after one warm-up; default 3)")
    ap.add_argument("--only", type=int, nargs="+", choices=[1, 2, 3, 4],
                    default=[1, 2, 3, 4], metavar="K",
                    help="run only these of the four sections (default all)")
    ap.add_argument("--child", action="store_true", help=argparse_hidden())
    args = ap.parse_args(argv)
    if args.child:
        child(args.arch, args.repeat)
        return 0
    print(machine())
    if 1 in args.only:
        allocator(args.arch, args.repeat)
    if 2 in args.only:
        windows(args.arch, args.repeat)
    if 3 in args.only:
        print(f"\n3. the GA's evaluation of a population ({args.arch}), in one piece and "
              f"in chunks\n")
        print("| task | networks per chunk | one piece (s) | in chunks (s) | ratio | "
              "largest relative difference |")
        print("|---|---|---|---|---|---|")
        for name, most, t_one, t_chunks, diff in chunked_eval(args.arch, args.repeat):
            print(f"| {name} | {most} | {t_one:.2f} | {t_chunks:.2f} | "
                  f"{t_one / t_chunks:.2f}x | {diff:.1e} |")
    if 4 in args.only and args.arch != "rate":
        print(f"\n4. the GA's evaluation of a population ({args.arch}, in chunks): the step "
              f"as the plain formulas and in place\n")
        print("| task | plain formulas (s) | in place (s) | ratio | largest relative difference |")
        print("|---|---|---|---|---|")
        for name, _, t_plain, t_now, diff in _before_after(args.arch, args.repeat, _plain):
            print(f"| {name} | {t_plain:.2f} | {t_now:.2f} | {t_plain / t_now:.2f}x | "
                  f"{diff:.1e} |")
    return 0


def allocator(arch: str, repeat: int) -> None:
    """Section 1: Dask's allocator setting, in two subprocesses."""
    import dask
    import distributed  # noqa: F401  (registers the nanny's defaults)
    dask_value = str(dask.config.get("distributed.nanny.pre-spawn-environ")
                     ["MALLOC_TRIM_THRESHOLD_"])
    print(f"\n1. a GA generation on CDI ({arch}, 2 runs x 20 members), one process each\n")
    print("| environment | generation (s) | user CPU (s) | system CPU (s) |")
    print("|---|---|---|---|")
    rows = []
    for label, value in ((f"MALLOC_TRIM_THRESHOLD_={dask_value} (Dask's)", dask_value),
                         ("without it (training_env)", None)):
        r = in_subprocess(arch, repeat, value)
        rows.append(r["generation"])
        print(f"| {label} | {r['generation']:.2f} | {r['user']:.1f} | {r['sys']:.1f} |")
    print(f"\nratio: {rows[0] / rows[1]:.2f}x")


def windows(arch: str, repeat: int) -> None:
    """Section 2: sequence_mean's windows against every state held."""
    import rnn.arch
    default, rnn.arch.CHUNK_FLOATS = rnn.arch.CHUNK_FLOATS, 2 ** 62     # as before 3
    try:
        t_whole, t_win, diff = flipflop_eval(arch, repeat)
    finally:
        rnn.arch.CHUNK_FLOATS = default
    print(f"\n2. the GA's loss on the flip-flop ({arch}, 2 runs x 50 members, "
          f"500 trials of 200 steps)\n")
    print("| evaluation | time (s) |")
    print("|---|---|")
    print(f"| every state held, trials repeated per member | {t_whole:.2f} |")
    print(f"| sequence_mean, its default window | {t_win:.2f} |")
    print(f"\nratio: {t_whole / t_win:.2f}x; largest relative difference of the losses: "
          f"{diff:.1e}")


def argparse_hidden():
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(main())
