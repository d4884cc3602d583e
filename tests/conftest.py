import os
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def models_tmp(tmp_path, monkeypatch):
    """An empty models folder, also exported for subprocesses."""
    d = tmp_path / "models"
    d.mkdir()
    monkeypatch.setenv("RNN_MODELS_DIR", str(d))
    return d
