"""How many networks fit in one batch on a device.

``train_models.py --count C`` trains C networks; when they would not fit in the
device's free memory at once, it trains them in consecutive batches (a network
is the same in any batch: its random streams are its own).  The memory of one
more network in an update, per rule (float32, T steps, n trials, H units, I
inputs), fitted to the peak memory bench/bench_memory.py measured per extra
network on the CDI task at 50 units (CPU, peak RSS; P = 1 against P = 4):

    bptt   1.15 * T * n * H floats (each step's states kept for the backward
           pass)                                          measured 86 MB
    ga     2 * T * n * I + 5 * G * n * H floats (the batch's inputs, the G
           members' states)                               measured 21 MB
    ff     140 * T * H floats (trial records, teacher, RLS) measured 20 MB
    heb    4 * T * n * H floats (the eligibility histories Δx³ and r³, the
           perturbations) plus the inputs                 measured 66 MB
"""
from __future__ import annotations

import os

FLOAT = 4
MEMORY_FRACTION = 0.6  # of the free memory one batch may use


def bytes_per_network(rule: str, task, hidden: int, cfg) -> int:
    """Estimated memory of one more network in an update (see the module doc)."""
    T, I = task.steps, task.n_inputs
    if rule == "bptt":
        return int(1.15 * T * cfg.batch * hidden * FLOAT)
    if rule == "ga":
        return int((2 * T * cfg.batch * I + 5 * cfg.population * cfg.batch * hidden) * FLOAT)
    if rule == "heb":
        return int((4 * T * cfg.batch * hidden + T * cfg.batch * I) * FLOAT)
    if rule == "ff":
        return int(140 * T * hidden * FLOAT)
    raise ValueError(f"unknown rule {rule!r}")


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
                       limit: int | None = None) -> int:
    """How many of ``requested`` networks to train at once on ``device``: as many
    as fit in MEMORY_FRACTION of its free memory (at least 1), or ``limit``."""
    fit = int(MEMORY_FRACTION * free_memory(device) // max(1, bytes_per_network(
        rule, task, hidden, cfg)))
    n = max(1, min(requested, fit))
    return min(n, limit) if limit else n
