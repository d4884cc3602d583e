"""rnn/analysis/census.py: the classes of static inputs by their fixed points, on
networks whose fixed points are known in closed form."""
import numpy as np
import pytest

from rnn.analysis.census import census, input_classes, stable_per_input, summarise
from rnn.analysis.fixed_points import SolverConfig, find_fixed_points
from test_fixed_points import net

import torch

CFG = SolverConfig(n_box=40, n_traj=20)


def one_unit(w, inputs):
    """x = w·tanh(x) + u: for w = 2 and u = 0 two stable points and a saddle at 0
    (bistable); a strong input u = 5 leaves one stable root; w = 0.5 one root always."""
    model = net([[w]], [0.0], "tanh", W_in=torch.ones(1, 1, 1, dtype=torch.float64))
    u = np.array(inputs, dtype=float)[:, None]
    return find_fixed_points(model, u, evidence=u[:, 0], cfg=CFG)


def test_bistable_and_monostable_inputs_of_a_known_network():
    fp = one_unit(2.0, [0.0, 5.0])
    assert input_classes(fp, 2).tolist() == [1, 0]          # bistable, monostable
    c = census(fp, 2)
    assert (c.monostable, c.bistable, c.other, c.points, c.stable) == (1, 1, 0, 4, 3)
    assert c.kind == "mixed"
    assert stable_per_input(fp, 2).tolist() == [2.0, 1.0]
    assert census(one_unit(2.0, [0.0, 0.01]), 2).kind == "bistable"
    assert census(one_unit(0.5, [0.0, 1.0, -1.0]), 3).kind == "monostable"


def test_an_input_without_points_or_with_an_unstable_point_alone_is_other():
    fp = one_unit(0.5, [0.0])
    # pretend the input set had a second input the solver found nothing under, and
    # that the one point were unstable
    assert input_classes(fp, 2).tolist() == [0, 2]
    fp.is_stable[:] = False
    fp.n_unstable[:] = 1
    assert input_classes(fp, 1).tolist() == [2]
    with pytest.raises(ValueError):
        input_classes(one_unit(0.5, [0.0, 1.0]), 1)          # a point outside the inputs


def test_summary_of_a_group():
    a = census(one_unit(2.0, [0.0, 0.01]), 2)                 # bistable, 6 points
    b = census(one_unit(0.5, [0.0, 1.0]), 2)                  # monostable, 2 points
    s = summarise([a, b, b], [100, 200, 300])
    assert s["networks"] == 3 and s["static_inputs"] == 2 and s["kinds"] == {"monostable": 2, "bistable": 1, "mixed": 0}
    assert s["inputs"]["bistable"] == pytest.approx(1 / 3)
    assert s["points_median"] == 2 and s["points_range"] == [2, 6]
    assert s["updates_median"] == 200
    assert summarise([]) == {"networks": 0}
