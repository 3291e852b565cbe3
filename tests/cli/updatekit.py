"""Helpers of the update-path tests: machines, installed fastcelery versions, a team mirror.

* A :class:`Machine` is a user: its own HOME and cache directory, a git configuration with
  no network (every ``https://`` and ``git@`` URL is rewritten to a path that does not
  exist) and no git identity, and the real ``fastcelery`` run in a subprocess.
* :func:`install_version` makes what installing a released fastcelery gives: a copy of the
  package and the template, the template changed, and the release step run on the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fastcelery.history import SOURCE_URL, build_history
from fastcelery.paths import SUBTEMPLATES_DIR
from fastcelery.release import publish_subtemplates, release, set_package_version

from .clihelpers import REPO_ROOT, Result

IDENTITY = ("-c", "user.name=Test User", "-c", "user.email=test@example.com")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")
#: Variables of the test process that must not leak into a machine's processes.
_PRIVATE = ("FASTCELERY_", "GIT_CONFIG", "GIT_AUTHOR", "GIT_COMMITTER", "XDG_", "COPIER_")


@dataclass
class Machine:
    root: Path
    #: Extra git configuration (e.g. a team's ``insteadOf`` mirror).
    git_config: str = ""
    ci: bool = False

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        offline = (
            "[init]\n\tdefaultBranch = main\n"
            '[url "file:///nonexistent/no-network/"]\n\tinsteadOf = https://\n\tinsteadOf = git@\n'
        )
        (self.root / "gitconfig").write_text(offline + self.git_config)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE)}
        env.pop("VIRTUAL_ENV", None)
        env.pop("CI", None)
        env.update(
            HOME=str(self.home),
            XDG_CACHE_HOME=str(self.cache),
            GIT_CONFIG_GLOBAL=str(self.root / "gitconfig"),
            GIT_CONFIG_NOSYSTEM="1",
            **({"CI": "true"} if self.ci else {}),
            **extra,
        )
        return env

    def fastcelery(self, *args: str, cwd: Path, installed: Path | None = None) -> Result:
        """``fastcelery ARGS`` in a real process; ``installed``: that copy of fastcelery."""
        extra = {"PYTHONPATH": str(installed / "src")} if installed else {}
        return self.run([sys.executable, "-m", "fastcelery.cli", *args], cwd, **extra)

    def run(self, argv: list[str], cwd: Path, **extra: str) -> Result:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def git(self, cwd: Path, *args: str) -> str:
        proc = subprocess.run(
            ["git", *IDENTITY, *args],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout.strip()


def install_version(
    dst: Path, version: str, change: Callable[[Path], None], base: Path = REPO_ROOT
) -> Path:
    """A fastcelery whose template is ``base``'s changed by ``change`` and released as
    ``version`` (with every release ``base`` ships): what installing that release gives.
    ``change`` gets the copy's ``template/``; its sub-templates are beside it."""
    shutil.copytree(base / "src" / "fastcelery", dst / "src" / "fastcelery", ignore=_SKIP)
    shutil.copy2(base / "copier.yml", dst / "copier.yml")
    shutil.copytree(base / "template", dst / "template", ignore=_SKIP)
    shutil.copytree(base / SUBTEMPLATES_DIR, dst / SUBTEMPLATES_DIR, ignore=_SKIP)
    change(dst / "template")
    package = dst / "src" / "fastcelery"
    release(version, dst, package / "releases")
    set_package_version(version, package / "__init__.py")
    return dst


def publish_mirror(dst: Path, installed: Path) -> Path:
    """The template's published repository, as a team's internal mirror holds it."""
    build_history(dst, installed, installed / "src" / "fastcelery" / "releases")
    return dst


def publish_subtemplate_mirror(dst: Path, installed: Path, kind: str) -> Path:
    """The published history of a sub-template (its own repository), as a mirror holds it:
    what the release step's ``--publish-subtemplates`` writes."""
    releases = installed / "src" / "fastcelery" / "releases"
    return next(r for r in publish_subtemplates(dst, installed, releases) if r.name == kind)


def mirror_config(mirror: Path, url: str = SOURCE_URL) -> str:
    """Git configuration that makes ``url`` read ``mirror`` (a team's internal mirror)."""
    return f'[url "{mirror.as_uri()}"]\n\tinsteadOf = {url}\n'


def answers_of(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert isinstance(data, dict)
    return data


def write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def snapshot(*roots: Path) -> dict[str, bytes]:
    """Every file (and symlink target) under ``roots``, for byte-for-byte comparisons."""
    found: dict[str, bytes] = {}
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_symlink():
                found[str(path)] = os.readlink(path).encode()
            elif path.is_file():
                found[str(path)] = path.read_bytes()
            else:
                found[str(path)] = b"<dir>"
    return found
