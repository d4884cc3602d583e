"""experiments/grid_gpu.sh, the prepared GPU run of any grid's missing
networks, end to end on a tiny copy of the universality grid (--smoke: any
device, a temporary folder): cells chosen per argument, a job planned twice
run once, the new networks packed for $OUT, bad arguments one line."""
import os
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = "experiments/grids/universality.toml"


def test_grid_gpu_script_trains_the_chosen_cells_once(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(["bash", "experiments/grid_gpu.sh", "--smoke",
                        f"{GRID}:cdi-ga-gru-*,flipflop-ga-lstm-*", f"{GRID}:cdi-ga-gru-*"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "2 job(s) to run, 1 at a time" in r.stdout
    assert "grid universality: 20 cells, 20 networks; 2 already trained" in r.stdout
    with tarfile.open(tmp_path / "universality_networks.tar") as t:
        nets = sorted(Path(n).name for n in t.getnames() if n.endswith(".pt"))
    assert len(nets) == 2 and nets[0].startswith("cdi-ga-gru-") and \
        nets[1].startswith("flipflop-ga-lstm-")


def test_grid_gpu_script_refuses_bad_arguments_in_one_line():
    for args in (["--fast", GRID], [], ["experiments/grids/no_such.toml"]):
        bad = subprocess.run(["bash", "experiments/grid_gpu.sh", *args], cwd=ROOT,
                             capture_output=True, text=True)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, (args, bad.stderr)
