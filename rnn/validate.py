"""One set of validators for what enters the tool, whatever the door: a
command-line flag, a grid file's cell, an ``rnn.api`` argument.  Each takes the
value and ``what`` (the name the person used: ``--count``, ``networks``,
``n_boot``), returns the value in its canonical type, and raises
:class:`rnn.errors.UserError` with one line that names ``what``, the allowed
range and the value given — before any work starts.

Names of networks are checked by :func:`rnn.io.check_name`, hidden sizes per
rule by :func:`rnn.rules.check_hidden`; both are called beside these.
"""
from __future__ import annotations

import math
import numbers

from rnn.errors import UserError

MAX_CONTEXTS = 64       # N of N-CDI (the paper's go to 6); model files are held to it too
MAX_STEPS = 100_000     # time steps of a trial (the paper's: 750)
SEED_LIMIT = 2 ** 62    # seeds are 0 ... 2**62 - 1 (a counter-based stream's key)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and \
        type(v).__name__ != "bool_"


def integer(v, what: str, low: int, high: int | None = None) -> int:
    """An integer in low..high (high None: no upper bound)."""
    if not _is_int(v) or v < low or (high is not None and v > high):
        span = f"of at least {low}" if high is None else f"in {low}…{high}"
        raise UserError(f"{what} must be an integer {span}, got {v!r}")
    return int(v)


def number(v, what: str, low: float = 0.0, high: float = math.inf,
           low_open: bool = False) -> float:
    """A finite real number in [low, high] ((low, high] with ``low_open``)."""
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and \
        (v > low if low_open else v >= low) and v <= high
    if not ok:
        span = (f"greater than {low:g}" if low_open else f"of at least {low:g}") + \
            ("" if high == math.inf else f" and at most {high:g}")
        raise UserError(f"{what} must be a finite number {span}, got {v!r}")
    return float(v)


def noise(v, what: str = "noise") -> float:
    """The input noise's standard deviation (-v): finite, 0 or more."""
    if not (isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            and v >= 0):
        raise UserError(f"{what} must be a non-negative finite noise level, got {v!r}")
    return float(v)


def mean(v, what: str = "mean") -> float:
    """The largest evidence strength of a task (-m): finite and positive."""
    return number(v, what, 0.0, low_open=True)


def contexts(v, what: str = "N") -> int:
    """N of N-CDI: the number of contexts."""
    return integer(v, what, 1, MAX_CONTEXTS)


def steps(v, what: str = "steps") -> int:
    """Time steps of a trial."""
    return integer(v, what, 2, MAX_STEPS)


def seed_range(first, count: int, what: str = "seed") -> int:
    """The first of ``count`` consecutive seeds, all below SEED_LIMIT."""
    first = integer(first, what, 0, SEED_LIMIT - 1)
    if first + count > SEED_LIMIT:
        raise UserError(f"{what} must be in [0, 2**62 - {count}] so that its {count} seeds "
                        f"stay below 2**62, got {first}")
    return first


def seed_list(seeds, what: str = "seeds") -> list[int]:
    """Distinct seeds, at least one (each names a network)."""
    try:
        out = [integer(s, f"each of {what}", 0, SEED_LIMIT - 1) for s in seeds]
    except TypeError:
        raise UserError(f"{what} must be a list of integers, got {seeds!r}") from None
    if not out or len(set(out)) != len(out):
        raise UserError(f"{what} must be distinct and at least one (each names a network), "
                        f"got {out}")
    return out


def device(choice, what: str = "--device") -> str:
    """'cpu' or 'cuda' for auto | cpu | cuda; cuda without a GPU is refused."""
    from rnn.cli import DEVICES, resolve_device
    if choice not in DEVICES:
        raise UserError(f"{what} must be one of {', '.join(DEVICES)}, got {choice!r}")
    return resolve_device(choice)
