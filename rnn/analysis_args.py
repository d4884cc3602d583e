"""The activity-analysis flags shared by svcca_analysis.py and similarity_analysis.py."""
from __future__ import annotations

import dataclasses

from rnn.errors import UserError
from rnn.cli import finite_float


def add_analysis_args(p) -> None:
    """--analysis, --dims, --keep, --levels, --x0, --probe-seed."""
    a = p.add_argument_group("analysis (default: this tool's; --analysis original sets the "
                             "original study's, single flags override it)")
    a.add_argument("--analysis", choices=("tool", "original"), default="tool",
                   help="tool: x from 0, 10 levels per context, directions explaining 95%% of "
                        "the variance; original (its commit 4b4fb8a, which made the paper's "
                        "distance matrix): 2 SVD directions, 120/N levels per context, every "
                        "probe trial from its own random state 0.3*N(0,1)")
    a.add_argument("--dims", default=None, metavar="{auto,K}",
                   help="SVD directions kept per network: auto (the fewest explaining --keep "
                        "of the variance) or a fixed number K")
    a.add_argument("--keep", type=finite_float, default=0.95,
                   help="with --dims auto: fraction of variance the SVD directions must "
                        "explain (default 0.95)")
    a.add_argument("--levels", default=None, metavar="{L,original}",
                   help="static evidence levels per context, evenly spaced in +-mean "
                        "(default 10; original: 120/N)")
    a.add_argument("--x0", choices=("zero", "random"), default=None,
                   help="probe trials start at x = 0, or each from its own random state "
                        "0.3*N(0,1) (different for every network and trial; drawn from "
                        "--probe-seed and the network's weights)")
    a.add_argument("--probe-seed", type=int, default=0, metavar="S",
                   help="seed of the random probe starts (default 0; recorded)")


def add_bootstrap_arg(p) -> None:
    p.add_argument("--bootstrap", type=int, default=2000, metavar="B",
                   help="bootstrap resamples and label permutations for the silhouette's "
                        "interval and p-value (default 2000; 0 skips them)")


def options_from_args(args):
    """The SVCCAOptions the flags ask for."""
    from rnn.analysis.svcca import SVCCAOptions
    if not (0 < args.keep <= 1):
        raise UserError(f"--keep must be in (0, 1], got {args.keep}")
    if not 0 <= args.probe_seed < 2**62:
        raise UserError(f"--probe-seed must be in [0, 2**62), got {args.probe_seed}")
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    base = SVCCAOptions.original(args.probe_seed) if args.analysis == "original" else \
        SVCCAOptions(probe_seed=args.probe_seed)
    over = {"keep": args.keep}
    for flag, value, word, low in (("--dims", args.dims, "auto", 1),
                                   ("--levels", args.levels, "original", 2)):
        if value is None:
            continue
        if value == word:                      # None: the automatic / original choice
            over[flag[2:]] = None
        elif value.isdigit() and int(value) >= low:
            over[flag[2:]] = int(value)
        else:
            raise UserError(f"{flag} must be {word} or a number of at least {low}, got "
                            f"{value!r}")
    if args.x0 is not None:
        over["x0"] = args.x0
    return dataclasses.replace(base, **over)


