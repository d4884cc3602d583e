import os
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
# two threads (this project's machines have two cores), or $OMP_NUM_THREADS when
# set (e.g. 1 beside a one-thread background training: oversubscribed threads
# slow every small kernel many times over)
# Under pytest-xdist (the README's command runs one worker per core) each worker
# and the scripts it starts use one thread.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture
def models_tmp(tmp_path, monkeypatch):
    """An empty models folder, also exported for subprocesses."""
    d = tmp_path / "models"
    d.mkdir()
    monkeypatch.setenv("RNN_MODELS_DIR", str(d))
    return d
