"""Every option combination renders into a project that lints, type-checks and passes its tests,
with two tasks added by `fastcelery add task` (one with a route, one without) in each."""

import itertools
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO_ROOT, run, uv_bin

from .matrix import (
    CORE_QUESTIONS,
    combination_id,
    combinations,
    questions,
    rejected_combinations,
    values_of,
)

# A Jinja expression or block tag left in the output (GitHub Actions' ${{ }} is not Jinja).
LEFTOVER_JINJA = re.compile(
    r"(?<!\$)\{\{\s*[A-Za-z_][^}]*\}\}|\{%-?\s*(?:if|elif|else|endif|for|endfor|set|raw)\b"
)
# Files whose {{ }} belong to another tool: Grafana's legend templates ({{task}}).
FOREIGN_TEMPLATES = ("monitoring/grafana/dashboards/",)
COMBINATIONS = combinations()
#: The tasks each matrix project gets, as a user adds them (the render is not a git repository).
ADDED_TASKS = (
    ["send_invoice"],
    ["nightly_report", "--no-route", "--queue", "priority", "--batch"],
)


def add_tasks(project: Path) -> None:
    fastcelery = [str(Path(sys.executable).parent / "fastcelery")]
    for args in ADDED_TASKS:
        run([*fastcelery, "add", "task", *args, "--no-git", str(project)], cwd=REPO_ROOT)


def rendered_files(project: Path) -> list[Path]:
    skip = {".venv", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}
    return [
        path
        for path in project.rglob("*")
        if path.is_file() and not skip.intersection(path.relative_to(project).parts)
    ]


def test_matrix_covers_every_choice() -> None:
    for name, spec in questions().items():
        for value in values_of(spec):
            assert any(c.get(name) == value for c in COMBINATIONS), (name, value)


def test_matrix_renders_yes_no_options_in_pairs_and_with_every_core_choice() -> None:
    flags = [name for name, spec in questions().items() if spec.get("type") == "bool"]
    flags = [name for name in flags if name not in CORE_QUESTIONS]
    for first, second in itertools.combinations(flags, 2):
        patterns = {(c[first], c[second]) for c in COMBINATIONS}
        assert len(patterns) == 4, (first, second, patterns)
    for flag in flags:
        for value in (False, True):
            chosen = [c for c in COMBINATIONS if c[flag] is value]
            for core in CORE_QUESTIONS:
                assert {c[core] for c in chosen} == {c[core] for c in COMBINATIONS}, (flag, core)


@pytest.mark.parametrize("answers", rejected_combinations(), ids=combination_id)
def test_invalid_combinations_are_rejected(copie: Any, answers: dict[str, Any]) -> None:
    result = copie.copy(extra_answers=answers)
    assert result.exit_code != 0
    assert "Validation error" in str(result.exception)


@pytest.mark.slow
@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_rendered_project_lints_typechecks_and_passes_its_tests(
    copie: Any, answers: dict[str, Any]
) -> None:
    result = copie.copy(extra_answers={"project_name": "matrix-svc", **answers})
    assert result.exit_code == 0, result.exception
    project: Path = result.project_dir
    add_tasks(project)

    for path in rendered_files(project):
        if path.relative_to(project).as_posix().startswith(FOREIGN_TEMPLATES):
            continue
        text = path.read_text(errors="replace")
        leftover = LEFTOVER_JINJA.search(text)
        if leftover:
            pytest.fail(f"unrendered Jinja in {path.relative_to(project)}: {leftover.group(0)}")

    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for name, value in answers.items():
        assert recorded[name] == value

    uv = uv_bin()
    run([uv, "sync", "--quiet"], cwd=project)
    run([uv, "run", "ruff", "check", "."], cwd=project)
    run([uv, "run", "ruff", "format", "--check", "."], cwd=project)
    run([uv, "run", "mypy"], cwd=project)
    tests = run([uv, "run", "pytest", "-q", "-p", "no:cacheprovider", "-rA"], cwd=project)
    assert re.search(r"\d+ passed", tests.stdout), tests.stdout[-2000:]
    for name in ("send_invoice", "nightly_report"):  # the added tasks' own tests ran
        assert f"PASSED tests/test_{name}.py::" in tests.stdout, tests.stdout[-2000:]
    assert "failed" not in tests.stdout.splitlines()[-1]
