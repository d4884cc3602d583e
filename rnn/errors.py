"""Errors meant for the person at the keyboard (the command-line plumbing that
prints them is :mod:`rnn.cli`)."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2 (or
    ``status``, for a refusal a calling program tells apart by it)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status
