#!/usr/bin/env python
"""Wall and kernel (system) time of one network's whole fixed-point analysis,
per architecture: the universality grid's BPTT CDI network of seed 40000 of
each, the 'small' static inputs (rnn.api.fixed_points), with its count of
roots, which a change of speed must leave as it was.

    OMP_NUM_THREADS=1 python -m bench.bench_fixed_point_wall [rate vanilla gru lstm]

Run it at two commits (a worktree of each) to compare them; the system time
is the kernel's, mostly zeroing freshly mapped memory.
"""
import resource
import sys
import time

import torch

from bench.common import ROOT, machine
from rnn import api

NETWORKS = ROOT / "experiments" / "networks" / "universality"


def main(archs) -> int:
    torch.set_num_threads(1)
    print(f"machine: {machine()}")
    print("| network | wall (s) | system (s) | roots (stable) |\n|---|---|---|---|")
    for a in archs:
        name = ("cdi-bptt-v050-clean_s40000_000" if a == "rate"
                else f"cdi-bptt-{a}-v050-clean_s40000_000")
        net = api.load(name, NETWORKS)
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        fp = api.fixed_points(net)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        print(f"| {a} | {time.perf_counter() - t0:.1f} | {r1.ru_stime - r0.ru_stime:.1f} | "
              f"{len(fp.xstar)} ({int(fp.is_stable.sum())}) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["rate", "vanilla", "gru", "lstm"]))
