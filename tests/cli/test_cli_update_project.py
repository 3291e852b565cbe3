"""A generated project is ready for updates: next steps leave a clean tree, an answer change
(redis → rabbitmq) yields a project whose own tests pass, and its pre-commit hooks refuse
what an update can leave behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fastcelery import cli
from tests.support import run, uv_bin

from .clihelpers import git_out

COMMIT = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q"]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_update_redis_to_rabbitmq_project_tests_pass(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app, ["new", "svc", "-o", str(tmp_path), "--defaults", "--broker", "redis"]
    )
    assert result.exit_code == 0, result.output
    project = tmp_path / "svc"
    uv = uv_bin()
    # The next steps as printed: sync, then commit the lock file.
    assert 'git add uv.lock && git commit -m "Lock dependencies"' in result.stdout
    run([uv, "sync", "--quiet"], cwd=project)
    run(["git", "add", "uv.lock"], cwd=project)
    run([*COMMIT, "-m", "Lock dependencies"], cwd=project)

    result = runner.invoke(cli.app, ["update", str(project), "--broker", "rabbitmq"])
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["broker"] == "rabbitmq"
    changed = git_out(project, "status", "--porcelain")
    assert changed  # the broker switch changed files
    assert not [
        p
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts
        for line in p.read_text(errors="replace").splitlines()
        if line.startswith("<<<<<<< ")
    ]
    run([*COMMIT, "-am", "rabbitmq"], cwd=project)

    run([uv, "sync", "--quiet"], cwd=project)
    run([*COMMIT, "-am", "Lock dependencies", "--allow-empty"], cwd=project)
    out = run([uv, "run", "pytest", "-q"], cwd=project).stdout
    assert " passed" in out
    # Running the next steps leaves nothing to commit: `fastcelery update` can run again.
    assert git_out(project, "status", "--porcelain") == ""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_generated_pre_commit_refuses_conflict_markers_and_rej_files(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path), "--defaults"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "svc"
    (project / "NOTES.md").write_text("<<<<<<< before updating\nmine\n=======\ntheirs\n>>>>>>> x\n")
    (project / "README.md.rej").write_text("@@ -1 +1 @@\n")
    pre_commit = str(Path(sys.executable).parent / "pre-commit")
    env = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    for hook, file, expected in (
        ("check-merge-conflict", "NOTES.md", "Merge conflict string"),
        ("no-rej-files", "README.md.rej", "copier update --conflict rej"),
    ):
        proc = subprocess.run(
            [pre_commit, "run", hook, "--files", file],
            cwd=project,
            capture_output=True,
            text=True,
            env={**_environ(), **env},
            timeout=500,
            check=False,
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert expected in proc.stdout, proc.stdout
    clean = subprocess.run(
        [pre_commit, "run", "check-merge-conflict", "--files", "README.md"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**_environ(), **env},
        check=False,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
