"""experiments/gradient_alignment.py: known answers on hand-built networks,
the script end to end on tiny networks, bad input refused."""
import json

import torch

from helpers import run_script
from experiments.gradient_alignment import cosine, measure, rank_one_share
from rnn.model import RateRNN
from rnn.rng import Streams
from tasks import rdm


def test_rank_one_share_and_cosine_known_answers():
    f, v = torch.randn(6, generator=torch.Generator().manual_seed(0)), torch.arange(1., 7.)
    assert abs(rank_one_share(torch.outer(f, v)) - 1.0) < 1e-12
    assert abs(rank_one_share(torch.eye(5)) - 0.2) < 1e-12
    a = torch.tensor([1.0, 0.0])
    assert cosine(a, torch.tensor([3.0, 0.0])) == 1.0
    assert abs(cosine(a, torch.tensor([0.0, 2.0]))) < 1e-15
    assert cosine(a, -a) == -1.0


def test_with_no_recurrence_e_prop_is_the_exact_gradient_and_random_feedback_is_not():
    task = rdm(0.5, steps=60)
    m = RateRNN.init(Streams([4], 1), 1, hidden=12)
    m = m.replace(W_rec=torch.zeros_like(m.W_rec)).to(dtype=torch.float64)
    fig = measure(m, task, m.W_out[:, 0, :], seed=4, batches=1, trials=64)
    assert abs(fig["cos"] - 1.0) < 1e-9
    # the exact gradient is then f vᵀ itself: rank one, both factors aligned (up to sign)
    assert fig["rank1_share"] > 1 - 1e-9
    assert fig["feedback_cos"] > 1 - 1e-6 and fig["trace_cos"] > 1 - 1e-6
    B = torch.randn(1, 12, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert abs(measure(m, task, B, seed=4, batches=1, trials=64)["cos"]) < 0.99


def test_the_script_end_to_end_on_tiny_networks(models_tmp, tmp_path):
    for rule, seed in (("eprop", 1), ("rflo", 2)):
        r = run_script("train_models.py", f"xrdm-{rule}-v050_s{seed}", "--rule", rule, "--rdm",
                       "--hidden", "8", "--max-steps", "1", "--seed", str(seed), "--quiet",
                       models_dir=models_tmp)
        assert r.returncode == 0, r.stderr
    out = tmp_path / "A.md"
    r = run_script("experiments/gradient_alignment.py", "--tasks", "rdm", "--batches", "1",
                   "--trials", "16", "--out", out, models_dir=models_tmp, fresh=True)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout
    rows = json.loads((tmp_path / "alignment.json").read_text())["rows"]
    assert [(x["rule"], x["state"]) for x in rows] == [
        ("eprop", "initial"), ("eprop", "trained"), ("rflo", "initial"), ("rflo", "trained")]
    assert all(-1.0 <= x["cos"] <= 1.0 and 0.0 < x["rank1_share"] <= 1.0 for x in rows)
    text = out.read_text()
    assert "| RDM | eprop | initial | 1 | 0 |" in text and "| RDM | rflo | trained |" in text


def test_bad_input_is_one_line_exit_2(models_tmp):
    for argv, msg in ((["--batches", "0"], "--batches"), (["-v", "0.5"], "three digits"),
                      ([], "no finished")):
        r = run_script("experiments/gradient_alignment.py", *argv, models_dir=models_tmp)
        assert r.returncode == 2 and msg in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
