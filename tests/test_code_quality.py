"""This repository's own code stays ruff- and mypy-clean (the template is checked per render)."""

import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT, run

TOOLS = Path(sys.executable).parent


@pytest.mark.parametrize(
    "argv",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_repository_code_is_clean(argv: list[str]) -> None:
    run([str(TOOLS / argv[0]), *argv[1:]], cwd=REPO_ROOT)
