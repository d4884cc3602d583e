"""The shipped sample networks load, run, and still reach the accuracy their
JSON claims on a fresh validation set."""
import json

import pytest
import torch

from rnn.io.groups import read_groups
from rnn.io import DEFAULT_MODELS_DIR, load_model
from rnn.training import ValidationSet

SAMPLES = ["bptt_0050"] + read_groups(["sample.txt"], DEFAULT_MODELS_DIR).names


def test_sample_groups_file_lists_three_bptt_and_three_ga():
    g = read_groups(["sample.txt"], DEFAULT_MODELS_DIR)
    assert g.labels == ["BPTT", "GA"] and [len(m) for m in g.members] == [3, 3]
    for lab, members in zip(g.labels, g.members):
        for n in members:
            assert load_model(n, DEFAULT_MODELS_DIR).rule == lab.lower()


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_reaches_its_claimed_accuracy_on_fresh_trials(name):
    lm = load_model(name, DEFAULT_MODELS_DIR)
    meta = json.loads((DEFAULT_MODELS_DIR / f"{name}.json").read_text())
    assert meta == lm.meta and meta["converged"] and meta["task"]["name"] == "rdm"
    val = ValidationSet.make(lm.task, [987654], lm.model.hidden, "cpu")   # a fresh set
    acc = float(val.accuracy(lm.model, torch.tensor([0]))[0])
    # 2000 trials: binomial standard error ~0.006; allow 4 of them
    assert acc >= meta["final_accuracy"] - 0.025
    assert acc >= 0.88


def test_samples_are_small():
    total = sum(p.stat().st_size for p in DEFAULT_MODELS_DIR.glob("*")
                if p.suffix in (".pt", ".json") and p.stem in SAMPLES)
    assert total < 1_000_000
