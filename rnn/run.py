"""A network's record: the one builder of ``NAME.json`` (also the ``meta``
inside ``NAME.pt``), for every door that makes a network — ``train_models.py``
(and the grid's jobs, which run it), its ``--snapshots``, ``rnn.api.save`` and
``import_model.py``.

A record is, in this order:

    name                       the network's name
    rule, rule_name, task      what it is: the learning rule (its registry name and
    network                    long name), the task (tasks.DecisionTask.to_dict) and
                               the network's shape (hidden, activation, readout, dt,
                               x0_scale where trained here, clamped units)
    ...settings                how it was made: a training run's configs, a source
                               file's provenance (given by the caller)
    versions, command          the packages, the machine and the command line
    seed, status, converged,   how its training ended ("imported": converged null)
    steps, final_accuracy
    ...outcome                 the run's own numbers (stop step, validations, wall ...)
    created                    when the record was written (UTC)
"""
from __future__ import annotations

import datetime as _dt


def identity(rule: str, task, model, x0_scale: float | None = None) -> dict:
    """rule, rule_name, task and network of a record (the same for every
    network of one run)."""
    from rnn.rules import get
    net = {"hidden": model.hidden, "activation": model.activation, "readout": model.readout,
           "dt": model.dt}
    if x0_scale is not None:
        net["x0_scale"] = x0_scale
    net.update({"clamp_idx": list(model.clamp_idx), "clamp_val": list(model.clamp_val)})
    return {"rule": rule, "rule_name": get(rule).long_name, "task": task.to_dict(),
            "network": net}


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def record(name: str, ident: dict, status: str, *, seed: int | None = None,
           steps: int | None = None, accuracy: float | None = None,
           settings: dict | None = None, outcome: dict | None = None) -> dict:
    """The record of one network (see the module docstring for its fields).
    ``ident`` from :func:`identity`; ``seed``, ``steps`` and ``accuracy`` are
    left out when unknown (an imported network); ``settings`` may carry its own
    ``versions`` and ``command`` (a run records them once for all its networks)."""
    from rnn.io import package_versions_and_command
    rec = {"name": name, **ident, **(settings or {})}
    if "versions" not in rec:
        rec.update(package_versions_and_command())
    if seed is not None:
        rec["seed"] = seed
    rec["status"] = status
    rec["converged"] = None if status == "imported" else status == "converged"
    if steps is not None:
        rec["steps"] = steps
    if accuracy is not None:
        rec["final_accuracy"] = accuracy
    rec.update(outcome or {})
    rec["created"] = now()
    return rec
