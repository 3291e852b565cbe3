"""Update across an answer change (redis → rabbitmq) yields a project whose own tests pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fastcelery import cli
from tests.support import run, uv_bin

from .clihelpers import git_out


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_update_redis_to_rabbitmq_project_tests_pass(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app, ["new", "svc", "-o", str(tmp_path), "--defaults", "--broker", "redis"]
    )
    assert result.exit_code == 0, result.output
    project = tmp_path / "svc"

    result = runner.invoke(cli.app, ["update", str(project), "--broker", "rabbitmq"])
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["broker"] == "rabbitmq"
    changed = git_out(project, "status", "--porcelain")
    assert changed  # the broker switch changed files
    assert "<<<<<<<" not in "".join(
        p.read_text(errors="replace")
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.parts
    )
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "rabbitmq"],
        cwd=project,
        check=True,
    )

    uv = uv_bin()
    run([uv, "sync", "--quiet"], cwd=project)
    out = run([uv, "run", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project).stdout
    assert " passed" in out
