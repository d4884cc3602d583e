"""The shared validators (rnn.validate): one message for one mistake, whether it
enters by a flag, a grid file or an rnn.api call."""
import math

import numpy as np
import pytest

import train_models
from rnn import api
from rnn import validate as V
from rnn.cli import run_cli
from rnn.errors import UserError
from rnn.grid.format import Cell


def cli_error(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        run_cli(main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    return err


@pytest.mark.parametrize("check, good, canonical", [
    (lambda v: V.integer(v, "k", 1, 5), np.int64(3), 3),
    (lambda v: V.number(v, "x", 0.0, 1.0), np.float32(0.5), 0.5),
    (V.noise, 0, 0.0),
    (V.mean, 0.25, 0.25),
    (V.contexts, 64, 64),
    (V.steps, 2, 2),
])
def test_the_canonical_value_comes_back(check, good, canonical):
    out = check(good)
    assert out == canonical and type(out) is type(canonical)


@pytest.mark.parametrize("check, bad", [
    (lambda v: V.integer(v, "k", 1, 5), v) for v in (0, 6, 2.0, True, "3", None, np.bool_(1))
] + [
    (V.noise, v) for v in (-1e-9, math.nan, math.inf, True, "0.5", None)
] + [
    (V.mean, v) for v in (0, -1, math.inf, math.nan)
] + [
    (V.contexts, v) for v in (0, 65, 2.5)
] + [
    (lambda v: V.number(v, "x", 0.0, 1.0, low_open=True), v) for v in (0.0, 1.5, math.nan)
])
def test_what_is_outside_is_refused_in_one_line_naming_it(check, bad):
    with pytest.raises(UserError) as e:
        check(bad)
    msg = str(e.value)
    assert "\n" not in msg and repr(bad) in msg


def test_seeds():
    assert V.seed_range(2 ** 62 - 4, 4) == 2 ** 62 - 4
    with pytest.raises(UserError, match="its 5 seeds stay below 2..62"):
        V.seed_range(2 ** 62 - 4, 5)
    assert V.seed_list((3, 1)) == [3, 1]
    for bad in ([], [1, 1], [-1], 5, [1.5]):
        with pytest.raises(UserError, match="seeds"):
            V.seed_list(bad)


def test_one_mistake_one_message_through_every_door(tmp_path, capsys):
    """-v -0.5 on the command line, noise = -0.5 in a grid cell and
    api.task(noise=-0.5) are refused with the same words."""
    phrase = "must be a non-negative finite noise level, got -0.5"
    assert phrase in cli_error(train_models.main, ["bptt_a", "--rdm", "-v", "-0.5"], capsys)
    with pytest.raises(UserError, match=phrase):
        Cell(task="rdm", rule="bptt", noise=-0.5)
    with pytest.raises(UserError, match=phrase):
        api.task("rdm", noise=-0.5)
    phrase = "must be an integer in 1…64, got 65"
    assert phrase in cli_error(train_models.main, ["bptt_a", "--N", "65"], capsys)
    with pytest.raises(UserError, match=phrase):
        Cell(task="ncdi", N=65, rule="bptt")
    with pytest.raises(UserError, match=phrase):
        api.task("ncdi", N=65)


def test_api_simulate_checks_its_arguments():
    t = api.task("rdm", noise=0.5, steps=5)
    net = api.train("bptt", t, seeds=[1], max_steps=1, hidden=4)[0]
    with pytest.raises(UserError, match="n_trials must be an integer of at least 1, got 0"):
        api.simulate(net, n_trials=0)
    with pytest.raises(UserError, match="seed must be an integer"):
        api.simulate(net, seed=-1)
    states, choices = api.simulate(net, n_trials=3)
    assert states.shape == (5, 3, 4) and choices.shape == (3,)


# ---- properties: whatever enters, a value in range or one line, never a crash ----

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ANY = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                st.lists(st.integers(-3, 3), max_size=3))
PROPS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


def refused_or_in_range(call, check):
    try:
        out = call()
    except UserError as e:
        assert "\n" not in str(e)
        return
    check(out)


@PROPS
@given(v=ANY, low=st.integers(-5, 5), span=st.integers(0, 10))
def test_integer_is_in_range_or_refused(v, low, span):
    refused_or_in_range(lambda: V.integer(v, "k", low, low + span),
                        lambda out: type(out) is int and low <= out <= low + span)


@PROPS
@given(v=ANY)
def test_noise_mean_contexts_steps(v):
    refused_or_in_range(lambda: V.noise(v), lambda o: math.isfinite(o) and o >= 0)
    refused_or_in_range(lambda: V.mean(v), lambda o: math.isfinite(o) and o > 0)
    refused_or_in_range(lambda: V.contexts(v), lambda o: 1 <= o <= V.MAX_CONTEXTS)
    refused_or_in_range(lambda: V.steps(v), lambda o: 2 <= o <= V.MAX_STEPS)
    refused_or_in_range(lambda: V.seed_list(v if isinstance(v, list) else [v]),
                        lambda o: len(set(o)) == len(o) and all(0 <= s < V.SEED_LIMIT
                                                                 for s in o))


@PROPS
@given(name=st.one_of(st.sampled_from(["rdm", "cdi", "ncdi", "ncdi3", "ncdi64", "ncdi65",
                                       "xyz", "", "rdm1"]), st.text(max_size=6), st.none()),
       noise=ANY, N=ANY, steps=st.one_of(st.none(), ANY))
def test_api_task_builds_a_valid_task_or_refuses(name, noise, N, steps):
    refused_or_in_range(
        lambda: api.task(name, noise=noise, N=N, steps=steps),
        lambda t: t.noise >= 0 and math.isfinite(t.noise) and 1 <= t.n_contexts <= 64
        and 2 <= t.steps <= V.MAX_STEPS)


@PROPS
@given(task=st.one_of(st.sampled_from(["rdm", "cdi", "ncdi"]), ANY), N=ANY, noise=ANY,
       networks=ANY, first_seed=ANY)
def test_grid_cells_are_valid_or_refused(task, N, noise, networks, first_seed):
    refused_or_in_range(
        lambda: Cell(task=task, rule="bptt", N=N, noise=noise, networks=networks,
                     first_seed=first_seed),
        lambda c: c.networks >= 1 and c.first_seed + c.networks <= V.SEED_LIMIT
        and c.noise >= 0)
