"""The attractor census: how a network's fixed points fall on its static inputs.

For each static input of a set (e.g. the 'small' set of
fixed_point_input_topology.py) the fixed points found under that input are
classed by their stability:

* **monostable** — exactly one fixed point, and it is stable;
* **bistable** — two stable points and one saddle with a single unstable
  direction (two choice attractors and the point on the boundary between
  them);
* **other** — anything else (no point, an unstable point alone, three stable
  points, ...).

A network is *monostable* or *bistable* when every input is, *mixed*
otherwise.  The census says what kind of attractor landscape a network has;
the topology descriptor of rnn/analysis/compare.py says how its points are arranged by
input, which for these landscapes follows largely from the kind.  The two
descriptors here, the count of points and the stable points per input, let a
comparison ask whether the topology separates groups beyond what the census
already does.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rnn.analysis.fixed_points import FixedPoints

INPUT_CLASSES = ("monostable", "bistable", "other")
KINDS = ("monostable", "bistable", "mixed")


def input_classes(fp: FixedPoints, n_inputs: int) -> np.ndarray:
    """The class of each static input, as an index into INPUT_CLASSES [n_inputs]."""
    idx = np.asarray(fp.input_index, dtype=np.int64)
    stable = np.asarray(fp.is_stable, dtype=bool)
    n_unst = np.asarray(fp.n_unstable, dtype=np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() >= n_inputs):
        raise ValueError(f"fixed points of input {idx.max()} outside the {n_inputs} inputs")
    S = np.bincount(idx[stable], minlength=n_inputs)
    U = np.bincount(idx[~stable], minlength=n_inputs)
    U1 = np.bincount(idx[~stable & (n_unst == 1)], minlength=n_inputs)
    out = np.full(n_inputs, 2)
    out[(S == 1) & (U == 0)] = 0
    out[(S == 2) & (U == 1) & (U1 == 1)] = 1
    return out


def stable_per_input(fp: FixedPoints, n_inputs: int) -> np.ndarray:
    """The number of stable fixed points under each static input [n_inputs]."""
    idx = np.asarray(fp.input_index, dtype=np.int64)
    return np.bincount(idx[np.asarray(fp.is_stable, dtype=bool)],
                       minlength=n_inputs).astype(float)


@dataclass(frozen=True)
class Census:
    """One network's census: inputs of each class, and its fixed points."""
    inputs: int
    monostable: int
    bistable: int
    other: int
    points: int
    stable: int

    @property
    def kind(self) -> str:
        """'monostable' or 'bistable' when every input is, else 'mixed'."""
        if self.monostable == self.inputs:
            return "monostable"
        if self.bistable == self.inputs:
            return "bistable"
        return "mixed"

    def to_dict(self) -> dict:
        return {**asdict(self), "kind": self.kind}


def census(fp: FixedPoints, n_inputs: int) -> Census:
    cls = input_classes(fp, n_inputs)
    counts = np.bincount(cls, minlength=3)
    return Census(int(n_inputs), int(counts[0]), int(counts[1]), int(counts[2]),
                  int(len(fp.xstar)), int(np.asarray(fp.is_stable, dtype=bool).sum()))


def summarise(cs: list[Census], updates: list[int] | None = None) -> dict:
    """A group's census: networks of each kind, the mean share of inputs of each
    class, the median and range of the fixed-point count, and the median of
    ``updates`` (the training length) when given."""
    if not cs:
        return {"networks": 0}
    kinds = [c.kind for c in cs]
    pts = [c.points for c in cs]
    out = {"networks": len(cs), "static_inputs": cs[0].inputs, "kinds": {k: kinds.count(k) for k in KINDS},
           "inputs": {k: float(np.mean([getattr(c, k) / c.inputs for c in cs]))
                      for k in INPUT_CLASSES},
           "points_median": float(np.median(pts)), "points_range": [min(pts), max(pts)]}
    if updates:
        out["updates_median"] = float(np.median(updates))
    return out
