"""tests/helpers.run_script runs a script in this process: the script sees its
own argv, environment and working directory, and this process gets its own
back (the other tests rely on it)."""
import os
import sys

import torch

from helpers import ROOT, run_script


def test_a_script_run_in_process_leaves_this_process_as_it_was(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = (dict(os.environ), list(sys.argv), os.getcwd(), torch.get_num_threads())
    r = run_script("train_models.py", "x", "--rdm", "--max-steps", "0", models_dir=tmp_path,
                   env_extra={"OMP_NUM_THREADS": "1", "RNN_TEST_MARK": "1"})
    assert r.returncode == 2 and r.stderr.startswith("train_models.py: error:"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert (dict(os.environ), list(sys.argv), os.getcwd(), torch.get_num_threads()) == before
    ok = run_script("train_models.py", "--help")
    assert ok.returncode == 0 and "--rule" in ok.stdout and ok.stderr == ""
    assert os.getcwd() == str(tmp_path) != str(ROOT)
