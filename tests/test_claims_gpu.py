"""experiments/claims_gpu.sh, the prepared GPU run of the claims grids, end to
end on tiny copies of the grids (--smoke: any device, a temporary folder);
run_grid.py's --cells and --deadline, which it relies on."""
import os
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_claims_gpu_script_smoke(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(["bash", "experiments/claims_gpu.sh", "--smoke"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "grid claims: 4 cells, 4 networks; 4 already trained" in r.stdout
    assert "grid claims_high: 2 cells, 2 networks; 2 already trained" in r.stdout
    with tarfile.open(tmp_path / "claims_networks.tar") as t:
        nets = sorted(n for n in t.getnames() if n.endswith(".pt"))
    assert len(nets) == 6 and any("ncdi3-ga-" in n for n in nets) and \
        any("ncdi5-bptt-v010" in n for n in nets)
    bad = subprocess.run(["bash", "experiments/claims_gpu.sh", "--fast"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_run_grid_cells_filter_and_deadline(tmp_path, capsys):
    import pytest

    import run_grid
    from rnn.errors import UserError
    g = tmp_path / "g.toml"
    g.write_text('[grid]\nname = "dl"\nhidden = 8\nmax_steps = 2\nnetworks = 2\nchunk = 1\n'
                 '[[cells]]\ntask = "rdm"\nrule = ["bptt", "ga"]\n')
    with pytest.raises(UserError, match="no cell of dl matches"):
        run_grid.main([str(g), "--cells", "*-ff-*", "--models-dir", str(tmp_path / "m")])
    assert run_grid.main([str(g), "--cells", "*-ga-*", "--deadline", "0", "--workers", "1",
                          "--no-compare", "--models-dir", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "2 jobs to run" in out and out.count("not started (past the deadline)") == 2
    assert not list((tmp_path / "m").glob("*.pt"))
