"""Figures.  Every function draws on the axes it is given and returns the
figure; none calls ``show()``.  Scripts save the figures (Agg by default)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

CHOICE_COLORS = {1.0: "#b2182b", -1.0: "#2166ac"}      # positive choice red, negative blue
# (the same sense as the input colour map: positive evidence red)
INPUT_CMAP = "coolwarm"


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.6,
               **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False, **kw)
    return fig, axes


def input_norm(values: np.ndarray) -> Normalize:
    m = float(np.max(np.abs(values))) if len(values) else 1.0
    return Normalize(-m or -1.0, m or 1.0)


def plot_fixed_points(ax, pc: np.ndarray, values: np.ndarray, stable: np.ndarray, norm,
                      show_unstable: bool = True):
    """Stable points: filled circles coloured by their input; unstable: crosses."""
    cmap = plt.get_cmap(INPUT_CMAP)
    st = stable.astype(bool)
    if show_unstable and (~st).any():
        ax.scatter(pc[~st, 0], pc[~st, 1], c=cmap(norm(values[~st])), marker="x", s=36,
                   linewidths=1.5, zorder=4, label="unstable fixed point")
    if st.any():
        ax.scatter(pc[st, 0], pc[st, 1], c=cmap(norm(values[st])), marker="o", s=70,
                   edgecolors="k", linewidths=0.8, zorder=5, label="stable fixed point")
    return ax.figure


def plot_slow_points(ax, pc: np.ndarray):
    if len(pc):
        ax.scatter(pc[:, 0], pc[:, 1], marker="d", s=22, facecolors="none",
                   edgecolors="0.35", linewidths=0.9, zorder=3, label="slow point (u = 0)")
    return ax.figure


def plot_trajectories(ax, traj_pc: np.ndarray, choice: np.ndarray, step_mask: np.ndarray,
                      title: str = ""):
    """Single-trial trajectories [n, T', 2] over the steps selected by
    ``step_mask``, coloured by the network's choice."""
    for tr, ch in zip(traj_pc, choice):
        seg = tr[step_mask]
        if len(seg) > 1:
            ax.plot(seg[:, 0], seg[:, 1], color=CHOICE_COLORS.get(float(ch), "0.5"), lw=0.7,
                    alpha=0.55, zorder=2)
            ax.plot(seg[-1, 0], seg[-1, 1], "o", ms=2.2,
                    color=CHOICE_COLORS.get(float(ch), "0.5"), alpha=0.8, zorder=2)
    ax.set_title(title, fontsize=10)
    return ax.figure


def label_pcs(ax, pca, a: int = 0, b: int = 1):
    ax.set_xlabel(f"PC{a + 1} ({100 * pca.explained[a]:.0f}% var.)")
    ax.set_ylabel(f"PC{b + 1} ({100 * pca.explained[b]:.0f}% var.)")


def add_input_colorbar(fig, axes, norm, label: str = "static input (cued evidence)"):
    sm = plt.cm.ScalarMappable(norm=norm, cmap=plt.get_cmap(INPUT_CMAP))
    sm.set_array([])
    return fig.colorbar(sm, ax=axes, shrink=0.85, label=label)


def plot_pc1_time(ax, steps: np.ndarray, pc1: np.ndarray, evidence: np.ndarray,
                  dt: float | None):
    """Condition-averaged PC1 [levels, T'] against time, coloured by signed evidence
    (``dt`` None: a discrete-time network, time in steps)."""
    norm = input_norm(evidence)
    cmap = plt.get_cmap(INPUT_CMAP)
    for e, y in zip(evidence, pc1):
        ax.plot(steps * (dt or 1), y, color=cmap(norm(e)), lw=1.6, label=f"{e:+.3f}")
    ax.set_xlabel(f"time (τ = 1; {int(steps[-1])} steps of dt {dt:g})" if dt else
                  f"step (a discrete-time network; {int(steps[-1])} steps)")
    ax.set_ylabel("PC1")
    ax.legend(title="evidence", fontsize=7, title_fontsize=8, ncol=2, frameon=False)
    return ax.figure


def plot_psychometric(ax, psy, context_labels=None):
    """Fraction of positive choices with the fitted sigmoid, one curve per context."""
    colors = plt.get_cmap("tab10")
    fine = np.linspace(psy.levels.min(), psy.levels.max(), 400)
    for k in range(psy.fraction.shape[0]):
        lab = context_labels[k] if context_labels else f"context {k}"
        ax.plot(psy.levels, psy.fraction[k], "o", color=colors(k), ms=4, label=lab)
        if np.all(np.isfinite(psy.fit[k])):
            from rnn.analysis.dynamics import sigmoid
            ax.plot(fine, sigmoid(fine, *psy.fit[k]), color=colors(k), lw=1.3)
    ax.axhline(0.5, color="0.8", lw=0.8, zorder=0)
    ax.axvline(0.0, color="0.8", lw=0.8, zorder=0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("signed evidence of the cued input")
    ax.set_ylabel("fraction of positive choices")
    ax.set_title(f"psychometric curve ({psy.n_per_level} trials per level)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return ax.figure


def save(fig, path, keep_open: bool = False) -> str:
    """Write ``fig`` to ``path`` (atomically) and close it unless ``keep_open``."""
    from pathlib import Path

    from rnn.io import atomic_write
    path = Path(path)
    atomic_write(path, lambda f: fig.savefig(f, format=path.suffix.lstrip(".") or "png",
                                             dpi=130, bbox_inches="tight"))
    if not keep_open:
        plt.close(fig)
    return str(path)


def use_backend(show: bool) -> None:
    """Headless (Agg) unless windows were asked for."""
    import matplotlib
    if not show:
        matplotlib.use("Agg", force=True)


GROUP_COLORS = plt.get_cmap("tab10")


MARKERS = "osD^vP*Xph"


def plot_groups_embedding(ax, emb: np.ndarray, labels: list[str], names: list[str],
                          title: str, annotate: bool = True, shapes: list[str] | None = None,
                          groups: list[str] | None = None, kinds: list[str] | None = None,
                          legend: bool = True):
    """A 2-D embedding of networks, coloured by group; ``shapes``, a second label
    per network (e.g. the learning rule beside the architecture), by marker.
    ``groups`` and ``kinds`` fix the order of the colours and markers (so that
    panels of different networks agree), else the labels' order of appearance."""
    uniq = list(groups) if groups is not None else list(dict.fromkeys(labels))
    if shapes is None:
        kinds = [None]
    elif kinds is None:
        kinds = list(dict.fromkeys(shapes))
    for gi, g in enumerate(uniq):
        for ki, k in enumerate(kinds):
            sel = [i for i, lab in enumerate(labels) if lab == g and
                   (k is None or shapes[i] == k)]
            if sel:
                ax.scatter(emb[sel, 0], emb[sel, 1], s=55, color=GROUP_COLORS(gi % 10),
                           marker=MARKERS[ki % len(MARKERS)], edgecolors="k",
                           linewidths=0.5, zorder=3, label=g if k is None else None)
    if shapes is not None:       # one legend entry per colour and one per marker
        for gi, g in enumerate(uniq):
            ax.scatter([], [], s=55, color=GROUP_COLORS(gi % 10), edgecolors="k",
                       linewidths=0.5, label=g)
        for ki, k in enumerate(kinds):
            ax.scatter([], [], s=55, color="white", marker=MARKERS[ki % len(MARKERS)],
                       edgecolors="k", linewidths=0.8, label=k)
    if annotate and len(names) <= 30:
        for (x, y), n in zip(emb, names):
            ax.annotate(n, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points",
                        color="0.3")
    # networks with identical descriptors or distances land on one spot: say how many
    scale = float(np.ptp(emb)) or 1.0
    spots: dict[tuple, list[int]] = {}
    for i, key in enumerate(map(tuple, np.round(emb / (scale * 1e-6)).astype(np.int64))):
        spots.setdefault(key, []).append(i)
    for idx in spots.values():
        if len(idx) > 1:
            counts = {g: sum(labels[i] == g for i in idx) for g in uniq}
            what = ", ".join(f"{c} {g}" for g, c in counts.items() if c)
            ax.annotate(f"×{len(idx)} ({what})", tuple(emb[idx[0]]), fontsize=7,
                        xytext=(5, -10), textcoords="offset points", color="0.2")
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(fontsize=8, frameon=False)
    return ax.figure


def plot_distance_heatmap(ax, D: np.ndarray, labels: list[str], names: list[str],
                          title: str, cbar_label: str):
    """Distance matrix with lines at the group boundaries."""
    im = ax.imshow(D, cmap="viridis", interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, shrink=0.85, label=cbar_label)
    bounds = [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    for b in bounds:
        ax.axhline(b - 0.5, color="w", lw=1.5)
        ax.axvline(b - 0.5, color="w", lw=1.5)
    if len(names) <= 40:
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
    # group labels at the block centres
    starts = [0] + bounds
    ends = bounds + [len(labels)]
    for s, e in zip(starts, ends):
        ax.text((s + e - 1) / 2, 1.01, labels[s], ha="center", va="bottom", fontsize=8,
                fontweight="bold", transform=ax.get_xaxis_transform())
    ax.set_title(title, fontsize=10, pad=18)
    return ax.figure


WITHIN_MARKERS = "sD^vP*Xh"


def plot_metric_silhouettes(ax, rows: list[dict], levels: list[str] | None = None):
    """Silhouette of the groups under each metric, with its 95% bootstrap
    interval (rows: similarity_analysis.py's summary rows).  A row's optional
    ``within`` ({level: silhouette or None}) adds the silhouette among the
    networks of one level of another factor at a time, as hollow markers just
    below the row, one colour and shape per level (``levels`` fixes their order
    across panels; labelled for a legend)."""
    ys = np.arange(len(rows))[::-1]
    levels = levels or sorted({k for r in rows for k in (r.get("within") or {})})
    cmap, shown = plt.get_cmap("tab10"), set()
    for y, r in zip(ys, rows):
        for k, v in (r.get("within") or {}).items():
            if v is None:
                continue
            i = levels.index(k)
            ax.plot([v], [y - 0.28], WITHIN_MARKERS[i % len(WITHIN_MARKERS)], ms=5,
                    mfc="none", mec=cmap(i % 10), mew=1.2, zorder=4,
                    label=None if k in shown else f"within {k} only")
            shown.add(k)
        s = r["silhouette"]
        if s is None:
            continue
        ci = r.get("silhouette_interval_95")
        if ci:
            ax.plot(ci, [y, y], color="0.3", lw=2, solid_capstyle="butt")
        ax.plot([s], [y], "o", color="k", ms=6, zorder=3)
        p = r.get("silhouette_permutation_p")
        if p is not None:
            ax.annotate(f"p = {p:.2g}", (s, y), xytext=(0, 7), textcoords="offset points",
                        ha="center", fontsize=7, color="0.3")
    ax.axvline(0, color="0.6", lw=0.8, ls="--")
    ax.set_yticks(ys, [r["label"] for r in rows], fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("silhouette of the groups (95% bootstrap interval)")
    ax.set_title("metrics side by side", fontsize=10)
    return ax.figure


def plot_flipflop(axes, traj_pc: np.ndarray, fp_pc: np.ndarray, stable: np.ndarray,
                  corners: np.ndarray, pca, orbits: dict[int, np.ndarray] | None = None):
    """A flip-flop network in its first PCs (PC1–PC2, PC1–PC3 on two axes):
    trials in grey, stable fixed points coloured by the output pattern they hold
    (``corners``: an index 0…7 per stable point), unstable ones as crosses;
    ``orbits``: pattern index → the states [W, ≥3 PCs] where the network holds
    that pattern away from any fixed point, drawn as dots of its colour."""
    cmap = plt.get_cmap("tab10")
    st = stable.astype(bool)
    for ax, (a, b) in zip(axes, [(0, 1), (0, 2)]):
        for tr in traj_pc:
            ax.plot(tr[:, a], tr[:, b], color="0.6", lw=0.5, alpha=0.5, zorder=1)
        for i, (k, orb) in enumerate(sorted((orbits or {}).items())):
            ax.scatter(orb[:, a], orb[:, b], color=cmap(int(k) % 10), marker="D", s=18,
                       edgecolors="k", linewidths=0.4,
                       zorder=3, label=None if i else "memory held on a moving orbit "
                                                      "(colour: its bits)")
        if (~st).any():
            ax.scatter(fp_pc[~st, a], fp_pc[~st, b], marker="x", s=30, color="k",
                       linewidths=1.2, zorder=4, label="unstable fixed point")
        if st.any():
            ax.scatter(fp_pc[st, a], fp_pc[st, b], c=[cmap(int(c) % 10) for c in corners],
                       marker="o", s=70, edgecolors="k", linewidths=0.8, zorder=5,
                       label="stable fixed point (colour: the bits it holds)")
        label_pcs(ax, pca, a, b)
    axes[0].legend(fontsize=7, frameon=False, loc="best")
    return axes[0].figure


def plot_outputs(axes, steps: np.ndarray, z: np.ndarray, target: np.ndarray):
    """One trial's outputs [T, B] against their targets, one axis per bit."""
    for b, ax in enumerate(axes):
        ax.plot(steps, target[:, b], color="0.5", lw=2, label="target")
        ax.plot(steps, z[:, b], color="#b2182b", lw=1, label="output")
        ax.set_ylabel(f"bit {b + 1}")
        ax.set_ylim(-1.6, 1.6)
    axes[-1].set_xlabel("step")
    axes[0].legend(fontsize=7, frameon=False, ncol=2, loc="upper right")
    return axes[0].figure
