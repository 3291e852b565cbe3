"""Fixtures of the CLI tests: an isolated template cache and git config, run helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each xdist worker gets its own cache directory and an empty global git config.

    The empty git config means no git identity: renders exercise the fallback identity.
    """
    base = tmp_path_factory.mktemp("cli-env")
    gitconfig = base / "gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n")
    saved = dict(os.environ)
    os.environ["XDG_CACHE_HOME"] = str(base / "cache")
    os.environ.pop("FASTCELERY_TEMPLATE_CACHE", None)  # fastcelery 0.1.0's cache variable
    os.environ["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        os.environ.pop(var, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
