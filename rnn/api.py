"""The tool from Python (a notebook): train, save, load, fixed points, compare, plot.

    from rnn import api
    nets = api.train("bptt", api.task("rdm"), seeds=range(3), max_steps=200)
    fp = api.fixed_points(nets[0], "large")          # stable and unstable points
    cmp = api.compare({"BPTT": nets, "e-prop": api.train("eprop", api.task("rdm"),
                       seeds=range(3), max_steps=200)}, metric="svcca")
    print(cmp.stats.fmt())                          # silhouette [95% CI], p
    api.plot(cmp, "svcca_mds.png")

Each function is the same code the scripts run (the scripts add caches,
progress bars and files); ``docs/api.md`` lists them and
``docs/example.ipynb`` runs them (the tests execute it on tiny settings).
Networks from :func:`train` and :func:`load` can be mixed freely.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from rnn.model import RateRNN
from tasks import DecisionTask


@dataclass
class Network:
    """One trained network: the model (P = 1), its task and how training ended."""
    name: str
    model: RateRNN
    task: DecisionTask
    rule: str
    seed: int
    status: str              # converged | budget | stalled | diverged
    steps: int
    accuracy: float


def task(name: str = "cdi", noise: float = 0.5, N: int | None = None,
         steps: int | None = None) -> DecisionTask:
    """'rdm', 'cdi' (N = 2) or 'ncdi' (give N), at input noise ``noise``;
    ``steps`` shortens the trials (tiny examples)."""
    from tasks import ncdi, rdm
    kw = {} if steps is None else {"steps": steps}
    if name == "rdm":
        return rdm(noise, **kw)
    if name in ("cdi", "ncdi"):
        return ncdi(2 if name == "cdi" else int(N), noise, **kw)
    raise ValueError(f"unknown task {name!r}: rdm, cdi or ncdi")


def train(rule: str, task: DecisionTask, seeds: Iterable[int] = (0,), protocol: str = "clean",
          max_steps: int | None = None, hidden: int = 50, device: str = "cpu",
          quiet: bool = True, name: str | None = None) -> list[Network]:
    """Train one network per seed with ``rule`` (any of rnn.rules.RULES), all as one
    population (each the network it would be alone), to the stop rule or the
    budget.  The same trainers, stop rule and protocols as train_models.py."""
    from rnn.protocol import Protocol
    from rnn.rules import get
    from rnn.training import StopConfig, ValidationSet, fit
    rec = get(rule)
    seeds = [int(s) for s in seeds]
    prot = dataclasses.replace(Protocol.named(protocol), hidden=hidden)
    cfg = rec.make_config(task, max_steps)
    if max_steps is None:
        cfg = dataclasses.replace(cfg, max_steps=prot.budget(rule, cfg.max_steps))
    tr = rec.make(cfg, task, seeds, device, protocol=prot)
    val = ValidationSet.make(task, seeds, tr.model.hidden, device, prot)
    stop = StopConfig.for_run(prot, rec.on_stall)
    res = fit(tr, val, cfg.max_steps, stop, quiet=quiet, unit=rec.unit)
    base = name or rule
    return [Network(f"{base}_{s}", tr.model.select(p).to("cpu"), task, rule, s, res.status[p],
                    res.steps_run[p], res.final_acc[p]) for p, s in enumerate(seeds)]


def save(net: Network, directory: str | Path) -> list[Path]:
    """Write NAME.pt and NAME.json into ``directory`` (readable by every script)."""
    from rnn.io import package_versions_and_command, save_model
    from rnn.rules import get
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    m = net.model
    meta = {"name": net.name, "rule": net.rule, "rule_name": get(net.rule).long_name,
            "task": net.task.to_dict(), "seed": net.seed, "status": net.status,
            "converged": net.status == "converged", "steps": net.steps,
            "final_accuracy": net.accuracy,
            "network": {"hidden": m.hidden, "activation": m.activation, "readout": m.readout,
                        "dt": m.dt, "clamp_idx": list(m.clamp_idx),
                        "clamp_val": list(m.clamp_val)},
            "source": "rnn.api.train", **package_versions_and_command()}
    return list(save_model(net.name, m, meta, {}, d))


def load(name: str, models_dir: str | Path | None = None) -> Network:
    """A saved network (checked as every script checks it)."""
    from rnn.io import load_model
    lm = load_model(name, models_dir)
    meta = lm.meta
    return Network(lm.name, lm.model, lm.task, lm.rule, int(meta.get("seed", -1)),
                   str(meta.get("status", "unknown")), int(meta.get("steps", 0) or 0),
                   float(meta.get("final_accuracy", float("nan")) or float("nan")))


def fixed_points(net: Network, inputs: str = "small"):
    """Fixed points under the static input set 'large', 'small' or 'sparse'
    (rnn.fixed_points.FixedPoints: xstar, stable, input values, residuals)."""
    from rnn.fixed_points import find_fixed_points
    st = net.task.static_inputs(inputs)
    return find_fixed_points(net.model, st.values, st.evidence, st.context)


@dataclass
class Comparison:
    """Networks compared under one metric: distances, groups, silhouette."""
    metric: str
    distances: np.ndarray          # [n, n]
    labels: list[str]              # the group of each network
    names: list[str]
    stats: object                  # rnn.compare.SilhouetteStats (silhouette, ci, p)


def compare(groups: dict[str, list[Network]], metric: str = "svcca", n_boot: int = 2000,
            seed: int = 0) -> Comparison:
    """Distances between every pair of networks under ``metric`` ('topology', the
    attractor input topology, or one of rnn.metrics.METRICS) and the silhouette of
    the groups with its 95% bootstrap interval and permutation p."""
    from rnn.compare import euclidean_distances, silhouette_stats, topology_descriptor
    from rnn.fixed_points import weights_hash
    from rnn.metrics import METRICS
    nets = [n for g in groups.values() for n in g]
    labels = [lab for lab, g in groups.items() for _ in g]
    if metric == "topology":
        vecs = [topology_descriptor(fixed_points(n, "small"), n.model)[0] for n in nets]
        keep = [i for i, v in enumerate(vecs) if v is not None]
        nets, labels = [nets[i] for i in keep], [labels[i] for i in keep]
        D = euclidean_distances(np.array([vecs[i] for i in keep]))
    elif metric in METRICS:
        from rnn.similarity import DSAOptions, analysis_of, similarity_distances
        from rnn.svcca import PairCache, SVCCAOptions
        opts = SVCCAOptions()
        cache = {metric: PairCache(analysis_of(metric, opts, 1.0, DSAOptions()))}
        res = similarity_distances([n.model for n in nets], [n.task for n in nets],
                                   [weights_hash(n.model) for n in nets], opts, [metric], cache)
        D = res[metric].distances
    else:
        raise ValueError(f"unknown metric {metric!r}: topology or one of {', '.join(METRICS)}")
    uniq = list(dict.fromkeys(labels))
    stats = silhouette_stats(D, [uniq.index(lab) for lab in labels], n_boot, n_boot, seed)
    return Comparison(metric, D, labels, [n.name for n in nets], stats)


def plot(cmp: Comparison, path: str | Path | None = None):
    """The networks' metric MDS coloured by group, the silhouette in the title;
    saved to ``path`` when given.  Returns the figure."""
    from rnn import plotting as P
    from rnn.compare import cluster_distances
    emb = cluster_distances(cmp.distances, cmp.labels).embedding
    fig, ax = P.new_figure()
    P.plot_groups_embedding(ax[0, 0], emb, cmp.labels, cmp.names,
                            f"{cmp.metric}: silhouette {cmp.stats.fmt()}")
    if path is not None:
        P.save(fig, path, keep_open=True)
    return fig


def simulate(net: Network, n_trials: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy trials of the network's task: states [T, n, H] and choices sign(z_T) [n]."""
    from rnn.protocol import X0_SCALE
    from rnn.rng import TRAIN, Streams
    rng = Streams([seed], TRAIN)
    tr = net.task.sample(n_trials, rng)
    x0 = X0_SCALE * rng.normal(n_trials, net.model.hidden)
    sim = net.model.simulate(tr.inputs, x0, keep="all")
    z = net.model.output(sim.x_last)
    return sim.states[:, 0].numpy(), torch.sign(z[0]).numpy()
