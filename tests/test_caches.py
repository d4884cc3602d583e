"""A cache that cannot be read, or that holds values its quantity cannot take,
is a miss: recomputed, never reused, said in one line; the numbers equal a
clean run's."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rnn.analysis.dynamics import cached_fixed_points, cached_psychometric
from rnn.io import load_model

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["bptt_s_000", "bptt_s_001", "ga_s_000", "ga_s_001"]


@pytest.fixture
def models(tmp_path):
    for n in NAMES:
        for ext in ("pt", "json"):
            shutil.copy(ROOT / "models" / f"{n}.{ext}", tmp_path / f"{n}.{ext}")
    (tmp_path / "g.txt").write_text("BPTT bptt_s_000 bptt_s_001\nGA ga_s_000 ga_s_001\n")
    return tmp_path


def test_fixed_point_cache_truncated_or_nan_is_recomputed(models, capsys):
    lm = load_model("bptt_s_000", models)
    fp, fresh, path = cached_fixed_points(lm.model, lm.task, lm.name, "small", models)
    assert fresh
    clean = fp.xstar.copy()
    path.write_bytes(path.read_bytes()[:200])                        # truncated
    fp2, fresh2, _ = cached_fixed_points(lm.model, lm.task, lm.name, "small", models)
    assert fresh2 and np.array_equal(fp2.xstar, clean)
    assert capsys.readouterr().err.count("recomputing it") == 1
    z = dict(np.load(path))
    z["xstar"] = np.full_like(z["xstar"], np.nan)                   # impossible values
    np.savez(path, **z)
    fp3, fresh3, _ = cached_fixed_points(lm.model, lm.task, lm.name, "small", models)
    assert fresh3 and np.array_equal(fp3.xstar, clean)
    _, fresh4, _ = cached_fixed_points(lm.model, lm.task, lm.name, "small", models)
    assert not fresh4                                                # the rewritten cache is reused


@pytest.mark.parametrize("field, poison", [
    ("residual", lambda v: -np.abs(v) - 1e-12),            # a negative distance from a root
    ("residual", lambda v: v + 1e-3),                      # not a root at all
    ("is_stable", lambda v: ~v),                           # contradicts the eigenvalues
    ("n_unstable", lambda v: v + 1),
    ("evidence", lambda v: v + 0.5),                       # not the input set's labels
])
def test_fixed_point_cache_inconsistent_with_itself_is_recomputed(models, field, poison,
                                                                  capsys):
    """Finite, well-shaped, and still wrong: a cache whose numbers contradict each
    other or the input set is never drawn."""
    lm = load_model("bptt_s_000", models)
    fp, _, path = cached_fixed_points(lm.model, lm.task, lm.name, "small", models)
    clean = (fp.is_stable.copy(), fp.residual.copy())
    z = dict(np.load(path))
    z[field] = poison(z[field])
    np.savez(path, **z)
    fp2, fresh, _ = cached_fixed_points(lm.model, lm.task, lm.name, "small", models)
    assert fresh and "recomputing it" in capsys.readouterr().err
    assert np.array_equal(fp2.is_stable, clean[0]) and np.array_equal(fp2.residual, clean[1])


def test_psychometric_cache_with_impossible_fractions_is_recomputed(models, capsys):
    lm = load_model("bptt_s_000", models)
    psy, fresh, path = cached_psychometric(lm.model, lm.task, lm.name, models, 20, 0)
    assert fresh
    z = dict(np.load(path))
    z["fraction"] = z["fraction"] * 0 + 7.0
    np.savez(path, **z)
    again, fresh2, _ = cached_psychometric(lm.model, lm.task, lm.name, models, 20, 0)
    assert fresh2 and np.array_equal(again.fraction, psy.fraction)
    assert "recomputing it" in capsys.readouterr().err


@pytest.mark.parametrize("metric,poison", [("svcca", 5.0), ("cka", float("nan"))])
def test_distance_cache_with_invalid_values_is_recomputed(models, metric, poison, capsys):
    import similarity_analysis
    args = ["g.txt", "--models-dir", str(models), "--quiet", "--metrics", metric,
            "--bootstrap", "20"]
    assert similarity_analysis.main(args) == 0
    summary = models / "g_similarity_summary.json"
    clean = json.loads(summary.read_text())["metrics"][0]["silhouette"]
    cache = next(models.glob(f"{'svcca_cache' if metric == 'svcca' else 'similarity_cka'}_*.json"))
    data = json.loads(cache.read_text())
    key = sorted(data["pairs"])[0]
    data["pairs"][key][0] = poison
    cache.write_text(json.dumps(data))                      # NaN as JSON's NaN literal
    capsys.readouterr()
    assert similarity_analysis.main(args) == 0
    assert "1 entries that are not valid distances" in capsys.readouterr().err
    # recomputed pairs come from a smaller batch: equal to rounding
    assert json.loads(summary.read_text())["metrics"][0]["silhouette"] == pytest.approx(clean,
                                                                                       abs=1e-12)
    assert np.isfinite(json.loads(cache.read_text())["pairs"][key][0])
    cache.write_text("{not json")
    assert similarity_analysis.main(args) == 0
    assert "could not be read" in capsys.readouterr().err
    assert json.loads(summary.read_text())["metrics"][0]["silhouette"] == pytest.approx(clean,
                                                                                       abs=1e-12)
