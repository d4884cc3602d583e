"""How many networks fit in one batch on a device.

``train_models.py --count C`` trains C networks; when they would not fit in the
device's free memory at once, it trains them in consecutive batches (a network
is the same in any batch: its random streams are its own).  The memory of one
more network in an update is each rule's ``memory`` in its record
(rnn/rules/__init__.py): floats (float32) per extra network, fitted to the peak memory
bench/bench_memory.py measured per extra network on the CDI task at 50 units
(CPU, peak RSS; P = 1 against P = 4), plus the network's validation set
(2000 trials' inputs and initial states), which the stop rule holds.

:func:`require` refuses, in one line, work that would not fit in memory at all
(a single network of an enormous size, a psychometric curve of 10⁹ trials, an
analysis of a model whose trials are 10⁵ steps long, a grid of 10¹² networks)
before anything is allocated.  It is called where the allocations happen —
:meth:`rnn.model.RateRNN.simulate`, :meth:`tasks.DecisionTask.build` and
``static_trials``, the grid loader — so every door (the scripts, the grid, the
API) passes through it.
"""
from __future__ import annotations

import os

FLOAT = 4
MEMORY_FRACTION = 0.6  # of the free memory one batch may use


# an update of a discrete-time architecture keeps more per step than the rate
# network's: autograd keeps each step's gates and their products (BPTT), a GA
# population's step holds the gates.  Multipliers of the rule's memory, counted
# from the tensors one step keeps (rnn.arch.CellRNN._step); bench/bench_arch.py
# measures the peak.
# (measured per network, BPTT on CDI: rate 89 MB, vanilla 287, gru 865, lstm 802)
ARCH_MEMORY = {"rate": 1.0, "vanilla": 3.5, "gru": 12.0, "lstm": 12.0}


def bytes_per_network(rule: str, task, hidden: int, cfg, arch: str = "rate") -> int:
    """Estimated memory of one more network in training: an update (the rule's
    record, scaled for a discrete-time architecture) and its validation set."""
    from rnn.rules import get
    from tasks import VALIDATION_TRIALS
    state = 2 * hidden if arch == "lstm" else hidden
    validation = VALIDATION_TRIALS * (task.steps * task.n_inputs + state)
    return int((ARCH_MEMORY[arch] * get(rule).memory(task, hidden, cfg) + validation) * FLOAT)


def gigabytes(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**29 else f"{n / 2**20:.0f} MB"


SMALL = 64 * 2**20     # below this, no check (reading the free memory would cost more)


def require(nbytes: float, what: str, device="cpu", hint: str = "",
            fraction: float = MEMORY_FRACTION) -> None:
    """UserError unless ``nbytes`` fit in ``fraction`` of ``device``'s free
    memory: the one sizing check before a large allocation (training's batches,
    every simulation and trial set, grid listings, the API).  Cheap when the
    request is small, so it sits in hot paths."""
    if nbytes < SMALL:
        return
    free = free_memory(device)
    if nbytes > fraction * free:
        from rnn.errors import UserError
        raise UserError(f"{what} needs about {gigabytes(nbytes)} of memory; {gigabytes(free)} "
                        f"is free on {device}{'; ' + hint if hint else ''}")


def free_memory(device) -> int:
    """Bytes free on ``device`` (a CUDA device's free memory, else the machine's
    available RAM)."""
    import torch
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def networks_per_batch(rule: str, task, hidden: int, cfg, device, requested: int,
                       limit: int | None = None, arch: str = "rate") -> int:
    """How many of ``requested`` networks to train at once on ``device``: as many
    as fit in MEMORY_FRACTION of its free memory (at least 1), or ``limit``."""
    fit = int(MEMORY_FRACTION * free_memory(device) // max(1, bytes_per_network(
        rule, task, hidden, cfg, arch)))
    n = max(1, min(requested, fit))
    return min(n, limit) if limit else n


def require_floats(count: float, what: str, device="cpu") -> None:
    """:func:`require` for ``count`` float32 values that must fit in the free
    memory at all (a simulation's states, a set of trials)."""
    require(count * FLOAT, what, device, "use fewer or shorter trials, or fewer networks",
            fraction=1.0)
