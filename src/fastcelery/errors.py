"""Errors the CLI turns into one line on stderr and an exit code."""

from __future__ import annotations


class FastceleryError(Exception):
    """A failure while doing the work (exit code 1)."""

    exit_code = 1


class UsageError(FastceleryError):
    """Bad input or a missing prerequisite, detected before anything is written (exit code 2)."""

    exit_code = 2
