"""bench/gpu.sh --smoke: the prepared GPU script runs end to end on any device."""
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_smoke_runs_and_writes_its_table(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(["bash", "bench/gpu.sh", "--smoke", "--out", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((tmp_path / "gpu_smoke.json").read_text())
    from rnn.rules import RULES
    assert set(res["updates"]) == {f"{rule}/{P}" for rule in RULES for P in (1, 2)}
    assert all(v["batch_s"] > 0 for v in res["updates"].values())
    assert res["bptt_to_stop_rule"]["networks"] == 2 and res["ga_generations"]["runs"] == 2
    text = (tmp_path / "gpu_smoke.md").read_text()
    assert "| bptt | 2 |" in text and "GA: 2 generations" in text
    graphs = json.loads((tmp_path / "cuda_graph_smoke.json").read_text())
    assert [(g["rule"], g["P"]) for g in graphs] == [("bptt", 1), ("bptt", 2), ("eprop", 1),
                                                     ("eprop", 2)]
    assert all(g["eager_gradient_s"] > 0 for g in graphs)
    import torch
    if torch.cuda.is_available():
        assert all(g.get("equal") for g in graphs)
    else:
        assert all(g["note"] == "CUDA graphs need a GPU" for g in graphs)
    bad = subprocess.run(["bash", "bench/gpu.sh", "--fast"], cwd=ROOT, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "unknown argument" in bad.stderr
