"""Fixtures of the operations tests."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .helpers import render

RenderFn = Callable[[dict[str, Any]], Path]


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> RenderFn:
    """rendered(answers) -> the project directory (rendered once per combination)."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist every worker has its own basetemp; their parent is shared by the run.
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "ops-projects"

    def _rendered(answers: dict[str, Any]) -> Path:
        return render(answers, root)

    return _rendered
