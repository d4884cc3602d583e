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


NOTEBOOKS = ("example.ipynb", "paper.ipynb")


def _execute():
    import importlib.util
    spec = importlib.util.spec_from_file_location("execute", ROOT / "docs" / "execute.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_committed_notebooks_carry_their_outputs():
    """Read, not run, by most visitors: every code cell of each committed
    notebook has been executed and shows what it produced, figures included."""
    for name in NOTEBOOKS:
        nb = json.loads((ROOT / "docs" / name).read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c["outputs"] and c["execution_count"] for c in code), name
        assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), name
        assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"]), name
        # executed at full size, not at the tests' tiny settings
        assert any("TINY = False" in "".join(c["source"]) for c in code), name


def test_the_paper_notebook_runs_and_writes_its_outputs(tmp_path):
    execute = _execute()
    assert execute.main(["--tiny", "--out", str(tmp_path), str(ROOT / "docs" / "paper.ipynb")]) == 0
    nb = json.loads((tmp_path / "paper.ipynb").read_text())
    text = "".join("".join(o.get("text", [])) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c["outputs"])
    for claim in ("claim 1:", "claim 2:", "claim 3:"):
        assert claim in text
    assert "ncdi2-bptt-v010-original_s30000_000" in text and "fixed points" in text
    figures = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(figures) == 2


def test_a_failing_cell_leaves_the_notebook_unchanged(tmp_path, capsys):
    execute = _execute()
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": ["1 / 0\n"]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    f = tmp_path / "bad.ipynb"
    f.write_text(json.dumps(nb))
    before = f.read_bytes()
    assert execute.main([str(f)]) == 1
    assert "code cell 1 raised ZeroDivisionError" in capsys.readouterr().err
    assert f.read_bytes() == before
