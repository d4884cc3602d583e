"""The task table (tasks/table.py): one spelling per task, parsed in one place,
the same task whichever door names it."""
import pytest

from rnn import api
from rnn.errors import UserError
from rnn.grid.format import Cell
from tasks import DecisionTask, TaskName, ncdi, parse, rdm


@pytest.mark.parametrize("name, N, family, n, spelling, label", [
    ("rdm", None, "rdm", None, "rdm", "RDM"),
    ("cdi", None, "ncdi", 2, "cdi", "N = 2"),
    ("cdi", 2, "ncdi", 2, "cdi", "N = 2"),
    ("ncdi", 2, "ncdi", 2, "cdi", "N = 2"),
    ("ncdi2", None, "ncdi", 2, "cdi", "N = 2"),
    ("ncdi1", None, "ncdi", 1, "ncdi1", "N = 1"),
    ("ncdi", 6, "ncdi", 6, "ncdi6", "N = 6"),
    ("ncdi64", None, "ncdi", 64, "ncdi64", "N = 64"),
])
def test_every_spelling_names_one_task(name, N, family, n, spelling, label):
    t = parse(name, N)
    assert (t.family, t.N, t.spelling, t.label) == (family, n, spelling, label)
    built = t.make(0.3)
    assert built.name == spelling and parse(built.name) == t


@pytest.mark.parametrize("name, N, message", [
    ("xyz", None, "must be one of rdm, ncdi, flipflop, ngpdm, ngcdm, cdi, ncdiN, got 'xyz'"),
    (3, None, "must be one of"),
    ("rdm", 2, "rdm has no contexts"),
    ("rdm1", None, "rdm has no contexts"),
    ("ncdi", None, "ncdi needs N"),
    ("cdi", 3, "cdi has N = 2, not 3"),
    ("ncdi3", 4, "ncdi3 has N = 3, not 4"),
    ("ncdi0", None, "must be one of"),
    ("ncdi65", None, "N must be an integer in 1…64, got 65"),
    ("ncdi", True, "N must be an integer"),
])
def test_anything_else_is_refused_in_one_line(name, N, message):
    with pytest.raises(UserError, match=message) as e:
        parse(name, N)
    assert "\n" not in str(e.value)


def test_the_same_task_through_every_door():
    for spelt, (family, N) in (("rdm", ("rdm", None)), ("cdi", ("ncdi", 2)),
                               ("ncdi4", ("ncdi", 4))):
        want = parse(spelt).make(0.5)
        assert api.task(spelt, noise=0.5) == want
        assert api.task(family, noise=0.5, N=N) == want
        assert DecisionTask.from_dict(want.to_dict()) == want
        assert Cell(task=spelt, rule="bptt").train_args() == \
            Cell(task=family, N=N, rule="bptt").train_args()
    assert parse("rdm").make(0.1) == rdm(0.1) and parse("ncdi", 5).make(0.1) == ncdi(5, 0.1)


def test_cell_names_keep_the_grid_files_spelling():
    # networks already trained are found by these names: ncdi with N = 2 stays ncdi2
    assert Cell(task="ncdi", N=2, rule="bptt", noise=1.0,
                protocol="original").name == "ncdi2-bptt-v100-original"
    assert Cell(task="cdi", rule="bptt").name == "cdi-bptt-v050-clean"
    assert Cell(task="ncdi3", rule="ga").name == "ncdi3-ga-v050-clean"
    assert TaskName("ncdi", 2).flags() == ["--N", "2"] and TaskName("rdm").flags() == ["--rdm"]
