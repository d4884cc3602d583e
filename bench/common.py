"""Helpers shared by the benchmark scripts (run them from the repository root)."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median_time(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine() -> str:
    import os
    import platform

    import torch

    from rnn.io import cpu_model
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.machine()} {cpu_model()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), {dev}")


def train_to_stop(rule: str, task, seed: int, device="cpu", max_steps=None):
    """Train one network with ``rule`` to the stop rule; return (FitResult, trainer)."""
    from rnn.rules import get
    from rnn.training import ValidationSet, fit
    cfg = get(rule).make_config(task, max_steps)
    trainer = get(rule).make(cfg, task, [seed], device)
    val = ValidationSet.make(task, [seed], trainer.model.hidden, device)
    t = time.perf_counter()
    res = fit(trainer, val, cfg.max_steps, quiet=True)
    res.wall_time = time.perf_counter() - t
    return res, trainer
