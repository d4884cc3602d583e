#!/usr/bin/env python
"""Fixed points and population trajectories of one trained network.

    python analyze_dynamics.py bptt_0050 large     # attractors under large static inputs
    python analyze_dynamics.py bptt_0050 sparse    # attractors near zero input

Finds every fixed point of the network under the chosen static input set
(cached in models/NAME_fixed_points_SET.npz), then draws, per context:
trajectories of noisy trials in the first two PCs (early / middle / late part
of the trial, coloured by choice) with the stable fixed points coloured by
their input and the slow points of the zero input; the attractors alone; PC1
against time for several evidence strengths; and the psychometric curve.
"""
from __future__ import annotations

import sys

import numpy as np

from rnn import validate as V
from rnn.errors import UserError
from rnn.cli import Parser, add_output_args, finish, run_cli
from rnn.io import ensure_writable, load_model, models_dir

SETS = ("large", "small", "sparse")


def build_parser() -> Parser:
    p = Parser(prog="analyze_dynamics.py",
               description="Fixed points, attractor landscape and trajectories of a trained "
                           "network in the models folder. Figures are PNG files in that folder.",
               epilog="Example: python analyze_dynamics.py bptt_0050 large")
    p.add_argument("name", help="model name (a file NAME.pt in the models folder)")
    p.add_argument("inputs", metavar="{large,small,sparse}",
                   help="static input set: large (far from 0), small (21 values near 0), "
                        "sparse (11 values near 0)")
    p.add_argument("--N", type=int, default=None,
                   help="accepted for compatibility with the original; the task is read from "
                        "the model file (an N that disagrees with it is an error)")
    p.add_argument("--recompute", action="store_true",
                   help="recompute the fixed points and the psychometric curve even if caches for "
                        "these weights exist")
    p.add_argument("--no-psychometric", action="store_true",
                   help="skip the psychometric curve (2000 trials per level and context)")
    p.add_argument("--trials", type=int, default=2000, metavar="K",
                   help="trials per evidence level for the psychometric curve (default 2000)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the noisy trials and the random solver starts (default 0)")
    add_output_args(p, quiet="print only the files written")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.inputs not in SETS:
        raise UserError(f"unknown input set {args.inputs!r}: choose large, small or sparse")
    V.integer(args.trials, "--trials", 1)
    V.integer(args.seed, "--seed", 0, 2 ** 32 - 1)
    from rnn import plotting as plots
    plots.use_backend(args.show)
    from rnn.analysis.dynamics import cached_fixed_points, cached_psychometric, fit_pca, trajectories
    from rnn.analysis.fixed_points import SolverConfig

    directory = models_dir(args.models_dir)
    ensure_writable(directory, len(args.name))
    lm = load_model(args.name, directory)
    task = lm.task
    if not args.no_psychometric and not getattr(task, "sequence", False):
        from rnn.analysis.dynamics import psychometric_bytes
        from rnn.sizing import require
        require(psychometric_bytes(task, lm.model.hidden, args.trials),
                f"the psychometric curve at --trials {args.trials}",
                hint="use fewer --trials (or --no-psychometric)")
    if args.N is not None and (not task.cued or task.n_channels != args.N):
        raise UserError(f"--N {args.N} disagrees with the model, which was trained on "
                        f"{task.describe()}; leave --N out")
    model = lm.model
    say = (lambda *a, **k: None) if args.quiet else print
    arch = getattr(model, "arch", None)
    say(f"{args.name}: {lm.rule}{' ' + arch if arch else ''} network, {task.describe()}")
    n_static = len(task.static_inputs(args.inputs).values)
    say(f"fixed points under the {args.inputs} inputs ({n_static} static inputs): reading the "
        f"cache or solving ...", flush=True)
    fp, fresh, fp_path = cached_fixed_points(model, task, args.name, args.inputs, directory,
                                             args.recompute, SolverConfig(seed=args.seed))
    say(f"fixed points under the {args.inputs} inputs: {fp.summary()}"
        + ("" if fresh else " (cached)"))
    written = [str(fp_path)] if fresh else []
    if getattr(task, "sequence", False):
        from tasks.flipflop import FlipFlopTask        # the one dispatch, as compare's
        figures = flipflop_figures if isinstance(task, FlipFlopTask) else gym_figures
        written += figures(args, model, task, fp, directory, say)
        return finish(written, args.show)
    suffix = (lambda k: "") if task.n_contexts == 1 else (lambda k: f"_ctx{k}")
    levels = np.array([-1, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1.0]) * task.mean
    dt = model.dt

    for k in range(task.n_contexts):
        ctx_title = "" if task.n_contexts == 1 else f" — context {k}"
        tr = trajectories(model, task, k, levels, per_level=8, seed=args.seed)
        pca = fit_pca(tr.states)
        pc = pca.project(tr.states)
        sel = fp.context == k
        fp_pc = pca.project(fp.xstar[sel])
        # every input set contains the zero input: its slow points
        z_sel = (fp.slow_context == k) & (np.abs(fp.slow_evidence) < 1e-12)
        slow_pc = pca.project(fp.slow_xstar[z_sel]) if z_sel.any() else np.zeros((0, 3))
        norm = plots.input_norm(fp.evidence[sel]) if sel.any() else plots.input_norm(np.ones(1))

        # 1. trajectories: early / middle / late
        fig, axes = plots.new_figure(3, 1, width=4.0, height=3.8, sharex=True, sharey=True)
        T = task.steps
        windows = [("early", 0, T // 3), ("middle", T // 3, 2 * T // 3), ("late", 2 * T // 3, T)]
        for ax, (lab, a, b) in zip(axes[0], windows):
            mask = (tr.steps > a) & (tr.steps <= b)
            plots.plot_trajectories(ax, pc[..., :2], tr.choice, mask,
                                title=f"{lab} (steps {a}–{b})")
            plots.plot_fixed_points(ax, fp_pc, fp.evidence[sel], fp.is_stable[sel], norm,
                                show_unstable=False)
            plots.plot_slow_points(ax, slow_pc)
            plots.label_pcs(ax, pca)
        axes[0, 0].plot([], [], color=plots.CHOICE_COLORS[1.0], label="choice +")
        axes[0, 0].plot([], [], color=plots.CHOICE_COLORS[-1.0], label="choice −")
        axes[0, 0].legend(fontsize=7, frameon=False, loc="best")
        plots.add_input_colorbar(fig, axes[0], norm)
        fig.suptitle(f"{args.name}: trajectories and attractors ({args.inputs} inputs)"
                     f"{ctx_title}", fontsize=11)
        written.append(plots.save(fig, directory / f"{args.name}_{args.inputs}_trajectories"
                                               f"{suffix(k)}.png", keep_open=args.show))

        # 2. attractors alone (PC1-PC2 and PC1-PC3)
        fig, axes = plots.new_figure(2, 1, width=4.2, height=3.8)
        for ax, (a, b) in zip(axes[0], [(0, 1), (0, 2)]):
            plots.plot_fixed_points(ax, fp_pc[:, [a, b]], fp.evidence[sel], fp.is_stable[sel], norm)
            plots.plot_slow_points(ax, slow_pc[:, [a, b]] if len(slow_pc) else slow_pc)
            plots.label_pcs(ax, pca, a, b)
        axes[0, 0].legend(fontsize=7, frameon=False, loc="best")
        plots.add_input_colorbar(fig, axes[0], norm)
        n_st = int(fp.is_stable[sel].sum())
        fig.suptitle(f"{args.name}: {n_st} stable / {int(sel.sum()) - n_st} unstable fixed "
                     f"points ({args.inputs} inputs){ctx_title}", fontsize=11)
        written.append(plots.save(fig, directory / f"{args.name}_{args.inputs}_attractors"
                                               f"{suffix(k)}.png", keep_open=args.show))

        # 3. PC1 against time, condition averages
        mean_pc1 = np.stack([pc[tr.evidence == e, :, 0].mean(0) for e in levels])
        fig, axes = plots.new_figure(1, 1, width=5.2, height=3.6)
        plots.plot_pc1_time(axes[0, 0], tr.steps, mean_pc1, levels, dt)
        axes[0, 0].set_title(f"{args.name}: PC1 over the trial (mean of 8 trials){ctx_title}",
                             fontsize=10)
        written.append(plots.save(fig, directory / f"{args.name}_pc1_time{suffix(k)}.png",
                              keep_open=args.show))

    if not args.no_psychometric:
        from tqdm import tqdm
        psy, psy_fresh, psy_path = cached_psychometric(
            model, task, args.name, directory, args.trials, args.seed, args.recompute,
            progress=lambda it: tqdm(it, desc="psychometric curve", unit="chunk",
                                     disable=args.quiet))
        if psy_fresh:
            written.append(str(psy_path))
        else:
            say(f"psychometric curve: reusing {psy_path} (--recompute recomputes)")
        fig, axes = plots.new_figure(1, 1, width=5.0, height=3.8)
        plots.plot_psychometric(axes[0, 0], psy, None if task.n_contexts > 1 else ["RDM"])
        written.append(plots.save(fig, directory / f"{args.name}_psychometric.png",
                              keep_open=args.show))
        for k in range(task.n_contexts):
            mu0, s, lapse = psy.fit[k]
            say(f"psychometric fit{'' if task.n_contexts == 1 else f' (context {k})'}: "
                f"bias {mu0:+.4f}, slope {s:.4f}, lapse {lapse:.3f}")
    return finish(written, args.show)


def flipflop_figures(args, model, task, fp, directory, say) -> list[str]:
    """A flip-flop network: its fixed points (all at the zero input) among eight
    trials in the first PCs, the stable points coloured by the bits they hold,
    and one trial's outputs against the targets; its topology in one line."""
    import torch

    from rnn import plotting as plots
    from rnn.analysis.compare import flipflop_descriptor
    from rnn.analysis.dynamics import fit_pca, orbit_origin
    from rnn.protocol import X0_SCALE
    from rnn.rng import PROBE, Streams
    rng = Streams([args.seed], PROBE)
    tr = task.sample(8, rng)
    x0 = X0_SCALE * rng.normal(8, model.hidden)
    sim = model.simulate(tr.inputs, x0, keep="all")
    states = sim.states[:, 0].permute(1, 0, 2).numpy()              # [n, T, S]
    pca = fit_pca(states)
    st = np.asarray(fp.is_stable, bool)
    with torch.no_grad():
        z_fp = model.outputs(torch.as_tensor(fp.xstar[st], dtype=model.dtype)[None])[0]
    bits = (z_fp.numpy() > 0).astype(int)
    corners = bits @ (1 << np.arange(bits.shape[1])) if len(bits) else np.zeros(0, int)
    v, _ = flipflop_descriptor(fp, model)
    desc = "no fixed point" if v is None else (
        f"{int(v[0])} stable points holding {int(v[1])} of the 8 bit patterns; saddles with "
        f"1, 2, ≥3 unstable directions: {int(v[2])}, {int(v[3])}, {int(v[4])}")
    say(f"flip-flop topology: {desc}")
    say(f"score on 2000 fresh trials (seed {args.seed}): "
        f"{lag_summary_line(task.errors_by_lag(model, 2000, args.seed))}")
    periods, held_x = task.orbits_and_states(model)     # where the memories are held
    say(f"from behaviour: {held_summary(periods)}")
    if any(p not in (0, 1) for p in periods):
        lam = task.memory_exponents(model, held_x, periods)
        say(f"on the moving orbits: {exponent_summary(periods, lam)}")
        for k, v in enumerate(lam):
            if v is not None:
                say(f"  {origin_line(k, orbit_origin(fp, held_x[:, k].numpy(), model.dt))}")
    orbits = {k: pca.project(held_x[:, k].numpy()) for k, p in enumerate(periods)
              if p not in (0, 1)}
    fig, axes = plots.new_figure(2, 1, width=4.4, height=3.9)
    plots.plot_flipflop(axes[0], pca.project(states), pca.project(fp.xstar), st, corners, pca,
                        orbits)
    fig.suptitle(f"{args.name}: {desc}", fontsize=9)
    out = [plots.save(fig, directory / f"{args.name}_attractors.png", keep_open=args.show)]
    z = model.outputs(sim.states)[:, 0, 0].numpy()
    fig, axes = plots.new_figure(1, task.n_outputs, width=6.0, height=1.6, sharex=True)
    plots.plot_outputs(axes[:, 0], sim.steps.numpy(), z, tr.targets[:, 0, 0].numpy())
    fig.suptitle(f"{args.name}: one trial's outputs", fontsize=10)
    out.append(plots.save(fig, directory / f"{args.name}_outputs.png", keep_open=args.show))
    return out


def lag_summary_line(r: dict) -> str:
    """One line from FlipFlopTask.errors_by_lag: the score over every held step,
    then by the steps since a pulse ended."""
    from tasks.flipflop import lag_label
    bins = ", ".join(f"{lag_label(b['from'], b['to'])}: {b['score']:.3f}" for b in r["bins"]
                     if b["score"] is not None)
    c = r["crosstalk"]
    cross = "; ".join(f"{what}: {c[k]['score']:.3f}" for k, what in
                      (("near", "another bit pulsed within " f"{c['within']} steps"),
                       ("far", "none did")) if c[k]["score"] is not None)
    return (f"{r['score']:.3f} over every held step; by the steps since a pulse ended, {bins}"
            + (f"; {c['after']}+ steps after, {cross}" if cross else ""))


def held_summary(orbits: list[int]) -> str:
    """One line from FlipFlopTask.memory_orbits: how many of the 8 patterns are
    held, and where (fixed points, cycles, orbits with no period found)."""
    from tasks.flipflop import ORBIT_WINDOW
    held = [o for o in orbits if o != 0]
    where = [f"{held.count(1)} at fixed points"] if 1 in held else []
    where += [f"{held.count(p)} on a cycle of period {p}" for p in sorted(set(held)) if p > 1]
    if -1 in held:
        where.append(f"{held.count(-1)} on an orbit with no period up to {ORBIT_WINDOW} steps")
    return (f"holds {len(held)} of the 8 bit patterns for 2000 steps"
            + (f" ({', '.join(where)})" if where else ""))


def exponent_summary(orbits: list[int], exponents: list[float | None]) -> str:
    """One line from FlipFlopTask.memory_exponents: each moving memory's pattern
    (the signs of bits 1, 2, 3), its period and its largest Lyapunov exponent."""
    from rnn.analysis.dynamics import LYAPUNOV_STEPS, exponent_kind
    from tasks.flipflop import ORBIT_WINDOW, pattern_signs
    parts = []
    for k, (p, v) in enumerate(zip(orbits, exponents)):
        if v is None:
            continue
        signs = pattern_signs(k)
        where = f"period {p}" if p > 1 else f"no period up to {ORBIT_WINDOW}"
        parts.append(f"{signs} ({where}) {v:+.2g}, {exponent_kind(v)}")
    return (f"largest Lyapunov exponent per step over {LYAPUNOV_STEPS} steps: "
            + "; ".join(parts))


def origin_line(k: int, o) -> str:
    """One moving memory (pattern k) beside the fixed point nearest its centroid
    (rnn.analysis.dynamics.OrbitOrigin)."""
    from tasks.flipflop import pattern_signs
    signs = pattern_signs(k)
    return (f"{signs} turns {o.turn:.3f} rad a step (radius {o.radius:.3f}, "
            f"{100 * o.planar:.1f}% of its variance in 2 PCs) around a fixed point "
            f"{o.distance:.3f} away with {o.n_unstable} unstable direction"
            f"{'' if o.n_unstable == 1 else 's'}, its leading eigenvalue of modulus "
            f"{o.modulus:.4f} at angle {o.angle:.3f} rad")


def gym_figures(args, model, task, fp, directory, say) -> list[str]:
    """A neurogym network: its fixed points under the static inputs (coloured by
    their signed coherence) among 16 trials coloured by the correct choice, per
    context, in the first PCs; and one trial's action probabilities against the
    ground truth."""
    import torch

    from rnn import plotting as plots
    from rnn.analysis.dynamics import fit_pca
    from rnn.protocol import X0_SCALE
    from rnn.rng import PROBE, Streams
    rng = Streams([args.seed], PROBE)
    tr = task.sample(16, rng)
    x0 = X0_SCALE * rng.normal(16, model.hidden)
    with torch.no_grad():
        sim = model.simulate(tr.inputs, x0, keep="all")
        probs = torch.softmax(model.outputs(sim.states), -1)[:, 0].numpy()     # [T, n, A]
    states = sim.states[:, 0].permute(1, 0, 2).numpy()              # [n, T, S]
    live = tr.mask[:, 0].numpy().T > 0                               # [n, T] the trial's own steps
    pca = fit_pca(states[live][None])
    pc = pca.project(states)
    gt = tr.targets[:, 0].numpy().T                                  # [n, T]
    choice = np.where(gt.max(1) == 1, 1.0, -1.0)                     # the correct choice: 1 or 2
    norm = plots.input_norm(fp.evidence) if len(fp.evidence) else plots.input_norm(np.ones(1))
    out = []
    for k in range(task.n_contexts):
        sel = fp.context == k
        fig, axes = plots.new_figure(2, 1, width=4.2, height=3.8)
        for ax, (a, b) in zip(axes[0], [(0, 1), (0, 2)]):
            for i in range(len(pc)):
                ax.plot(pc[i, live[i], a], pc[i, live[i], b], lw=0.6, alpha=0.5,
                        color=plots.CHOICE_COLORS[choice[i]], zorder=1)
            fp_pc = pca.project(fp.xstar[sel]) if sel.any() else np.zeros((0, 3))
            plots.plot_fixed_points(ax, fp_pc[:, [a, b]], fp.evidence[sel], fp.is_stable[sel],
                                    norm)
            plots.label_pcs(ax, pca, a, b)
        axes[0, 0].plot([], [], color=plots.CHOICE_COLORS[1.0], label="trial: choice 1")
        axes[0, 0].plot([], [], color=plots.CHOICE_COLORS[-1.0], label="trial: choice 2")
        axes[0, 0].legend(fontsize=7, frameon=False, loc="best")
        plots.add_input_colorbar(fig, axes[0], norm, label="static input (signed coherence/100)")
        n_st = int(fp.is_stable[sel].sum())
        ctx = "" if task.n_contexts == 1 else f" — context {k}"
        fig.suptitle(f"{args.name}: {n_st} stable / {int(sel.sum()) - n_st} unstable fixed "
                     f"points ({args.inputs} inputs){ctx}", fontsize=10)
        suffix = "" if task.n_contexts == 1 else f"_ctx{k}"
        out.append(plots.save(fig, directory / f"{args.name}_{args.inputs}_attractors{suffix}.png",
                              keep_open=args.show))
    L = int(live[0].sum())
    onehot = np.eye(probs.shape[-1])[gt[0, :L]]
    fig, axes = plots.new_figure(1, probs.shape[-1], width=6.0, height=1.6, sharex=True)
    plots.plot_outputs(axes[:, 0], np.arange(L), probs[:L, 0], onehot)
    for a, ax in enumerate(axes[:, 0]):
        ax.set_ylabel("fixate" if a == 0 else f"choice {a}", fontsize=8)
        ax.set_ylim(-0.05, 1.05)                                     # probabilities
    fig.suptitle(f"{args.name}: one trial's action probabilities", fontsize=10)
    out.append(plots.save(fig, directory / f"{args.name}_outputs.png", keep_open=args.show))
    return out


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
