"""The content of a model file is checked where it is loaded: each damage is
a one-line error that names the file and the field."""
import shutil
from pathlib import Path

import pytest
import torch

from rnn.errors import UserError
from rnn.io import load_model

ROOT = Path(__file__).resolve().parents[1]


def damaged(tmp_path, edit) -> Path:
    payload = torch.load(ROOT / "models" / "bptt_s_000.pt", weights_only=True)
    edit(payload)
    torch.save(payload, tmp_path / "bad.pt")
    return tmp_path


def _set(path, value):
    def edit(p):
        d = p
        for k in path[:-1]:
            d = d[k]
        if value is KeyError:
            del d[path[-1]]
        else:
            d[path[-1]] = value(d[path[-1]]) if callable(value) else value
    return edit


CASES = [
    (("network", "W_rec"), lambda t: t.index_fill(0, torch.tensor([3]), float("nan")),
     "network.W_rec holds non-finite"),
    (("network", "W_out"), lambda t: t * float("inf"), "network.W_out holds non-finite"),
    (("network", "b"), KeyError, "network.b is missing"),
    (("network", "dt"), -0.1, "network.dt is -0.1"),
    (("network", "dt"), float("nan"), "network.dt is nan"),
    (("meta",), KeyError, "meta is missing"),
    (("meta", "task"), KeyError, "meta.task is missing"),
    (("meta", "task", "noise"), float("nan"), "meta.task.noise is nan"),
    (("meta", "task", "name"), "cdi", "meta.task.N is None"),        # rdm weights, no N
    (("version",), 99, "version is 99"),
    (("network", "W_in"), lambda t: torch.zeros(50, 4), "has 4 inputs, but its task"),
    (("network", "clamp_idx"), [50], "network.clamp_idx is [50], not distinct unit"),
    (("network", "clamp_idx"), [-1], "network.clamp_idx is [-1]"),
    (("network", "clamp_idx"), [3, 3], "network.clamp_idx is [3, 3]"),
    (("network", "clamp_val"), [1.0], "network.clamp_val is [1.0], not one finite value"),
    (("meta", "task", "name"), "xyz", "meta.task.name is 'xyz', not a task of this tool"),
    (("meta", "task", "steps"), 10 ** 9, "not an integer in 2…100000"),
    (("meta", "task", "N"), True, "meta.task.N is True"),
]


@pytest.mark.parametrize("path,value,msg", CASES, ids=[c[2] for c in CASES])
def test_damaged_model_file_is_one_line_naming_the_field(tmp_path, path, value, msg):
    folder = damaged(tmp_path, _set(path, value))
    with pytest.raises(UserError) as e:
        load_model("bad", folder)
    text = str(e.value)
    assert msg in text and str(folder / "bad.pt") in text and "\n" not in text


def test_an_intact_copy_loads(tmp_path):
    shutil.copy(ROOT / "models" / "bptt_s_000.pt", tmp_path / "ok.pt")
    assert load_model("ok", tmp_path).task.name == "rdm"


def test_a_nan_clamp_value_is_refused(tmp_path):
    def edit(p):
        p["network"]["clamp_idx"] = [3]
        p["network"]["clamp_val"] = [float("nan")]
    with pytest.raises(UserError, match="network.clamp_val is"):
        load_model("bad", damaged(tmp_path, edit))


def test_every_committed_network_loads():
    """Model files hold no class or module paths: every network shipped with the
    repository loads (weights and record checked) whatever the package layout."""
    import json
    found = [p for d in ("experiments/networks", "models") for p in (ROOT / d).rglob("*.pt")
             if p.with_suffix(".json").is_file()        # (a training under way is skipped)
             and json.loads(p.with_suffix(".json").read_text())["status"] != "in_progress"]
    assert len(found) > 100
    for p in found:
        lm = load_model(p.stem, p.parent)
        assert lm.meta["name"] == p.stem and lm.model.n_networks == 1
