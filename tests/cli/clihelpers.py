"""Helpers of the CLI tests (imported by the test modules)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

REPO_ROOT = Path(__file__).resolve().parents[2]
FASTCELERY = Path(sys.executable).parent / "fastcelery"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(
    args: Sequence[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    """Run the installed ``fastcelery`` console script in a subprocess (real exit codes)."""
    proc = subprocess.run(
        [str(FASTCELERY), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


class Outcome(Protocol):
    """A finished CLI run: a :class:`Result` or ``typer.testing``'s result."""

    @property
    def exit_code(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


def assert_one_error_line(result: Outcome, *fragments: str, exit_code: int = 2) -> None:
    """The run failed (a usage error by default) with ONE error line naming every fragment."""
    shown = f"exit code {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.exit_code == exit_code, shown
    lines = result.stderr.splitlines()
    assert len(lines) == 1, shown
    assert result.stderr.count("\n") == 1, shown
    assert lines[0].startswith("fastcelery: error: "), shown
    for fragment in fragments:
        assert fragment in lines[0], shown


def tree(path: Path) -> list[str]:
    """Every path below ``path`` (to prove that nothing was written)."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def git_out(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=True
    ).stdout.strip()
