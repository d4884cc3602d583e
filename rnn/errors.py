"""Errors meant for the person at the keyboard (the command-line plumbing that
prints them is :mod:`rnn.cli`)."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""
