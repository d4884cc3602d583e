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

from rnn.errors import UserError
from rnn import validate as V
from rnn.model import RateRNN
from tasks import DecisionTask, FlipFlopTask

TASKS = (DecisionTask, FlipFlopTask)        # what api.task makes


@dataclass
class Network:
    """One trained network: the model (P = 1), its task and how training ended."""
    name: str
    model: RateRNN
    task: DecisionTask
    rule: str
    seed: int
    status: str              # converged | budget | stalled | diverged | interrupted
    steps: int
    accuracy: float


# ---- what enters through the API is checked as the command line checks it ---------
# (each problem a UserError, one line, before any work)

def _networks(nets, what: str) -> list["Network"]:
    nets = list(nets) if isinstance(nets, (list, tuple)) else nets
    if not isinstance(nets, list) or not nets or not all(isinstance(n, Network) for n in nets):
        raise UserError(f"{what} must be a non-empty list of api.Network (from api.train or "
                        f"api.load), got {type(nets).__name__}")
    for n in nets:
        _finite(n)
    return nets


def _finite(net: "Network") -> None:
    m = net.model
    names = m.tensors() if hasattr(m, "arch") else ("W_in", "W_rec", "W_out", "b")
    for k in names:
        if not bool(torch.isfinite(getattr(m, k)).all()):
            raise UserError(f"network {net.name!r}: {k} holds non-finite values (NaN or "
                            f"infinity); nothing can be computed from it")


def task(name: str = "cdi", noise: float | None = None, N: int | None = None,
         steps: int | None = None) -> DecisionTask:
    """A task of the task table (tasks/table.py): 'rdm', 'cdi' (N = 2), 'ncdi3',
    or 'ncdi' with N, or 'flipflop', or a neurogym task ('ngpdm', 'ngcdm'), at
    input noise ``noise`` (default: the task's, 0.5 for the decision tasks, 0 for
    the flip-flop, neurogym's sigma 1 for its tasks); ``steps`` shortens the
    trials (tiny examples; neurogym tasks keep their environment's timing)."""
    from tasks.table import parse
    noise = None if noise is None else V.noise(noise, "noise")
    kw = {} if steps is None else {"steps": V.steps(steps, "steps")}
    return parse(name, N, what="task").make(noise, **kw)


def train(rule: str, task: DecisionTask, seeds: Iterable[int] = (0,), protocol: str = "clean",
          max_steps: int | None = None, hidden: int = 50, device: str = "cpu",
          quiet: bool = True, name: str | None = None, arch: str = "rate") -> list[Network]:
    """Train one network per seed with ``rule`` (any of rnn.rules.RULES), all as one
    population (each the network it would be alone), to the stop rule or the
    budget.  The same trainers, stop rule and protocols as train_models.py;
    ``arch``: 'rate' (the paper's network), 'vanilla', 'gru' or 'lstm' (rnn.arch;
    BPTT and the GA train them)."""
    from rnn.io import check_name
    from rnn.protocol import Protocol
    from rnn.rules import check_hidden, get
    from rnn.run import RunPlan
    from rnn.training import fit
    get(rule)                       # an unknown rule is refused here
    if not isinstance(task, TASKS):
        raise UserError(f"task must be a task from api.task(...), got {type(task).__name__}")
    seeds = V.seed_list(seeds, "seeds")
    if protocol not in ("clean", "original"):
        raise UserError(f"unknown protocol {protocol!r}: clean or original")
    check_hidden(rule, V.integer(hidden, "hidden", 2))
    if max_steps is not None:
        max_steps = V.integer(max_steps, "max_steps", 1)
    device = V.device(device, "device")
    base = check_name(name or rule)
    for s in seeds:
        check_name(f"{base}_{s}")
    if not isinstance(arch, str):
        raise UserError(f"arch must be a string (rate, vanilla, gru, lstm), got {arch!r}")
    plan = RunPlan.make(rule, task, dataclasses.replace(Protocol.named(protocol), hidden=hidden),
                        max_steps=max_steps, arch=arch)
    plan.require_memory(len(seeds), f"{len(seeds)} network(s) of {hidden} units on "
                        f"{task.describe()}", device, "train fewer networks, units or "
                        "contexts at once")
    tr = plan.trainer(seeds, device)
    res = fit(tr, plan.validation(seeds, tr.model.hidden, device), plan.cfg.max_steps,
              plan.stop, quiet=quiet, unit=plan.unit)
    return [Network(f"{base}_{s}", tr.model.select(p).to("cpu"), task, rule, s, res.status[p],
                    res.steps_run[p], res.final_acc[p]) for p, s in enumerate(seeds)]


def save(net: Network, directory: str | Path, force: bool = False) -> list[Path]:
    """Write NAME.pt and NAME.json into ``directory`` (readable by every script);
    a network already there is only overwritten with ``force=True``."""
    from rnn.io import check_name, ensure_writable
    if not isinstance(net, Network):
        raise UserError(f"save takes an api.Network, got {type(net).__name__}")
    check_name(net.name)
    d = ensure_writable(Path(directory), len(net.name), what="the folder",
                        hint="(give another directory)")
    from rnn.io.store import NameLock
    with NameLock(d, [net.name], what="rnn.api.save") as lock:
        existing = [f for f in (d / f"{net.name}.pt", d / f"{net.name}.json") if f.exists()]
        if existing and not force:
            raise UserError(f"{existing[0]} already exists; give another name or save(..., "
                            f"force=True) to overwrite it")
        return _save_held(net, d, lock, force)


def _save_held(net: Network, d: Path, lock, force: bool) -> list[Path]:
    from rnn.io import save_model
    from rnn.run import identity, record
    meta = record(net.name, identity(net.rule, net.task, net.model), net.status, seed=net.seed,
                  steps=net.steps, accuracy=net.accuracy, settings={"source": "rnn.api.train"})
    # checked as api.load will check it, before anything is written
    return list(save_model(net.name, net.model, meta, {}, d, source=d / f"{net.name}.pt",
                           lock=lock, force=force))


def load(name: str, models_dir: str | Path | None = None) -> Network:
    """A saved network (checked as every script checks it)."""
    from rnn.io import load_model
    lm = load_model(name, models_dir)
    meta = lm.meta
    return Network(lm.name, lm.model, lm.task, lm.rule, int(meta.get("seed", -1)),
                   str(meta.get("status", "unknown")), int(meta.get("steps", 0) or 0),
                   float(meta.get("final_accuracy", float("nan")) or float("nan")))


def import_torch(rnn, readout, task: DecisionTask, name: str = "imported",
                 rule: str = "bptt") -> Network:
    """A researcher's own PyTorch network as an api.Network: ``rnn`` an
    ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (one layer, one direction), ``readout``
    its ``nn.Linear`` (the first output is the decision).  The same checks as
    ``import_model.py torch``; then every analysis here runs on it."""
    from rnn.io import check_name
    from rnn.io.importers import cell_from_state_dict
    if not isinstance(rnn, (torch.nn.RNN, torch.nn.GRU, torch.nn.LSTM)):
        raise UserError(f"rnn must be a torch.nn.RNN, GRU or LSTM, got {type(rnn).__name__}")
    if not isinstance(readout, torch.nn.Linear):
        raise UserError(f"readout must be a torch.nn.Linear, got {type(readout).__name__}")
    if not isinstance(task, TASKS):
        raise UserError(f"task must be a task from api.task(...), got {type(task).__name__}")
    from rnn.rules import get
    get(rule).check_arch("gru")              # a rule that trains these networks
    sd = {f"rnn.{k}": v for k, v in rnn.state_dict().items()}
    sd.update({f"readout.{k}": v for k, v in readout.state_dict().items()})
    model, _ = cell_from_state_dict(sd, f"the {type(rnn).__name__}", getattr(
        rnn, "nonlinearity", "tanh"), "readout", getattr(task, "n_outputs", 1))
    if model.n_inputs != task.n_inputs:
        raise UserError(f"the network has {model.n_inputs} inputs but {task.describe()} has "
                        f"{task.n_inputs}")
    return Network(check_name(name), model, task, rule, -1, "imported", 0, float("nan"))


def fixed_points(net: Network, inputs: str = "small"):
    """Fixed points under the static input set 'large', 'small' or 'sparse'
    (rnn.analysis.fixed_points.FixedPoints: xstar, stable, input values, residuals)."""
    from rnn.analysis.fixed_points import task_fixed_points
    if not isinstance(net, Network):
        raise UserError(f"fixed_points takes an api.Network, got {type(net).__name__}")
    _finite(net)
    if inputs not in ("large", "small", "sparse"):
        raise UserError(f"unknown static input set {inputs!r}: large, small or sparse")
    return task_fixed_points(net.model, net.task, inputs)


@dataclass
class Memories:
    """Where a flip-flop network holds each of the 2³ bit patterns (pattern k:
    bit b is + when (k >> b) & 1), pulsed once from the zero state and followed
    for 2000 steps of zero input (tasks.flipflop.FlipFlopTask.orbits_and_states)."""
    held: list[bool]                   # the outputs' signs still hold the pattern
    periods: list[int]                 # 0 not held, 1 at a fixed point, p on a p-cycle,
                                       # −1 on an orbit with no period up to 64 steps
    exponents: list[float | None]      # largest Lyapunov exponent per step of each
                                       # memory held off a fixed point (else None)
    kinds: list[str | None]            # contracting, quasi-periodic or chaotic
    origins: list | None = None        # with origins=True: each moving memory's
                                       # rnn.analysis.dynamics.OrbitOrigin (else None)


def _flip_flop(net, what: str) -> None:
    """The checks of a flip-flop analysis ``what``: an api.Network, finite, of the
    flip-flop."""
    if not isinstance(net, Network):
        raise UserError(f"{what} takes an api.Network, got {type(net).__name__}")
    _finite(net)
    if not isinstance(net.task, FlipFlopTask):
        raise UserError(f"{what} is the 3-bit flip-flop's analysis; network {net.name!r} "
                        f"was trained on {net.task.name}")


def memories(net: Network, origins: bool = False) -> Memories:
    """The flip-flop's behavioural ground truth for its fixed points: which
    patterns the network holds, whether at a fixed point or on a moving orbit,
    and what each orbit is (rnn.analysis.dynamics.largest_lyapunov).  With
    ``origins``, also the fixed point each moving memory turns around and its
    leading eigenvalue (rnn.analysis.dynamics.orbit_origin; this solves the
    network's fixed points, as :func:`fixed_points` does)."""
    from rnn.analysis.dynamics import exponent_kind, orbit_origin
    _flip_flop(net, "memories")
    if not isinstance(origins, bool):
        raise UserError(f"origins must be True or False, got {origins!r}")
    periods, x = net.task.orbits_and_states(net.model)
    lam = net.task.memory_exponents(net.model, x, periods)
    where = None
    if origins:
        fp = fixed_points(net)
        where = [None if v is None else orbit_origin(fp, x[:, k].numpy(), net.model.dt)
                 for k, v in enumerate(lam)]
    return Memories([p != 0 for p in periods], periods, lam,
                    [None if v is None else exponent_kind(v) for v in lam], where)


def errors_by_lag(net: Network, n_trials: int = 2000, seed: int = 0) -> dict:
    """Where a flip-flop network's errors lie in time, on ``n_trials`` fresh trials
    (tasks.flipflop.FlipFlopTask.errors_by_lag): {"score": over every held
    (step, bit) pair, "bins": [{"from", "to", "score", "share"}]} by the steps
    since that bit's last pulse ended (1–5, 6–10, 11–20, 21 and on; "to" None:
    no end), and "crosstalk": the last bin's score where another bit pulsed
    within 10 steps ("near") and where none did ("far").  The numbers
    analyze_dynamics.py prints for the same seed."""
    _flip_flop(net, "errors_by_lag")
    n_trials = V.integer(n_trials, "n_trials", 1)
    seed = V.integer(seed, "seed", 0, V.SEED_LIMIT - 1)
    return net.task.errors_by_lag(net.model, n_trials, seed)


@dataclass
class Comparison:
    """Networks compared under one metric: distances, groups, silhouette."""
    metric: str
    distances: np.ndarray          # [n, n]
    labels: list[str]              # the group of each network
    names: list[str]
    stats: object                  # rnn.analysis.compare.SilhouetteStats (silhouette, ci, p)


def compare(groups: dict[str, list[Network]], metric: str = "svcca", n_boot: int = 2000,
            seed: int = 0) -> Comparison:
    """Distances between every pair of networks under ``metric`` ('topology', the
    attractor input topology, or any metric of rnn.analysis.metrics.REGISTRY) and the silhouette of
    the groups with its 95% bootstrap interval and permutation p."""
    from rnn.analysis.compare import compare_groups
    from rnn.analysis.fixed_points import weights_hash
    from rnn.analysis.metrics import REGISTRY
    if not isinstance(groups, dict) or len(groups) < 2:
        raise UserError("compare needs a dict of at least two groups: {label: [networks]}")
    groups = {str(lab): _networks(g, f"group {lab!r}") for lab, g in groups.items()}
    if metric not in REGISTRY:
        raise UserError(f"unknown metric {metric!r}: one of {', '.join(REGISTRY)}")
    n_boot = V.integer(n_boot, "n_boot", 1)
    seed = V.integer(seed, "seed", 0, V.SEED_LIMIT - 1)
    nets = [n for g in groups.values() for n in g]
    labels = [lab for lab, g in groups.items() for _ in g]
    keys = [weights_hash(n.model) for n in nets]
    if len(set(keys)) < len(keys):
        i = next(i for i, k in enumerate(keys) if keys.index(k) != i)
        raise UserError(f"network {nets[i].name!r} ({labels[i]}) has the weights of "
                        f"{nets[keys.index(keys[i])].name!r} ({labels[keys.index(keys[i])]}): "
                        f"each network can stand in one place only")
    kinds = {(n.task.name, n.task.n_inputs) for n in nets}
    if len(kinds) > 1:
        raise UserError(f"networks of different tasks cannot be compared: "
                        f"{', '.join(sorted(k for k, _ in kinds))}")
    res = compare_groups(nets, labels, [metric], keys=keys, n_boot=n_boot, seed=seed)[metric]
    return Comparison(metric, res.distances, res.labels, res.names, res.stats)


def plot(cmp: Comparison, path: str | Path | None = None):
    """The networks' metric MDS coloured by group, the silhouette in the title;
    saved to ``path`` when given.  Returns the figure."""
    from rnn import plotting as plots
    from rnn.analysis.compare import cluster_distances
    emb = cluster_distances(cmp.distances, cmp.labels).embedding
    fig, ax = plots.new_figure()
    plots.plot_groups_embedding(ax[0, 0], emb, cmp.labels, cmp.names,
                            f"{cmp.metric}: silhouette {cmp.stats.fmt()}")
    if path is not None:
        plots.save(fig, path, keep_open=True)
    return fig


def simulate(net: Network, n_trials: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy trials of the network's task: states [T, n, H] and choices sign(z_T) [n]."""
    from rnn.protocol import X0_SCALE
    from rnn.rng import TRAIN, Streams
    _networks([net], "net")
    n_trials = V.integer(n_trials, "n_trials", 1)
    rng = Streams([V.integer(seed, "seed", 0, V.SEED_LIMIT - 1)], TRAIN)
    tr = net.task.sample(n_trials, rng)
    x0 = X0_SCALE * rng.normal(n_trials, net.model.hidden)
    sim = net.model.simulate(tr.inputs, x0, keep="all")
    z = net.model.output(sim.x_last)
    return sim.states[:, 0].numpy(), torch.sign(z[0]).numpy()
