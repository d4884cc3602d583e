"""The metric table (rnn/analysis/metrics.py) and the one compare pipeline that reads it
(rnn.analysis.similarity.network_distances): every record well formed, caches keyed as
they always were, and a toy metric registered as one record + its pair
function, computed, cached and compared like the others."""
from pathlib import Path

import numpy as np
import pytest

from rnn import api
from rnn.analysis.metrics import METRICS, REGISTRY, TOPOLOGY, UNIT, Metric, cache_key, label, register
from rnn.model import RateRNN
from rnn.rng import Streams
from rnn.analysis.similarity import DSAOptions, metric_cache, network_distances, pair_distances, represent
from rnn.analysis.svcca import SVCCAOptions
from tasks import ncdi


def test_every_record_is_well_formed():
    assert TOPOLOGY in REGISTRY and set(METRICS) == set(REGISTRY) - {TOPOLOGY}
    for name, m in REGISTRY.items():
        assert m.name == name and label(name) == m.label
        lo, hi = m.bounds
        assert lo <= 0 < hi
        if m.source == "svd":
            assert callable(m.pair) and m.directions in ("kept", "rank")
        if m.source != "fixed_points":
            key = cache_key(name, SVCCAOptions().to_dict(), 1.0, DSAOptions())
            assert key == cache_key(name, SVCCAOptions().to_dict(), 1.0, DSAOptions())
    with pytest.raises(ValueError, match="unknown metric"):
        cache_key("nope", {})
    with pytest.raises(ValueError, match="source"):
        register(Metric("bad", "bad", "weights", UNIT))


def test_cache_files_keep_the_names_they_had_before_the_table():
    """The caches already on disk (experiments/networks/...) stay valid: each
    metric's key, and so its file name, is what it was before the table —
    except PWCCA's, changed on purpose when each pair came to be compared over
    the same number of directions from both networks (its old caches hold the
    other definition's distances and are never read)."""
    names = {m: metric_cache(m, SVCCAOptions(), Path("."), load=False).path.name
             for m in METRICS}
    assert names == {"svcca": "svcca_cache_b463282214.json",
                     "pwcca": "similarity_pwcca_cache_58d83db189.json",
                     "cka": "similarity_cka_cache_8f4424a158.json",
                     "procrustes": "similarity_procrustes_cache_3345ca8fc7.json",
                     "dsa": "similarity_dsa_cache_279a95a41c.json"}
    assert metric_cache("svcca", SVCCAOptions.original(), Path("."), load=False).path.name \
        == "svcca_cache_76229f30d6.json"
    assert metric_cache("procrustes", SVCCAOptions(), Path("."), 0.5, load=False).path.name \
        == "similarity_procrustes_cache_1816dfaacf.json"


def _spectrum_pairs(p):
    """Half the distance between the two normalised activity spectra (in [0, 1])."""
    a = p.s_a / p.s_a.norm(dim=1, keepdim=True)
    b = p.s_b / p.s_b.norm(dim=1, keepdim=True)
    return 0.5 * (a - b).norm(dim=1)


@pytest.fixture
def toy_metric():
    m = register(Metric("toy_spectrum", "spectra", "svd", UNIT,
                        lambda options, alpha, dsa: {**options, "metric": "toy_spectrum"},
                        _spectrum_pairs))
    yield m
    del REGISTRY[m.name]


def _networks(n=4, steps=40):
    task = ncdi(2, 0.5, steps=steps)
    out = []
    for i in range(n):
        m = RateRNN.init(Streams([i], 1), task.n_inputs)
        out.append(api.Network(f"net{i}", m.replace(W_rec=m.W_rec * 3), task, "bptt", i,
                               "converged", 1, 1.0))
    return out


def test_a_registered_toy_metric_is_computed_cached_and_compared(toy_metric, tmp_path):
    nets = _networks()
    opts = SVCCAOptions(levels=3)
    res = network_distances(nets, ["toy_spectrum", "cka"], opts, tmp_path)
    D = res["toy_spectrum"].distances
    # the pipeline's number is the pair function's, on the one SVD of each network
    reps = [represent(opts.activity(n.model, n.task, ""), opts) for n in nets]
    direct = pair_distances(reps, ["toy_spectrum"])["toy_spectrum"]
    np.testing.assert_allclose(D, direct, atol=1e-12)
    assert np.all(D[~np.eye(4, dtype=bool)] > 0) and np.allclose(D, D.T)
    assert res["toy_spectrum"].computed == 4 and res["toy_spectrum"].new_pairs == 6
    files = sorted(p.name for p in tmp_path.iterdir())
    assert any(f.startswith("similarity_toy_spectrum_cache_") for f in files), files
    again = network_distances(nets, ["toy_spectrum"], opts, tmp_path)["toy_spectrum"]
    assert again.computed == 0 and np.array_equal(again.distances, D)
    cmp = api.compare({"a": nets[:2], "b": nets[2:]}, "toy_spectrum", n_boot=10)
    assert cmp.distances.shape == (4, 4)


def test_topology_goes_through_the_same_pipeline():
    nets = _networks(3, steps=20)
    res = network_distances(nets, ["topology"])["topology"]
    assert res.topology is not None and res.kept == res.topology.kept
    np.testing.assert_array_equal(res.distances, res.topology.distances())
