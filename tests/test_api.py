"""rnn.api's doors: what a notebook passes in is checked as the command line
checks it — a UserError, one line, before any work — and nothing saved through
the API is lost or unreadable."""
import math

import pytest
import torch

from rnn import api
from rnn.errors import UserError

TASK = api.task("rdm", steps=20)


@pytest.mark.parametrize("kw, message", [
    ({"name": "../escape"}, "path separators"),
    ({"seeds": [1, 1]}, "distinct"),
    ({"seeds": []}, "distinct"),
    ({"seeds": [-1]}, "each of seeds must be an integer"),
    ({"seeds": [True]}, "each of seeds must be an integer"),
    ({"max_steps": 0}, "max_steps must be an integer of at least 1"),
    ({"max_steps": -5}, "max_steps must be an integer"),
    ({"hidden": 10 ** 6}, "hidden must be between"),
    ({"protocol": "strict"}, "unknown protocol"),
    ({"device": "tpu"}, "device must be"),
    ({"task": "rdm"}, "task must be a task from api.task"),
])
def test_train_refuses_bad_arguments_before_any_work(kw, message):
    args = {"rule": "bptt", "task": TASK, "seeds": [0], "max_steps": 1, **kw}
    with pytest.raises(UserError, match=message):
        api.train(**args)


@pytest.mark.parametrize("kw, message", [
    ({"name": "rdm", "noise": float("nan")}, "noise must be a non-negative finite noise level"),
    ({"name": "rdm", "noise": -0.1}, "noise must be a non-negative finite noise level"),
    ({"name": "ncdi"}, "needs N"),
    ({"name": "ncdi", "N": 0}, "N must be an integer in 1"),
    ({"name": "rdm", "steps": 10 ** 9}, "steps must be an integer in 2"),
    ({"name": "xyz"}, "task must be one of"),
])
def test_task_refuses_bad_arguments(kw, message):
    with pytest.raises(UserError, match=message):
        api.task(**kw)


@pytest.fixture(scope="module")
def nets():
    return api.train("bptt", TASK, seeds=[0, 1, 2, 3], max_steps=2, hidden=8)


def test_compare_refuses_what_cannot_be_compared(nets):
    cdi = api.train("bptt", api.task("cdi", steps=20), seeds=[0], max_steps=1, hidden=8)
    cases = [
        ({"A": nets[:2]}, {}, "at least two groups"),
        ({"A": nets[:2], "B": []}, {}, "non-empty list"),
        ({"A": nets[:2], "B": nets[1:3]}, {}, "can stand in one place only"),
        ({"A": nets[:2], "B": nets[2:] + cdi}, {}, "different tasks"),
        ({"A": nets[:2], "B": nets[2:]}, {"n_boot": -3}, "n_boot must be an integer"),
        ({"A": nets[:2], "B": nets[2:]}, {"metric": "cosine"}, "unknown metric"),
    ]
    for groups, kw, message in cases:
        with pytest.raises(UserError, match=message):
            api.compare(groups, **kw)
    bad = api.Network("nan", nets[0].model.replace(W_rec=nets[0].model.W_rec * math.nan),
                      TASK, "bptt", 9, "budget", 2, 0.5)
    with pytest.raises(UserError, match="non-finite"):
        api.fixed_points(bad)
    with pytest.raises(UserError, match="non-finite"):
        api.compare({"A": nets[:2], "B": [bad, nets[2]]}, metric="cka")
    with pytest.raises(UserError, match="unknown static input set"):
        api.fixed_points(nets[0], "medium")


def test_save_never_overwrites_without_force_and_writes_what_load_reads(nets, tmp_path):
    written = api.save(nets[0], tmp_path)
    assert [p.name for p in written] == ["bptt_0.pt", "bptt_0.json"]
    before = (tmp_path / "bptt_0.pt").read_bytes()
    other = api.Network("bptt_0", nets[1].model, TASK, "bptt", 1, "budget", 2, 0.5)
    with pytest.raises(UserError, match="already exists"):
        api.save(other, tmp_path)
    assert (tmp_path / "bptt_0.pt").read_bytes() == before
    api.save(other, tmp_path, force=True)
    back = api.load("bptt_0", tmp_path)
    assert torch.equal(back.model.W_rec, nets[1].model.W_rec) and back.seed == 1
    with pytest.raises(UserError, match="path separators"):
        api.save(api.Network("../x", nets[0].model, TASK, "bptt", 0, "budget", 2, 0.5),
                 tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="is not a folder"):
        api.save(nets[2], tmp_path / "afile")


def test_memories_of_a_flip_flop_network_and_the_refusals(nets):
    """The committed GA flip-flop that holds one pattern on a 2-cycle and one on
    an orbit with no period: api.memories says where each is held and what each
    orbit is; any other task, a non-network or NaN weights are refused."""
    from pathlib import Path
    d = Path(__file__).resolve().parents[1] / "experiments/networks/universality"
    net = api.load("flipflop-ga-vanilla-v000-clean_s40006_001", d)
    m = api.memories(net)
    assert m.held == [True] * 8 and m.periods == [1, 1, 1, 1, 2, 1, 1, -1]
    assert m.kinds == [None] * 4 + ["contracting", None, None, "quasi-periodic"]
    assert [v is None for v in m.exponents] == [k is None for k in m.kinds]
    with pytest.raises(UserError, match="flip-flop's analysis; network .* was trained on rdm"):
        api.memories(nets[0])
    with pytest.raises(UserError, match="takes an api.Network"):
        api.memories(net.model)
    bad = api.Network("nan", net.model.replace(weight_hh=net.model.weight_hh * math.nan),
                      net.task, "ga", 9, "budget", 2, 0.5)
    with pytest.raises(UserError, match="non-finite"):
        api.memories(bad)


def test_errors_by_lag_of_a_flip_flop_network_and_the_refusals(nets):
    """The committed GA flip-flop's score by the steps since a pulse ended: the bins
    partition the held pairs (their share-weighted scores make the overall score),
    the same seed gives the same numbers, another seed other trials; any other
    task, a non-network, NaN weights and bad counts are refused."""
    from pathlib import Path
    d = Path(__file__).resolve().parents[1] / "experiments/networks/universality"
    net = api.load("flipflop-ga-vanilla-v000-clean_s40006_001", d)
    r = api.errors_by_lag(net, n_trials=200, seed=3)
    assert [(b["from"], b["to"]) for b in r["bins"]] == [(1, 5), (6, 10), (11, 20), (21, None)]
    assert sum(b["share"] for b in r["bins"]) == pytest.approx(1.0)
    assert r["score"] == pytest.approx(sum(b["share"] * b["score"] for b in r["bins"]))
    assert 0.5 < r["score"] < 1
    c, last = r["crosstalk"], r["bins"][-1]     # the last bin, split by other bits' pulses
    assert c["near"]["share"] + c["far"]["share"] == pytest.approx(last["share"])
    assert last["score"] == pytest.approx((c["near"]["share"] * c["near"]["score"] + c["far"][
        "share"] * c["far"]["score"]) / last["share"])
    assert api.errors_by_lag(net, n_trials=200, seed=3) == r
    assert api.errors_by_lag(net, n_trials=200, seed=4)["score"] != r["score"]
    with pytest.raises(UserError, match="flip-flop's analysis; network .* was trained on rdm"):
        api.errors_by_lag(nets[0])
    with pytest.raises(UserError, match="takes an api.Network"):
        api.errors_by_lag(net.model)
    with pytest.raises(UserError, match="n_trials"):
        api.errors_by_lag(net, n_trials=0)
    with pytest.raises(UserError, match="seed"):
        api.errors_by_lag(net, seed=-1)
    with pytest.raises(UserError, match="flip-flop trials of 200 steps and their scores"):
        api.errors_by_lag(net, n_trials=10 ** 9)
    bad = api.Network("nan", net.model.replace(weight_hh=net.model.weight_hh * math.nan),
                      net.task, "ga", 9, "budget", 2, 0.5)
    with pytest.raises(UserError, match="non-finite"):
        api.errors_by_lag(bad)


def test_memories_with_origins_of_an_imported_network_with_a_neimark_sacker_focus():
    """Your own nn.RNN: the hand-built flip-flop whose two extra units turn by 1
    rad and grow by 1.05 a step at 0 holds each pattern on an invariant circle;
    api.memories(origins=True) names the focus it turns around."""
    import math
    from tests.test_step_fixed_points import _flip_flop
    three = _flip_flop("RNN")
    m, out = torch.nn.RNN(3, 5), torch.nn.Linear(5, 3)
    with torch.no_grad():
        for prm in [*m.parameters(), *out.parameters()]:
            prm.zero_()
        m.weight_hh_l0[:3, :3] = three.weight_hh_l0.float()
        m.weight_hh_l0[3:, 3:] = 1.05 * torch.tensor([[math.cos(1.0), -math.sin(1.0)],
                                                      [math.sin(1.0), math.cos(1.0)]])
        m.weight_ih_l0[:3] = torch.eye(3)
        m.weight_ih_l0[3, 0] = 1.0
        out.weight.copy_(torch.eye(3, 5))
    net = api.import_torch(m, out, api.task("flipflop"), name="focus")
    assert net.model.W_out.shape == (1, 3, 5)       # all 3 of the task's outputs, not 1
    with pytest.raises(UserError, match="readout"):
        api.import_torch(m, torch.nn.Linear(5, 2), api.task("flipflop"))
    mem = api.memories(net, origins=True)
    assert mem.periods == [-1] * 8 and mem.kinds == ["quasi-periodic"] * 8
    for o in mem.origins:
        assert o.n_unstable == 2 and abs(o.modulus - 1.05) < 1e-5 and abs(o.turn - 1.0) < 0.05
    assert api.memories(net).origins is None
    with pytest.raises(UserError, match="origins must be True or False"):
        api.memories(net, origins="yes")
