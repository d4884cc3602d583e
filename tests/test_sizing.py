"""The one sizing check (rnn.sizing.require): work that cannot fit in memory is
refused in one line, with the memory needed and the memory free, before the
allocation, through every door that allocates (simulation, trial sets, grid
listings)."""
import re

import pytest
import torch

import run_grid
from rnn import sizing
from rnn.cli import run_cli
from rnn.errors import UserError
from rnn.grid.format import read_grid
from rnn.model import RateRNN
from rnn.rng import Streams
from tasks import ncdi, rdm

NEEDS = re.compile(r"needs about [\d.]+ [GM]B of memory; [\d.]+ [GM]B is free on \w+")


def test_small_requests_do_not_read_the_free_memory(monkeypatch):
    def boom(device):
        raise AssertionError("read the free memory for a small request")
    monkeypatch.setattr(sizing, "free_memory", boom)
    sizing.require(sizing.SMALL - 1, "a small thing")


def test_the_refusal_names_what_needs_how_much(monkeypatch):
    monkeypatch.setattr(sizing, "free_memory", lambda device: 2**30)
    sizing.require(0.5 * 2**30, "half of it")
    with pytest.raises(UserError, match=NEEDS) as e:
        sizing.require(0.7 * 2**30, "seven tenths")
    assert str(e.value).startswith("seven tenths needs about 0.7 GB")
    sizing.require(0.9 * 2**30, "nine tenths, all of it allowed", fraction=1.0)


def test_a_simulation_too_large_for_memory_is_refused_before_it_allocates():
    m = RateRNN.init(Streams([0], 1), 1)
    # a zero-stride view: 10^5 steps x 10^5 trials of input cost no memory here
    u = torch.zeros(1, 1, 1).expand(100_000, 100_000, 1)
    with pytest.raises(UserError, match="simulating 100000 trials of 100000 steps for 1 "
                                        "network.s. of 50 units " + NEEDS.pattern):
        m.simulate(u, torch.zeros(100_000, 50), keep="all")


def test_a_trial_set_too_large_is_refused():
    task = ncdi(2, steps=100_000)
    with pytest.raises(UserError, match="100000 trials of 100000 steps " + NEEDS.pattern):
        task.sample(100_000, Streams([0], 1))
    with pytest.raises(UserError, match="static inputs of 100000000 steps"):
        t = rdm()
        t.static_trials(t.static_inputs("small").__class__(
            torch.zeros(10**4, 1).numpy(), torch.zeros(10**4).numpy(),
            torch.zeros(10**4, dtype=torch.long).numpy()), steps=10**8)


def test_a_grid_of_10_to_the_12_networks_is_refused_in_one_line(tmp_path, capsys):
    g = tmp_path / "huge.toml"
    g.write_text('[[cells]]\ntask = "rdm"\nrule = "bptt"\nnoise = 0.5\n'
                 'networks = 1000000000000\n')
    with pytest.raises(UserError, match="listing its 1000000000000 networks " + NEEDS.pattern):
        read_grid(g)
    with pytest.raises(SystemExit) as e:
        run_cli(run_grid.main, [str(g), "--list"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "networks" in err


def test_a_grid_entry_that_expands_into_too_many_cells_is_refused(tmp_path):
    values = ", ".join(str(0.001 * i) for i in range(1, 1001))
    g = tmp_path / "wide.toml"
    g.write_text(f'[[cells]]\ntask = "ncdi"\nrule = "bptt"\nnoise = [{values}]\n'
                 f'first_seed = [{", ".join(str(i) for i in range(1000))}]\n'
                 f'networks = [{", ".join(str(i) for i in range(1, 1001))}]\n')
    with pytest.raises(UserError, match="entry 1's 1000000000 cells " + NEEDS.pattern):
        read_grid(g)
