"""docs/example.ipynb runs, top to bottom, on tiny settings (its cells executed
in one namespace, as a kernel would; TINY set to True)."""
import json
import os

import matplotlib

from helpers import ROOT


def test_the_example_notebook_runs(tmp_path, monkeypatch):
    nb = json.loads((ROOT / "docs" / "example.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert any("TINY = False" in c for c in cells)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RNN_MODELS_DIR", str(ROOT / "models"))
    matplotlib.use("Agg")
    ns: dict = {}
    for i, src in enumerate(cells):
        exec(compile(src.replace("TINY = False", "TINY = True"), f"cell {i}", "exec"), ns)
    assert set(ns["results"]) == {"topology", "svcca", "cka", "procrustes"}
    assert (tmp_path / "example_svcca_mds.png").stat().st_size > 1000
    assert ns["shipped"].rule == "bptt" and len(ns["bptt"]) == 3
    assert os.path.exists(os.path.join(ns["folder"], "bptt_0.pt"))
