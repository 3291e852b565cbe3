"""Update across an answer change (redis → rabbitmq) yields a project whose own tests pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fastcelery import cli

from .clihelpers import git_out


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        pytest.skip("uv is not installed")
    return found


def _pyenv_version() -> str:
    """Every pyenv Python (the current ones first), so uv finds the project's Python offline."""
    have = [v for v in os.environ.get("PYENV_VERSION", "").split(":") if v]
    pyenv = shutil.which("pyenv")
    if pyenv:
        found = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
        ).stdout.split()
        have += [v for v in found if v.startswith("3.")]
    return ":".join(dict.fromkeys(have))


def _run(args: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    if versions := _pyenv_version():
        env["PYENV_VERSION"] = versions
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


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

    uv = _uv()
    _run([uv, "sync", "--quiet"], project)
    out = _run([uv, "run", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert " passed" in out
