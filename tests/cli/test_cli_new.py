"""``fastcelery new``: flags, --data, --defaults, answers file, git, next steps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fastcelery import cli, render
from fastcelery.history import SOURCE_URL
from fastcelery.options import template_config
from fastcelery.questions import TemplateConfig
from fastcelery.validation import complete_answers

from .clihelpers import REPO_ROOT, assert_one_error_line, git_out, tree


def answers_of(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def config() -> TemplateConfig:
    return template_config()


def test_flags_and_data_reach_the_answers_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app,
        [
            "new", "order-service", "--output", str(tmp_path),
            "--broker", "rabbitmq", "--pydantic", "--database", "sqlite",
            "--result-backend", "none", "--python-version", "3.13",
            "--data", "package_name=orders", "-d", "description=Takes orders.",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    project = tmp_path / "order-service"
    answers = answers_of(project)
    assert answers["project_name"] == "order-service"
    assert answers["broker"] == "rabbitmq"
    assert answers["pydantic"] is True
    assert answers["database"] == "sqlite"
    assert answers["result_backend"] == "none"
    assert answers["python_version"] == "3.13"
    assert answers["package_name"] == "orders"
    assert answers["description"] == "Takes orders."
    # A source and a version that mean the same on every machine (see test_update_path.py).
    assert answers["_commit"].startswith("v")
    assert answers["_src_path"] == SOURCE_URL
    assert (project / "pyproject.toml").is_file()
    # Next steps name the package from the answers.
    assert "cd " in result.stdout
    assert "uv sync" in result.stdout
    assert "uv run alembic upgrade head" in result.stdout
    # The API and the worker start exactly as the project's README starts them.
    readme = (project / "README.md").read_text().splitlines()
    for process in ("uv run uvicorn orders.main:app ", "uv run celery -A orders.core.celery "):
        command = next(line.split("#")[0].strip() for line in readme if line.startswith(process))
        assert f"  {command}\n" in result.stdout, command
    assert "uv run pytest" in result.stdout


def test_defaults_without_prompt(runner: CliRunner, tmp_path: Path, config: TemplateConfig) -> None:
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path), "--defaults"])
    assert result.exit_code == 0, result.output
    answers = answers_of(tmp_path / "svc")
    expected = complete_answers(config, {"project_name": "svc"}, {})
    for name, value in expected.items():
        assert answers[name] == value, name


def test_git_init_and_first_commit_with_fallback_identity(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    project = tmp_path / "svc"
    assert git_out(project, "rev-list", "--count", "HEAD") == "1"
    assert git_out(project, "status", "--porcelain") == ""  # everything committed
    assert (
        git_out(project, "log", "-1", "--format=%an <%ae>") == "fastcelery <fastcelery@localhost>"
    )
    assert ".copier-answers.yml" in git_out(project, "ls-files").split()


def test_no_git(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path), "--no-git"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "svc" / ".git").exists()
    assert (tmp_path / "svc" / ".copier-answers.yml").is_file()


def test_output_defaults_to_cwd(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.app, ["new", "here", "--no-git"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "here" / "README.md").is_file() or (
        tmp_path / "here" / "pyproject.toml"
    ).is_file()
    assert "cd here" in result.stdout


def test_force_keeps_the_users_files_and_commits_only_the_render(
    runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "svc"
    target.mkdir()
    (target / "pyproject.toml").write_text("# mine\n")
    (target / "README.md").write_text("my readme\n")
    (target / "NOTES.txt").write_text("keep me\n")
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path), "--force"])
    assert result.exit_code == 0, result.output
    assert "kept your files that the template would have replaced: README.md, pyproject.toml" in (
        result.stderr
    )
    assert (target / "pyproject.toml").read_text() == "# mine\n"
    assert (target / "README.md").read_text() == "my readme\n"
    assert (target / "NOTES.txt").read_text() == "keep me\n"
    committed = git_out(target, "ls-files").split()
    assert ".copier-answers.yml" in committed
    assert "app/main.py" in committed
    assert not {"NOTES.txt", "README.md", "pyproject.toml"} & set(committed)


def test_force_replaces_files_when_confirmed(tmp_path: Path) -> None:
    target = tmp_path / "svc"
    target.mkdir()
    (target / "README.md").write_text("my readme\n")
    asked: list[list[str]] = []

    def confirm(files: Sequence[str]) -> bool:
        asked.append(list(files))
        return True

    request = render.NewRequest(
        name="svc", output=tmp_path, force=True, git=False, confirm_overwrite=confirm
    )
    result = render.new_project(request)
    assert asked == [["README.md"]]
    assert result.kept == []
    assert (target / "README.md").read_text() != "my readme\n"


def test_output_inside_fastcelery_checkout_is_refused(runner: CliRunner) -> None:
    inside = REPO_ROOT / "not-created"
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(inside), "--defaults"])
    assert_one_error_line(result, "inside fastcelery's own checkout", "--output ~/src")
    assert not inside.exists()


def test_renders_write_nothing_outside_the_project(runner: CliRunner, tmp_path: Path) -> None:
    """No per-user template cache: the recorded source is a URL, read from the package."""
    cache = Path(os.environ["XDG_CACHE_HOME"])
    cache.mkdir(exist_ok=True)
    before = tree(cache)
    for name in ("svc", "svc2"):
        result = runner.invoke(cli.app, ["new", name, "-o", str(tmp_path / "out"), "--no-git"])
        assert result.exit_code == 0, result.output
    first, second = answers_of(tmp_path / "out" / "svc"), answers_of(tmp_path / "out" / "svc2")
    assert first["_src_path"] == second["_src_path"] == SOURCE_URL
    assert first["_commit"] == second["_commit"]
    assert tree(cache) == before


def test_inside_an_existing_repository_no_nested_repo(runner: CliRunner, tmp_path: Path) -> None:
    monorepo = tmp_path / "monorepo"
    monorepo.mkdir()
    git_out(monorepo, "init", "-q")
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(monorepo / "services")])
    assert result.exit_code == 0, result.output
    assert not (monorepo / "services" / "svc" / ".git").exists()
    assert "inside the git repository" in result.stderr
    assert git_out(monorepo, "rev-list", "--all") == ""  # nothing committed for the user
