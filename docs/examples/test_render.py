"""Test your renders of the fastcelery template with pytest-copie.

Copy this file into your own repository (for example ``tests/test_render.py``), then:

    uv add --dev fastcelery pytest pytest-copie
    uv run pytest tests/test_render.py                 # renders and checks each answer set
    RENDER_FULL=1 uv run pytest tests/test_render.py   # + each project's own lint and tests

The template is the one shipped with the installed fastcelery, so CI tests exactly the
version your team pins. fastcelery's own test suite runs this file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastcelery.paths import template_root

TEMPLATE = template_root()

# The answer sets your services use (see `fastcelery options` for every question).
ANSWER_SETS: list[dict[str, Any]] = [
    {"broker": "redis", "result_backend": "redis", "database": "postgresql"},
    {"broker": "rabbitmq", "result_backend": "postgresql", "database": "postgresql",
     "pydantic": True},
    {"broker": "redis", "result_backend": "none", "database": "sqlite"},
]  # fmt: skip

full = pytest.mark.skipif(
    not os.environ.get("RENDER_FULL"),
    reason="set RENDER_FULL=1 to run each rendered project's own lint and tests",
)


def render(copie: Any, answers: dict[str, Any]) -> Path:
    result = copie.copy(
        extra_answers={"project_name": "orders", "package_name": "orders", **answers},
        template_dir=TEMPLATE,
    )
    assert result.exit_code == 0, result.exception
    assert result.exception is None
    project: Path = result.project_dir
    return project


@pytest.mark.parametrize("answers", ANSWER_SETS, ids=lambda a: "-".join(map(str, a.values())))
def test_renders_with_our_answers(copie: Any, answers: dict[str, Any]) -> None:
    project = render(copie, answers)
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for name, value in answers.items():
        assert recorded[name] == value
    assert (project / "pyproject.toml").is_file()
    assert (project / "orders" / "main.py").is_file()
    # No Jinja left unrendered anywhere.
    for path in project.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".toml", ".md", ".ini", ".example"}:
            assert "{{" not in path.read_text(), path


@full
@pytest.mark.parametrize("answers", ANSWER_SETS[:1], ids=["default"])
def test_rendered_project_passes_its_own_checks(copie: Any, answers: dict[str, Any]) -> None:
    project = render(copie, answers)
    uv = shutil.which("uv")
    assert uv, "uv is needed to run the rendered project's checks"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    for command in (
        [uv, "sync", "--quiet"],
        [uv, "run", "ruff", "check", "."],
        [uv, "run", "pytest", "-q", "-p", "no:cacheprovider"],
    ):
        done = subprocess.run(
            command, cwd=project, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
