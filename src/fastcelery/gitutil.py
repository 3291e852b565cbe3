"""Small wrappers around the ``git`` command line."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from fastcelery.errors import FastceleryError

#: Used for commits when the user has no git identity configured.
FALLBACK_IDENTITY = ("fastcelery", "fastcelery@localhost")


def have_git() -> bool:
    return shutil.which("git") is not None


def git(
    cwd: Path,
    *args: str,
    check: bool = True,
    identity: bool = False,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` in ``cwd``; with ``identity``, add a fallback author if none is set.

    ``env`` adds variables to this process's environment for the one command.
    """
    cmd = ["git"]
    if identity and not has_identity(cwd):
        name, email = FALLBACK_IDENTITY
        cmd += ["-c", f"user.name={name}", "-c", f"user.email={email}"]
    cmd += list(args)
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        input=input,
        env={**os.environ, **env} if env else None,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise FastceleryError(
            f"git {' '.join(args)} failed in {cwd}: {detail[-1] if detail else proc.returncode}"
        )
    return proc


def has_identity(cwd: Path) -> bool:
    for key in ("user.name", "user.email"):
        proc = subprocess.run(
            ["git", "config", "--get", key], cwd=cwd, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not proc.stdout.strip():
            return False
    return True


def inside_work_tree(path: Path) -> bool:
    proc = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=path,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() == "true"


def status_porcelain(path: Path) -> list[str]:
    # --no-optional-locks: reading the status never rewrites .git/index (a dry run writes nothing).
    out = git(path, "--no-optional-locks", "status", "--porcelain").stdout
    return [line for line in out.splitlines() if line]


def init_and_commit(path: Path, message: str, files: Sequence[str] | None = None) -> str:
    """``git init`` + first commit of ``files`` (default: everything); returns its hash."""
    git(path, "init", "-q")
    if files is None:
        git(path, "add", "-A")
    else:
        git(path, "add", "--", *files)
    git(path, "commit", "-q", "--no-verify", "-m", message, identity=True)
    return git(path, "rev-parse", "HEAD").stdout.strip()
