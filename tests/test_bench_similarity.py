"""bench/bench_similarity.py's network supply: the kept CDI networks, topped up
with weight-perturbed copies when fewer exist than asked for."""
import shutil

import torch

from rnn.io import DEFAULT_MODELS_DIR


def test_networks_are_topped_up_with_perturbed_copies(tmp_path, monkeypatch):
    from bench import bench_similarity
    cell = tmp_path / "experiments" / "networks" / "original"
    cell.mkdir(parents=True)
    for ext in ("json", "pt"):
        shutil.copy(DEFAULT_MODELS_DIR / f"bptt_s_000.{ext}", cell / f"bptt_s_000.{ext}")
    monkeypatch.setattr(bench_similarity, "ROOT", tmp_path)
    models, task = bench_similarity.networks(3)
    assert len(models) == 3 and task is not None
    d1 = (models[1].W_rec - models[0].W_rec).abs().max().item()
    assert 0 < d1 < 1e-2                                 # a copy, perturbed slightly
    assert not torch.equal(models[1].W_rec, models[2].W_rec)
    assert torch.equal(models[1].W_in, models[0].W_in)
