"""Bad input: exit code 2, ONE line on stderr naming the problem, nothing written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fastcelery import cli

from .clihelpers import run_cli, tree

BAD_INPUTS = [
    pytest.param(
        ["new", "Bad_Name"],
        ["invalid project name 'Bad_Name'", "slug"],
        id="invalid-project-name",
    ),
    pytest.param(
        ["new", "svc", "--package-name", "celery"],
        ["invalid --package-name 'celery'", "shadows no keyword or library"],
        id="package-name-shadows-library",
    ),
    pytest.param(
        ["new", "svc", "--broker", "kafka"],
        ["invalid --broker 'kafka': choose one of redis, rabbitmq"],
        id="unknown-choice",
    ),
    pytest.param(
        ["new", "svc", "--result-backend", "rpc"],
        [
            "--result-backend 'rpc' is not offered",
            "read only once",
            "GET /tasks/{id}",
            "choose one of redis, postgresql, none",
        ],
        id="refused-choice",
    ),
    pytest.param(
        ["new", "svc", "--data", "result_backend=rpc"],
        ["--data result_backend='rpc' is not offered", "read only once"],
        id="refused-choice-via-data",
    ),
    pytest.param(
        ["new", "svc", "--result-backend", "postgresql", "--database", "sqlite"],
        ["invalid --result-backend 'postgresql'", "needs database 'postgresql'"],
        id="invalid-combination",
    ),
    pytest.param(
        ["new", "svc", "--data", "colour=red"],
        ["unknown --data key 'colour'", "broker"],
        id="unknown-data-key",
    ),
    pytest.param(
        ["new", "svc", "--data", "broker"],
        ["malformed --data 'broker': expected KEY=VALUE"],
        id="malformed-data",
    ),
    pytest.param(
        ["new", "svc", "--data", "=redis"],
        ["malformed --data '=redis'"],
        id="malformed-data-empty-key",
    ),
    pytest.param(
        ["new", "svc", "--broker", "redis", "--data", "broker=rabbitmq"],
        ["--data broker=... conflicts with --broker"],
        id="flag-and-data-for-same-key",
    ),
    pytest.param(
        ["new", "svc", "--data", "project_name=other"],
        ["--data project_name=... conflicts with NAME"],
        id="data-for-name",
    ),
    pytest.param(
        ["new", "svc", "--data", "pydantic=maybe"],
        ["invalid --data pydantic='maybe': expected a value of type bool"],
        id="bad-bool-via-data",
    ),
    pytest.param(
        ["new", "svc", "--data", "broker=kafka"],
        ["invalid --data broker='kafka': choose one of redis, rabbitmq"],
        id="unknown-choice-via-data",
    ),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    runner: CliRunner, tmp_path: Path, args: list[str], expected: list[str]
) -> None:
    before = tree(tmp_path)
    cache_before = tree(Path(os.environ["FASTCELERY_TEMPLATE_CACHE"]).parent)
    result = runner.invoke(cli.app, [*args, "--output", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fastcelery: error: ")
    for fragment in expected:
        assert fragment in lines[0]
    assert result.stdout == ""
    assert tree(tmp_path) == before
    assert tree(Path(os.environ["FASTCELERY_TEMPLATE_CACHE"]).parent) == cache_before


def test_non_empty_target_without_force(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "svc"
    target.mkdir()
    (target / "mine.txt").write_text("precious\n")
    before = tree(tmp_path)
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "is not empty" in result.stderr
    assert "--force" in result.stderr
    assert tree(tmp_path) == before
    assert (target / "mine.txt").read_text() == "precious\n"


def test_target_directory_not_created_on_error(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "not-yet"
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(out), "--broker", "kafka"])
    assert result.exit_code == 2
    assert not out.exists()


# ---- real processes: click's own usage errors are one line too, with exit code 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["new", "svc", "--colour", "red"], "No such option"),
        (["new"], "Missing argument 'NAME'"),
        (["update", "."], "is not a generated project"),
        (["update", ".", "--conflict", "both"], "invalid --conflict 'both'"),
        (["frobnicate"], "No such command"),
        (["new", "Bad_Name"], "invalid project name 'Bad_Name'"),
        (["new", "svc", "--result-backend", "rpc"], "is not offered"),
    ],
)
def test_usage_errors_in_a_real_process(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = run_cli([*args], cwd=tmp_path)
    assert result.exit_code == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("fastcelery: error: ")
    assert fragment in result.stderr
    assert tree(tmp_path) == []


def test_missing_git_fails_before_writing(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**os.environ, "PATH": str(empty_bin)}
    result = run_cli(["new", "svc", "-o", str(tmp_path / "out"), "--defaults"], env=env)
    assert result.exit_code == 2, result
    assert result.stderr.count("\n") == 1
    assert "git is not installed" in result.stderr
    assert "--no-git" in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_uv_only_warns(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_which = shutil.which

    def which(name: str) -> str | None:
        return None if name == "uv" else real_which(name)

    monkeypatch.setattr(shutil, "which", which)
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path), "--no-git"])
    assert result.exit_code == 0, result.output
    assert "fastcelery: warning: uv is not installed" in result.stderr
    assert (tmp_path / "svc" / ".copier-answers.yml").is_file()


def test_no_arguments_prints_help(tmp_path: Path) -> None:
    result = run_cli([], cwd=tmp_path)
    assert result.exit_code == 0
    assert "Usage: fastcelery" in result.stdout
    assert "update" in result.stdout
