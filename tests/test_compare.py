import json

import numpy as np
import pytest

from helpers import run_script
from rnn.analysis.compare import topology_descriptor
from rnn.errors import UserError
from rnn.analysis.fixed_points import FixedPoints
from rnn.io.groups import read_groups
from rnn.io import save_model
from rnn.model import RateRNN
from rnn.rng import Streams
from tasks import ncdi, rdm


def fake_points(xs, evidence, input_index):
    n = len(xs)
    e = np.zeros(0)
    return FixedPoints(np.array(xs, float), np.zeros((n, 1)), np.array(input_index),
                       np.array(evidence, float), np.zeros(n, int), np.zeros(n),
                       np.zeros((n, 1), complex), np.ones(n, bool), np.zeros(n, int),
                       np.zeros((0, 2)), np.zeros((0, 1)), e.astype(int), e, e.astype(int), e,
                       np.array(1), np.array("h"))


class Linear:
    """Stand-in model whose output is the first coordinate."""
    dtype = None

    def output(self, x):
        return x[..., 0]


def test_topology_descriptor_neighbours_and_ordering():
    # four points on a line; inputs -2, -1, 1, 2; nearest neighbours along the line
    fp = fake_points([[3, 0], [0, 0], [1, 0], [10, 0]], [1.0, -2.0, -1.0, 2.0], [2, 0, 1, 3])
    v, m = topology_descriptor(fp, Linear(), n_points=4, k=3)
    assert m == 4
    rows = v.reshape(4, 3)
    # ordered by input: (x=0, -2), (x=1, -1), (x=3, 1), (x=10, 2); self first
    np.testing.assert_array_equal(rows[0], [-2, -1, 1])
    np.testing.assert_array_equal(rows[1], [-1, -2, 1])
    np.testing.assert_array_equal(rows[2], [1, -1, -2])
    np.testing.assert_array_equal(rows[3], [2, 1, -1])


def test_topology_descriptor_with_few_points_is_padded_not_crashing():
    fp = fake_points([[0.0, 0], [1.0, 0]], [-0.5, 0.5], [0, 1])
    v, m = topology_descriptor(fp, Linear(), n_points=10, k=3)
    assert m == 2 and v.shape == (30,)
    rows = v.reshape(10, 3)
    np.testing.assert_array_equal(rows[0], [-0.5, 0.5, 0.5])     # padded neighbour list
    np.testing.assert_array_equal(rows[2], rows[0])               # rows reused cyclically
    none, m0 = topology_descriptor(fake_points(np.zeros((0, 2)), [], []), Linear())
    assert none is None and m0 == 0


def make_models(d, names, task=None, scale=10.0):
    task = task or rdm(0.5)
    for i, n in enumerate(names):
        m = RateRNN.init(Streams([i], 1), task.n_inputs)
        save_model(n, m.replace(W_rec=m.W_rec * scale), {"rule": "bptt", "task": task.to_dict()},
                   {}, d)


@pytest.mark.parametrize("text, message", [
    ("A a1 a2\nB b1 nosuch\n", "'nosuch' does not exist"),
    ("A a1\nB b1 b2\n", "at least 2"),
    ("A a1 a2\nB b1 a1\n", "listed twice"),
    ("A a1 a2\nA b1 b2\n", "used twice"),
    ("# only a comment\n\n", "no groups"),
    ("A\n", "needs a label and at least one model"),
])
def test_groups_file_errors(text, message, tmp_path):
    make_models(tmp_path, ["a1", "a2", "b1", "b2"])
    (tmp_path / "g.txt").write_text(text)
    with pytest.raises(UserError, match=message):
        read_groups(["g.txt"], tmp_path)


def test_groups_file_missing_and_comments(tmp_path):
    make_models(tmp_path, ["a1", "a2", "b1", "b2"])
    with pytest.raises(UserError, match="not found"):
        read_groups(["nothing.txt"], tmp_path)
    (tmp_path / "g.txt").write_text("# header\nA a1 a2  # first\n\nB b1 b2\n")
    g = read_groups(["g.txt"], tmp_path)
    assert g.labels == ["A", "B"] and g.names == ["a1", "a2", "b1", "b2"]
    with pytest.raises(UserError, match="has 2 networks; each group needs at least 3"):
        read_groups(["g.txt"], tmp_path, min_groups=2, min_members=3)


def test_scripts_end_to_end_and_errors(models_tmp):
    make_models(models_tmp, ["bptt_a", "bptt_b", "ga_a", "ga_b"])
    (models_tmp / "g.txt").write_text("BPTT bptt_a bptt_b\nGA ga_a ga_b\n")
    r = run_script("svcca_analysis.py", "g.txt", "-reload", "--quiet", models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    assert "silhouette score (precomputed SVCCA distances):" in r.stdout
    D = np.load(models_tmp / "g_distances.npy")
    assert D.shape == (4, 4) and np.allclose(D, D.T)
    meta = json.loads((models_tmp / "g_distances.json").read_text())
    assert meta["names"] == ["bptt_a", "bptt_b", "ga_a", "ga_b"]
    for f in ("g_svcca_heatmap.png", "g_svcca_mds.png", "g_svcca_summary.json"):
        assert (models_tmp / f).exists() and f"wrote {models_tmp / f}" in r.stdout
    r2 = run_script("svcca_analysis.py", "g.txt", "--quiet", models_dir=models_tmp)
    assert r2.returncode == 0 and "reusing the cached distances" in r2.stdout
    # the cache is keyed per network: another groups file of the same networks reuses it
    (models_tmp / "h.txt").write_text("BPTT bptt_a bptt_b\nGA ga_b ga_a\n")
    r3 = run_script("svcca_analysis.py", "h.txt", "--quiet", models_dir=models_tmp)
    assert "reusing the cached distances" in r3.stdout, r3.stdout
    D3 = np.load(models_tmp / "h_distances.npy")
    assert np.allclose(D3[2, 3], D[2, 3]) and np.allclose(D3[0, 2], D[0, 3])
    # a changed network is recomputed (only it), and said so
    make_models(models_tmp, ["ga_a"], scale=3.0)
    r4 = run_script("svcca_analysis.py", "h.txt", "--quiet", models_dir=models_tmp)
    assert "computed 3 of 6 pairwise SVCCA distances" in r4.stdout, r4.stdout

    t = run_script("fixed_point_input_topology.py", "g.txt", "--quiet", models_dir=models_tmp)
    assert t.returncode == 0, t.stderr
    assert "silhouette score (attractor input topology):" in t.stdout
    z = np.load(models_tmp / "g_topology.npz")
    assert z["descriptors"].shape == (4, 30)
    assert (models_tmp / "bptt_a_fixed_points_small.npz").exists()

    # mixed tasks are refused
    make_models(models_tmp, ["bptt_c1", "bptt_c2"], task=ncdi(2))
    (models_tmp / "mix.txt").write_text("R bptt_a bptt_b\nC bptt_c1 bptt_c2\n")
    bad = run_script("svcca_analysis.py", "mix.txt", models_dir=models_tmp)
    assert bad.returncode == 2 and "different tasks" in bad.stderr
    missing = run_script("fixed_point_input_topology.py", "none.txt", models_dir=models_tmp)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_one_group_file_runs_without_silhouette(models_tmp):
    make_models(models_tmp, ["bptt_a", "bptt_b", "bptt_c"])
    (models_tmp / "pop.txt").write_text("pop bptt_a bptt_b bptt_c\n")
    r = run_script("svcca_analysis.py", "pop.txt", "--quiet", models_dir=models_tmp)
    assert r.returncode == 0, r.stderr
    assert "not defined for a single group" in r.stdout


def test_networks_at_zero_distance_embed_at_one_point_without_warnings():
    """Identical descriptors (all distances 0): every network at the origin, not
    MDS's undefined stress warned at each of its iterations; others embed as before."""
    import warnings

    from rnn.analysis.compare import cluster_distances
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = cluster_distances(np.zeros((4, 4)), ["a", "a", "b", "b"])
    assert c.embedding.shape == (4, 2) and not c.embedding.any()
    x = np.array([0.0, 1.0, 5.0, 6.0])
    d = cluster_distances(np.abs(x[:, None] - x[None, :]), ["a", "a", "b", "b"]).embedding
    assert np.linalg.norm(d[0] - d[1]) < np.linalg.norm(d[0] - d[2])
