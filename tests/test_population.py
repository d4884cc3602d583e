import json

import torch

from helpers import run_script
from rnn.rules.fullforce import FFConfig, FFTrainer
from rnn.io.groups import read_groups
from rnn.rules.hebbian import HebbConfig, HebbTrainer
from rnn.io import load_model
from tasks import ncdi, rdm


def test_ff_network_in_population_matches_alone():
    task = rdm(0.5, steps=250)
    pop = FFTrainer(FFConfig(), task, [3, 4, 5], "cpu")
    alone = FFTrainer(FFConfig(), task, [4], "cpu")
    for _ in range(3):
        pop.step(torch.arange(3))
        alone.step(torch.tensor([0]))
    torch.testing.assert_close(pop.model.W_rec[1], alone.model.W_rec[0])
    torch.testing.assert_close(pop.model.W_out[1], alone.model.W_out[0])


def test_hebbian_network_in_population_matches_alone_and_stopping_is_local():
    task = ncdi(2, 0.5, steps=250)
    cfg = HebbConfig(batch=16, warmup=1)
    pop = HebbTrainer(cfg, task, [7, 8], "cpu")
    alone = HebbTrainer(cfg, task, [8], "cpu")
    for _ in range(3):
        pop.step(torch.arange(2))
        alone.step(torch.tensor([0]))
    torch.testing.assert_close(pop.model.W_rec[1], alone.model.W_rec[0])
    frozen = pop.model.W_rec[0].clone()
    pop.step(torch.tensor([1]))
    alone.step(torch.tensor([0]))
    assert torch.equal(pop.model.W_rec[0], frozen)
    torch.testing.assert_close(pop.model.W_rec[1], alone.model.W_rec[0])


def test_count_writes_each_network_and_a_groups_file(models_tmp):
    r = run_script("train_models.py", "bptt_pop", "-v", "0.5", "--rdm", "--count", "3",
                   "--max-steps", "2", "--seed", "20", "--quiet", models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    names = [f"bptt_pop_{i:03d}" for i in range(3)]
    g = read_groups(["bptt_pop.txt"], models_tmp)
    assert g.labels == ["bptt_pop"] and g.names == names
    for i, n in enumerate(names):
        meta = json.loads((models_tmp / f"{n}.json").read_text())
        assert meta["seed"] == 20 + i
        assert meta["population"] == {"name": "bptt_pop", "index": i, "count": 3,
                                      "first_seed": 20}
    # network 1 of the population is the network trained alone with seed 21
    r1 = run_script("train_models.py", "bptt_one", "-v", "0.5", "--rdm", "--max-steps", "2",
                    "--seed", "21", "--quiet", models_dir=models_tmp)
    assert r1.returncode == 0, r1.stderr
    a = load_model("bptt_pop_001", models_tmp).model.W_rec
    b = load_model("bptt_one", models_tmp).model.W_rec
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_count_in_batches_gives_the_same_networks(tmp_path):
    """--max-batch (and the memory-sized batches it overrides) splits a --count
    run into consecutive batches; every network equals the one-batch run's."""
    import json

    from helpers import run_script
    args = ["-v", "0.5", "--rdm", "--rule", "bptt", "--hidden", "8", "--max-steps", "3",
            "--count", "3", "--seed", "40", "--quiet"]
    one = {"OMP_NUM_THREADS": "1"}     # bit-identity needs the same thread count
    a = run_script("train_models.py", "pop", *args, "--models-dir", str(tmp_path / "a"),
                   env_extra=one)
    b = run_script("train_models.py", "pop", *args, "--max-batch", "2", "--models-dir",
                   str(tmp_path / "b"), env_extra=one)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    for i in range(3):
        wa = torch.load(tmp_path / "a" / f"pop_00{i}.pt", weights_only=True)["network"]
        wb = torch.load(tmp_path / "b" / f"pop_00{i}.pt", weights_only=True)["network"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa if isinstance(wa[k], torch.Tensor))
        meta = json.loads((tmp_path / "b" / f"pop_00{i}.json").read_text())
        assert meta["population"]["index"] == i and meta["seed"] == 40 + i
    assert (tmp_path / "b" / "pop.txt").read_text().split()[1:] == ["pop_000", "pop_001",
                                                                     "pop_002"]
    bad = run_script("train_models.py", "x", *args, "--max-batch", "0")
    assert bad.returncode == 2 and "--max-batch" in bad.stderr
