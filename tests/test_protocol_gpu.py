"""experiments/protocol_gpu.sh, the prepared GPU run of the protocol experiment,
end to end on a tiny config (--smoke: any device, a temporary folder)."""
import os
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_protocol_gpu_script_smoke(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path)}
    r = subprocess.run(["bash", "experiments/protocol_gpu.sh", "--smoke"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "original protocol (all switches): bptt 2/2, ga 2/2" in r.stdout
    with tarfile.open(tmp_path / "protocol_networks.tar") as t:
        names = t.getnames()
    nets = [n for n in names if n.endswith(".pt")]
    assert len(nets) == 4 and all(n.startswith("./original/") for n in nets), names
    assert all(n[:-3] + ".json" in names for n in nets)
    bad = subprocess.run(["bash", "experiments/protocol_gpu.sh", "--fast"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
