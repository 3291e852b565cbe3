"""Errors the CLI turns into one line on stderr and an exit code, and that line's format."""

from __future__ import annotations

PROG = "fastcelery"


class FastceleryError(Exception):
    """A failure while doing the work (exit code 1)."""

    exit_code = 1


class UsageError(FastceleryError):
    """Bad input or a missing prerequisite, detected before anything is written (exit code 2)."""

    exit_code = 2


def message_line(kind: str, message: str, prog: str = PROG) -> str:
    """``prog: kind: message`` on ONE line (``kind``: error, warning, note)."""
    return f"{prog}: {kind}: {' '.join(message.split())}"
