"""``fastcelery info``: a project's template version, answers and added templates."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fastcelery import cli
from fastcelery.history import SOURCE_URL, open_history
from fastcelery.paths import template_root

from .clihelpers import assert_one_error_line, tree


def test_info_shows_version_answers_and_added_templates(runner: CliRunner, tmp_path: Path) -> None:
    made = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path), "--defaults", "--no-git"])
    assert made.exit_code == 0, made.output
    project = tmp_path / "svc"
    (project / ".copier-answers.task-resize.yml").write_text(
        f"_commit: v0.1.0\n_src_path: {SOURCE_URL}\ntask_name: resize\nroute: true\n"
    )
    result = runner.invoke(cli.app, ["info", str(project)])
    assert result.exit_code == 0, result.output
    with open_history(template_root()) as history:
        carried = history.describe()
        expected = "a release" if history.released else "this fastcelery's unreleased template"
    out = result.stdout
    assert f"This fastcelery carries template {carried}." in out
    assert f".copier-answers.yml: {SOURCE_URL} at " in out
    assert f"  version: {expected}" in out
    assert "  broker: redis" in out
    assert f".copier-answers.task-resize.yml: {SOURCE_URL} at v0.1.0" in out
    assert "  version: a release" in out
    assert "  task_name: resize" in out

    data = json.loads(runner.invoke(cli.app, ["info", str(project), "--json"]).stdout)
    assert data["project"]["answers"]["project_name"] == "svc"
    assert [a["file"] for a in data["added"]] == [".copier-answers.task-resize.yml"]


def test_info_outside_a_project_is_one_error_line(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["info", str(tmp_path)])
    assert_one_error_line(result, "is not a generated project")
    assert tree(tmp_path) == []
