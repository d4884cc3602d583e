"""The command-line plumbing every script shares: the parser with one-line
errors, the runner that turns a :class:`~rnn.errors.UserError` into one line
and exit status 2, and the flags whose meaning is the same everywhere
(``--device``, ``--models-dir``, ``--out``/``--show``/``--quiet``)."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from rnn.errors import UserError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: ...``) and exit status 2."""

    def error(self, message: str):  # noqa: D401
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


DEBUG_ENV = "RNN_DEBUG"


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a script's ``main``; turn UserError, and any error of the operating
    system on a file (OSError: a full disk, a permission), into one line on
    stderr and exit 2, and any unanticipated error into one line with exit 1 and
    a hint: with $RNN_DEBUG set, that error's traceback is shown instead."""
    prog = sys.argv[0].rsplit("/", 1)[-1]
    try:
        code = main(argv)
    except UserError as e:
        sys.stderr.write(f"{prog}: error: {e}\n")
        sys.exit(getattr(e, "status", 2))
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): stop quietly, as Unix
        # tools do, without a second error when Python flushes stdout at exit
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except OSError as e:
        # the operating system refused a file (a full disk, a permission, a folder gone):
        # the person's to fix, not a bug; BrokenPipeError was handled above
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        sys.stderr.write(f"{prog}: error: {where}{e.strerror or e} (an operating-system "
                         f"error)\n")
        sys.exit(2)
    except Exception as e:                      # noqa: BLE001 (a bug: say so in one line)
        import os
        if os.environ.get(DEBUG_ENV):
            raise
        what = (str(e).strip().splitlines() or [""])[0][:300]
        sys.stderr.write(f"{prog}: internal error: {type(e).__name__}"
                         f"{': ' + what if what else ''} (this is a bug; rerun with "
                         f"{DEBUG_ENV}=1 to see where it happened)\n")
        sys.exit(1)
    sys.exit(code or 0)


def finite_float(text: str) -> float:
    """argparse type: a finite number (rejects nan, inf, -inf)."""
    import math
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


DEVICES = ("auto", "cpu", "cuda")


def add_device_arg(p: argparse.ArgumentParser, what: str = "where to run") -> None:
    """The one --device flag of every script: auto (default), cpu or cuda."""
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help=f"{what} (default auto: cuda where a GPU is visible, else cpu)")


def resolve_device(choice: str) -> str:
    """'cpu' or 'cuda' for a --device choice; cuda asked for without a GPU is a UserError."""
    import torch
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU here")
        return "cuda"
    return "cpu"


MODELS_DIR_HELP = "models folder (default: models/ beside this script, or $RNN_MODELS_DIR)"


def add_output_args(p: argparse.ArgumentParser, show: bool = True, quiet: str | None = None
                    ) -> None:
    """The flags every analysis script shares: --show, --quiet, --models-dir."""
    if show:
        p.add_argument("--show", action="store_true", help="also open the figures in windows")
    if quiet:
        p.add_argument("--quiet", action="store_true", help=quiet)
    p.add_argument("--models-dir", default=None, metavar="DIR", help=MODELS_DIR_HELP)


def finish(written, show: bool = False) -> int:
    """Print every file written; open the figure windows if asked."""
    for w in written:
        print(f"wrote {w}")
    if show:
        import matplotlib.pyplot as plt
        plt.show()
    return 0
