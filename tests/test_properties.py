"""Property-based tests (hypothesis) of the contract for input read from the
command line and from disk: a script exits 0 or 2, and with 2 says one line
and no traceback; nothing is written outside the models folder; a damaged
model file, cache, groups file or grid file is refused in one line or read
as valid, never a crash; a cache keeps only values its metric can take.

The examples are bounded (and derandomized, so CI sees the same ones every
run) to keep the suite fast; each calls the code in-process."""
import io
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import train_models
from helpers import ROOT
from rnn.errors import UserError
from rnn.cli import run_cli
from rnn.io import check_name, load_model

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
SAMPLE = ROOT / "models" / "bptt_s_000.pt"


def files_under(d: Path) -> dict:
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def run(main, argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        run_cli(main, argv)
    return e.value.code, capsys.readouterr().err


def assert_contract(code, err):
    assert code in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


# ---- command-line arguments -------------------------------------------------

junk = st.one_of(st.text(max_size=6), st.integers(-10**20, 10**20).map(str),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.sampled_from(["", "-", "--", "nan", "inf", "1e999", "0x10", "../x", "—"]))
VALUES = {  # what each flag may be given: junk, or values whose runs stay cheap
    "-v": junk, "-m": junk,
    "--N": st.one_of(junk, st.integers(-3, 3).map(str), st.just("100000000")),
    "--hidden": st.one_of(junk, st.integers(-3, 8).map(str), st.just("10**9")),
    "--seed": st.one_of(junk, st.integers(-3, 2**63).map(str)),
    "--count": st.one_of(junk, st.integers(-3, 3).map(str), st.just("1000000000")),
    "--stall-window": junk, "--record-every": junk, "--max-batch": junk,
    "--protocol": st.one_of(junk, st.sampled_from(["clean", "original"])),
    "--on-stall": junk, "--device": junk, "--rule": st.one_of(junk, st.just("eprop")),
}


@SETTINGS
@given(name=st.one_of(st.just("bptt_h"), st.text(max_size=12),
                      st.sampled_from(["../bptt_x", "bptt/x", "rflo_q", "heb_z", "bp.."])),
       task=st.sampled_from([["--rdm"], ["--N", "2"], [], ["--rdm", "--N", "1"]]),
       flags=st.lists(st.sampled_from(sorted(VALUES)), max_size=3, unique=True),
       data=st.data())
def test_train_models_arguments(tmp_path_factory, capsys, name, task, flags, data):
    root = tmp_path_factory.mktemp("args")
    models = root / "models"
    argv = [name, *task, "--hidden", "4", "--max-steps", "1", "--seed", "1", "--quiet",
            "--models-dir", str(models)]
    for flag in flags:
        value = data.draw(VALUES[flag], label=flag)
        argv += [f"{flag}={value}"] if value.startswith("-") else [flag, value]
    code, err = run(train_models.main, argv, capsys)
    event(f"exit {code}")
    assert_contract(code, err)
    outside = {p for p in files_under(root) if p.parts[0] != "models"}
    assert not outside, outside


# ---- model files --------------------------------------------------------------

def load_or_refuse(d: Path) -> None:
    """Model m of folder d is refused in one line, or it is a valid network."""
    try:
        lm = load_model("m", d)
    except UserError as e:
        event("refused")
        assert "\n" not in str(e)
        return
    event("read")
    for k in ("W_in", "W_rec", "W_out", "b"):
        assert torch.isfinite(getattr(lm.model, k)).all()
    assert 0 < lm.model.dt <= 1
    task = lm.task
    inputs = torch.zeros(3, 1, 2, task.n_inputs)
    lm.model.simulate(inputs, torch.zeros(1, 2, lm.model.hidden))


@SETTINGS
@given(cut=st.integers(0, 40000), flips=st.lists(st.tuples(st.integers(0, 40000),
                                                            st.integers(1, 255)), max_size=6))
def test_damaged_model_bytes_are_refused_or_read_as_valid(tmp_path_factory, cut, flips):
    d = tmp_path_factory.mktemp("bytes")
    data = bytearray(SAMPLE.read_bytes())
    for pos, x in flips:
        data[pos % len(data)] ^= x
    if cut < len(data):
        data = data[:cut]
    (d / "m.pt").write_bytes(bytes(data))
    load_or_refuse(d)


FIELDS = [("version",), ("format",), ("network",), ("network", "W_in"), ("network", "W_rec"),
          ("network", "W_out"), ("network", "b"), ("network", "dt"), ("network", "activation"),
          ("network", "readout"), ("network", "clamp_idx"), ("network", "clamp_val"),
          ("meta",), ("meta", "task"), ("meta", "task", "name"), ("meta", "task", "N"),
          ("meta", "task", "noise"), ("meta", "task", "mean"), ("meta", "task", "steps")]
odd = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                st.lists(st.integers(-3, 60), max_size=4),
                st.sampled_from(["nan-tensor", "inf-tensor", "int-tensor", "wrong-shape",
                                 "empty-dict"]))


def _value(v):
    if v == "nan-tensor":
        return torch.full((50, 50), float("nan"))
    if v == "inf-tensor":
        return torch.full((50, 4), float("inf"))
    if v == "int-tensor":
        return torch.ones(50, 50, dtype=torch.long)
    if v == "wrong-shape":
        return torch.zeros(49, 3)
    if v == "empty-dict":
        return {}
    return v


@SETTINGS
@given(changes=st.lists(st.tuples(st.sampled_from(FIELDS), odd), min_size=1, max_size=3))
def test_model_file_fields_are_refused_or_read_as_valid(tmp_path_factory, changes):
    d = tmp_path_factory.mktemp("fields")
    payload = torch.load(SAMPLE, weights_only=True)
    for path, v in changes:
        node = payload
        for k in path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[path[-1]] = _value(v)
    buf = io.BytesIO()
    torch.save(payload, buf)
    (d / "m.pt").write_bytes(buf.getvalue())
    load_or_refuse(d)


# ---- caches, groups files, grid files -------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 10),
              st.floats(allow_nan=False, allow_infinity=False, width=32), st.text(max_size=4)),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids,
                                                              max_size=3), max_leaves=8)


@SETTINGS
@given(metric=st.sampled_from(["svcca", "cka", "procrustes", "dsa"]),
       networks=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
       pairs=st.dictionaries(st.sampled_from(["a b", "a c", "b c", "abc", "a  b"]),
                             st.one_of(json_values, st.lists(st.floats(-10, 10), min_size=1,
                                                             max_size=2)), max_size=4),
       junk_text=st.one_of(st.none(), st.text(max_size=20)))
def test_a_damaged_cache_keeps_only_valid_values(tmp_path_factory, metric, networks, pairs,
                                                 junk_text):
    from rnn.analysis.pair_cache import PairCache
    analysis = {"metric": metric, "x": 1}
    p = tmp_path_factory.mktemp("cache") / "c.json"
    p.write_text(junk_text if junk_text is not None else
                 json.dumps({"analysis": analysis, "networks": networks, "pairs": pairs}))
    c = PairCache(analysis, p)
    lo, hi = c.bounds()
    for v in c.pairs.values():
        assert isinstance(v, list) and lo <= v[0] <= hi and math.isfinite(v[0])
    for v in c.networks.values():
        assert isinstance(v, list) and len(v) == 2 and all(math.isfinite(x) for x in v)


@SETTINGS
@given(lines=st.lists(st.lists(st.one_of(st.text(max_size=8),
                                         st.sampled_from(["bptt_s_000", "ga_s_001", "../x",
                                                          "a/b", "#", "BPTT", "\ufeff"])),
                               max_size=4), max_size=5))
def test_groups_files_are_refused_or_name_networks_inside_the_folder(tmp_path_factory, lines):
    from rnn.io.groups import read_groups
    d = tmp_path_factory.mktemp("groups")
    for n in ("bptt_s_000", "ga_s_001"):
        shutil.copy(ROOT / "models" / f"{n}.pt", d / f"{n}.pt")
    (d / "g.txt").write_text("\n".join(" ".join(w) for w in lines))
    try:
        g = read_groups(["g.txt"], d)
    except UserError as e:
        event("refused")
        assert "\n" not in str(e)
        return
    for n in g.names:
        check_name(n)
        assert (d / f"{n}.pt").resolve().parent == d.resolve()


toml_scalar = st.one_of(st.integers(-3, 12), st.floats(-2, 2), st.booleans(),
                        st.sampled_from(['"rdm"', '"cdi"', '"ncdi"', '"bptt"', '"eprop"', '"x"',
                                         '"../x"', '"clean"', '"original"', '"noise"']))
GRID_KEYS = ["task", "rule", "N", "noise", "networks", "first_seed", "protocol", "hidden",
             "max_steps", "chunk", "name", "shared_x0", "stall_window"]


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@SETTINGS
@given(cells=st.lists(st.dictionaries(st.sampled_from(GRID_KEYS), toml_scalar, max_size=6),
                      min_size=1, max_size=3),
       compare=st.lists(st.dictionaries(st.sampled_from(["name", "by", "metrics", "groups"]),
                                        toml_scalar, max_size=3), max_size=2))
def test_grid_files_are_refused_or_valid(tmp_path_factory, cells, compare):
    from rnn.grid.format import read_grid
    d = tmp_path_factory.mktemp("grid")
    text = '[grid]\nname = "g"\n'
    for c in cells:
        text += "[[cells]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in c.items())
    for c in compare:
        text += "[[compare]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in c.items())
    (d / "g.toml").write_text(text)
    try:
        grid = read_grid(d / "g.toml")
    except UserError as e:
        event("refused")
        assert "\n" not in str(e)
        return
    models = d / "models"
    folder = grid.folder(models).resolve()
    for c in grid.cells:
        assert "/" not in c.name and ".." not in c.name
        assert (folder / f"{c.name}_s0.json").resolve().parent == folder


# ---- every analysis script's arguments ------------------------------------------
# The base names a model or groups file that does not exist, so every vector that
# gets past the flags ends in "no model"/"does not exist": exit 2, quickly.

import analyze_dynamics  # noqa: E402
import fixed_point_input_topology  # noqa: E402
import import_model  # noqa: E402
import run_grid  # noqa: E402
import similarity_analysis  # noqa: E402
import svcca_analysis  # noqa: E402
import tca_analysis  # noqa: E402

SCRIPTS = {
    "analyze_dynamics": (analyze_dynamics, ["nosuch", "large"],
                         ["--trials", "--seed", "--recompute", "--no-psychometric"]),
    "fixed_point_input_topology": (fixed_point_input_topology, ["nosuch.txt"],
                                   ["--bootstrap", "--recompute"]),
    "svcca_analysis": (svcca_analysis, ["nosuch.txt"],
                       ["--bootstrap", "--analysis", "--dims", "--keep", "--levels", "--x",
                        "--probe-seed", "-r"]),
    "similarity_analysis": (similarity_analysis, ["nosuch.txt"],
                            ["--metrics", "--alpha", "--bootstrap", "--dsa-delays",
                             "--dsa-interval", "--dsa-rank", "--dsa-score", "--keep", "--dims"]),
    "tca_analysis": (tca_analysis, ["nosuch"], ["--rank", "--seed"]),
    "import_model": (import_model, ["original", "nosuch"], ["--as", "-v", "--N", "--trust"]),
    "run_grid": (run_grid, ["nosuch.toml"],
                 ["--workers", "--threads", "--chunk", "--device", "--retries", "--cells",
                  "--deadline", "--scheduler", "--tls-ca-file", "--list"]),
}
FLAG_VALUES = st.one_of(junk, st.integers(-3, 30).map(str),
                        st.sampled_from(["original", "tool", "0.95", "x0", "tcp://x:1",
                                         "tls://127.0.0.1:9", "svcca", "dsa", "angular"]))


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_scripts_arguments(tmp_path_factory, capsys, monkeypatch, script, data):
    module, base, flags = SCRIPTS[script]
    models = tmp_path_factory.mktemp("m")
    monkeypatch.setenv("RNN_MODELS_DIR", str(models))
    argv = list(base) + ["--quiet"] * (script not in ("import_model", "tca_analysis"))
    for flag in data.draw(st.lists(st.sampled_from(flags), max_size=4, unique=True)):
        value = data.draw(FLAG_VALUES, label=flag)
        argv += [f"{flag}={value}"] if value.startswith("-") else [flag, value]
    code, err = run(module.main, argv, capsys)
    event(f"exit {code}")
    assert_contract(code, err)
    assert not list(models.iterdir())           # nothing written for a refused run
