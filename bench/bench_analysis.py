#!/usr/bin/env python
"""Speed of the analyses (issues 5 and 6).

    python bench/bench_analysis.py MODEL            # a trained 50-unit network in models/
    python bench/bench_analysis.py MODEL --groups sample.txt

Prints: the time for the fixed points under the 'small' set (all inputs x 200
starts) and the number of distinct true roots, against 100 uniform starts
per input in [-5, 5]^50 (the original's scheme, solved by the same solver);
the wall time of `analyze_dynamics.py MODEL large` with all figures (cold
cache); the time of `svcca_analysis.py` on 20 networks (190 pairs; 20
perturbed copies of MODEL, so that only the analysis is timed); and of
`fixed_point_input_topology.py GROUPS` with cold fixed-point caches.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.common import ROOT, machine
from rnn.cli import Parser
from rnn.analysis.fixed_points import SolverConfig, find_fixed_points
from rnn.io.groups import read_groups
from rnn.io import load_model, models_dir, save_model


def run(args, env):
    t = time.perf_counter()
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr)
    return time.perf_counter() - t, r.stdout


def main():
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="the network whose single-network analysis is timed")
    ap.add_argument("--groups", default="sample.txt",
                    help="the groups file whose comparisons are timed (default sample.txt)")
    args = ap.parse_args()
    src = models_dir()
    lm = load_model(args.model, src)
    print(f"machine: {machine()}")
    print(f"model: {args.model} ({lm.rule}, {lm.task.describe()})")
    st = lm.task.static_inputs("small")
    find_fixed_points(lm.model, st.values[:2], cfg=SolverConfig(n_box=10, n_traj=10))  # warm-up
    t = time.perf_counter()
    fp = find_fixed_points(lm.model, st.values, st.evidence, st.context)
    t_small = time.perf_counter() - t
    t = time.perf_counter()
    ref = find_fixed_points(lm.model, st.values, st.evidence, st.context,
                            SolverConfig(n_box=100, n_traj=0, box=5.0))
    t_ref = time.perf_counter() - t
    print(f"fixed points, 'small' set ({len(st.values)} inputs x {int(fp.n_starts)} starts): "
          f"{t_small:.2f} s; {len(fp.xstar)} distinct roots "
          f"({int(fp.is_stable.sum())} stable), max ||F||inf {fp.residual.max():.1e}")
    print(f"  100 uniform starts per input in [-5, 5]^50, same solver: {t_ref:.2f} s; "
          f"{len(ref.xstar)} distinct roots")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "RNN_MODELS_DIR": str(tmp), "MPLBACKEND": "Agg"}
        for ext in ("pt", "json"):
            shutil.copy(src / f"{args.model}.{ext}", tmp)
        t_large, _ = run(["analyze_dynamics.py", args.model, "large", "--quiet"], env)
        print(f"analyze_dynamics.py {args.model} large, cold cache, all figures incl. the "
              f"psychometric curve: {t_large:.1f} s wall (incl. ~2 s Python/torch start-up)")
        # 20 networks: MODEL with small random perturbations of W_rec
        gen = torch.Generator().manual_seed(0)
        names = []
        for i in range(20):
            m = lm.model.replace(W_rec=lm.model.W_rec * (1 + 0.05 * torch.randn(
                lm.model.W_rec.shape, generator=gen)))
            save_model(f"net_{i:02d}", m, lm.meta, {}, tmp)
            names.append(f"net_{i:02d}")
        (tmp / "twenty.txt").write_text(f"A {' '.join(names[:10])}\nB {' '.join(names[10:])}\n")
        t_sv, _ = run(["svcca_analysis.py", "twenty.txt", "-reload", "--quiet"], env)
        print(f"svcca_analysis.py on 20 networks (190 pairs): {t_sv:.1f} s wall")
        groups = read_groups([args.groups], src)
        for n in groups.names:
            for ext in ("pt", "json"):
                shutil.copy(src / f"{n}.{ext}", tmp)
        shutil.copy(src / args.groups, tmp)
        t_top, out = run(["fixed_point_input_topology.py", args.groups, "--quiet"], env)
        print(f"fixed_point_input_topology.py {args.groups} ({len(groups.names)} networks, cold "
              f"caches): {t_top:.1f} s wall")
        print("  " + [l for l in out.splitlines() if "silhouette" in l][0])


if __name__ == "__main__":
    from rnn.cli import run_cli
    run_cli(lambda argv: main())
