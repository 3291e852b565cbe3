"""``fastcelery update`` and plain ``copier update``, with real git repositories in tmp dirs.

Template versions are built by copying the real template into a temporary git
repository and editing the copy: v1 → render → user edits committed → v2 → update.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fastcelery import cli

from .clihelpers import REPO_ROOT, git_out, tree

IDENTITY = ["-c", "user.name=Test User", "-c", "user.email=test@example.com"]


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, *args], cwd=path, capture_output=True, text=True, check=True
    ).stdout


def commit_all(path: Path, message: str, tag: str | None = None) -> None:
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", message)
    if tag:
        git(path, "tag", tag)


def answers_of(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert isinstance(data, dict)
    return data


def copy_template(dst: Path) -> Path:
    """A copy of the real template (copier.yml + template/) that a test may edit."""
    dst.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "copier.yml", dst / "copier.yml")
    shutil.copytree(
        REPO_ROOT / "template",
        dst / "template",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache"),
    )
    return dst


NOTES_V1 = "line 1\nline 2\nline 3\n"
SETTINGS_V1 = "".join(f"setting {i}\n" for i in range(1, 13))


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    repo = copy_template(tmp_path / "template-repo")
    (repo / "template" / "NOTES.md").write_text(NOTES_V1)
    (repo / "template" / "SETTINGS.txt").write_text(SETTINGS_V1)
    (repo / "template" / "UNTOUCHED.txt").write_text("version 1\n")
    git(repo, "init", "-q")
    commit_all(repo, "template v1", tag="v1.0.0")
    return repo


def render(runner: CliRunner, out: Path, template: Path, *extra: str) -> Path:
    result = runner.invoke(
        cli.app, ["new", "svc", "-o", str(out), "--template", str(template), "--defaults", *extra]
    )
    assert result.exit_code == 0, result.output
    return out / "svc"


def test_update_merges_user_edits_and_reports_conflicts(
    runner: CliRunner, tmp_path: Path, template_repo: Path
) -> None:
    project = render(runner, tmp_path / "out", template_repo)
    assert answers_of(project)["_commit"] == "v1.0.0"
    assert answers_of(project)["_src_path"] == str(template_repo)

    # The user edits two files and commits.
    (project / "NOTES.md").write_text("line 1 (mine)\nline 2\nline 3\n")
    settings = SETTINGS_V1.replace("setting 1\n", "setting 1 (mine)\n")
    (project / "SETTINGS.txt").write_text(settings)
    commit_all(project, "user edits")

    # Template v2 changes an edited line (conflict), another line of an edited file
    # (clean merge) and a file the user never touched.
    tpl = template_repo / "template"
    (tpl / "NOTES.md").write_text("line 1 (v2)\nline 2\nline 3\n")
    (tpl / "SETTINGS.txt").write_text(SETTINGS_V1.replace("setting 12\n", "setting 12 (v2)\n"))
    (tpl / "UNTOUCHED.txt").write_text("version 2\n")
    commit_all(template_repo, "template v2", tag="v2.0.0")

    result = runner.invoke(cli.app, ["update", str(project)])
    assert result.exit_code == cli.EXIT_ATTENTION, result.output

    assert (project / "UNTOUCHED.txt").read_text() == "version 2\n"
    merged = (project / "SETTINGS.txt").read_text()
    assert "setting 1 (mine)\n" in merged
    assert "setting 12 (v2)\n" in merged
    assert "<<<<<<<" not in merged
    notes = (project / "NOTES.md").read_text()
    assert "<<<<<<<" in notes
    assert "line 1 (mine)" in notes
    assert "line 1 (v2)" in notes
    assert answers_of(project)["_commit"] == "v2.0.0"

    out = result.stdout
    assert "from v1.0.0 to v2.0.0" in out
    assert "UNTOUCHED.txt" in out
    conflicts = out.split("Conflicts to resolve", 1)[1]
    assert "NOTES.md" in conflicts
    assert "SETTINGS.txt" not in conflicts


def test_update_with_rej_files(runner: CliRunner, tmp_path: Path, template_repo: Path) -> None:
    project = render(runner, tmp_path / "out", template_repo)
    (project / "NOTES.md").write_text("line 1 (mine)\nline 2\nline 3\n")
    commit_all(project, "user edits")
    (template_repo / "template" / "NOTES.md").write_text("line 1 (v2)\nline 2\nline 3\n")
    commit_all(template_repo, "template v2", tag="v2.0.0")
    result = runner.invoke(cli.app, ["update", str(project), "--conflict", "rej"])
    assert result.exit_code == cli.EXIT_ATTENTION, result.output
    assert (project / "NOTES.md.rej").is_file()
    assert "NOTES.md.rej" in result.stdout.split("Conflicts to resolve", 1)[1]


def test_update_refuses_uncommitted_changes(
    runner: CliRunner, tmp_path: Path, template_repo: Path
) -> None:
    project = render(runner, tmp_path / "out", template_repo)
    (project / "NOTES.md").write_text("dirty\n")
    commit_all(template_repo, "template v2", tag="v2.0.0")
    before = tree(project)
    result = runner.invoke(cli.app, ["update", str(project)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "has uncommitted changes" in result.stderr
    assert "NOTES.md" in result.stderr
    assert tree(project) == before
    assert (project / "NOTES.md").read_text() == "dirty\n"


@pytest.mark.parametrize(
    ("prepare", "fragment"),
    [
        (lambda p: None, "is not a generated project: it has no .copier-answers.yml"),
        (lambda p: (p / ".copier-answers.yml").write_text("a: 1\n"), "is not a git repository"),
    ],
    ids=["no-answers-file", "not-a-git-repo"],
)
def test_update_refuses_non_projects(
    runner: CliRunner, tmp_path: Path, prepare: Callable[[Path], object], fragment: str
) -> None:
    prepare(tmp_path)
    before = tree(tmp_path)
    result = runner.invoke(cli.app, ["update", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert fragment in result.stderr
    assert tree(tmp_path) == before


def test_update_pretend_changes_nothing(
    runner: CliRunner, tmp_path: Path, template_repo: Path
) -> None:
    project = render(runner, tmp_path / "out", template_repo)
    (template_repo / "template" / "UNTOUCHED.txt").write_text("version 2\n")
    commit_all(template_repo, "template v2", tag="v2.0.0")
    head = git_out(project, "rev-parse", "HEAD")
    result = runner.invoke(cli.app, ["update", str(project), "--pretend"])
    assert result.exit_code == 0, result.output
    assert "would be updated from v1.0.0 to v2.0.0; nothing was written" in result.stdout
    assert (project / "UNTOUCHED.txt").read_text() == "version 1\n"
    assert git_out(project, "status", "--porcelain") == ""
    assert git_out(project, "rev-parse", "HEAD") == head


def test_update_changes_an_answer_with_the_installed_template(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Default source (the versioned cache): switch the broker from redis to rabbitmq."""
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path), "--defaults"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "svc"
    assert answers_of(project)["broker"] == "redis"
    version = answers_of(project)["_commit"]
    result = runner.invoke(cli.app, ["update", str(project), "--broker", "rabbitmq"])
    assert result.exit_code == 0, result.output
    answers = answers_of(project)
    assert answers["broker"] == "rabbitmq"
    assert answers["result_backend"] == "redis"  # untouched answers are kept
    assert ".copier-answers.yml" in result.stdout
    assert "No conflicts" in result.stdout
    # The same template version, rendered with the new answer: not called an upgrade.
    assert f"{project}: rendered again at {version}, its template version" in result.stdout


def test_update_validates_changed_answers(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app, ["new", "svc", "-o", str(tmp_path), "--defaults", "--result-backend", "postgresql"]
    )
    assert result.exit_code == 0, result.output
    project = tmp_path / "svc"
    for args, fragment in [
        (["--database", "sqlite"], "needs database 'postgresql'"),
        (["--broker", "kafka"], "choose one of redis, rabbitmq"),
        (["--result-backend", "rpc"], "is not offered"),
    ]:
        result = runner.invoke(cli.app, ["update", str(project), *args])
        assert result.exit_code == 2, result.output
        assert fragment in result.stderr
    assert git_out(project, "status", "--porcelain") == ""


def test_update_runs_a_copier_migration(
    runner: CliRunner, tmp_path: Path, template_repo: Path
) -> None:
    """v2 renames the answer `greeting` to `salutation`; a migration carries the user's value."""
    config = template_repo / "copier.yml"
    v1_config = config.read_text()
    config.write_text(v1_config + "\ngreeting:\n  type: str\n  default: hello\n")
    (template_repo / "template" / "GREETING.txt.jinja").write_text("{{ greeting }} world\n")
    commit_all(template_repo, "v1.1: greeting", tag="v1.1.0")
    project = render(runner, tmp_path / "out", template_repo, "--data", "greeting=hi")
    assert (project / "GREETING.txt").read_text() == "hi world\n"

    rename = (
        "import pathlib, re; p = pathlib.Path('.copier-answers.yml'); "
        "p.write_text(re.sub(r'^greeting:', 'salutation:', p.read_text(), flags=re.M))"
    )
    migration = {
        "_migrations": [
            {
                "version": "v2.0.0",
                "when": "{{ _stage == 'before' }}",
                "command": [sys.executable, "-c", rename],
            }
        ]
    }
    config.write_text(
        v1_config
        + "\nsalutation:\n  type: str\n  default: hello\n\n"
        + yaml.safe_dump(migration, sort_keys=False)
    )
    (template_repo / "template" / "GREETING.txt.jinja").write_text("{{ salutation }} world\n")
    commit_all(template_repo, "v2: greeting renamed to salutation", tag="v2.0.0")

    result = runner.invoke(cli.app, ["update", str(project)])
    assert result.exit_code == 0, result.output
    answers = answers_of(project)
    assert answers["salutation"] == "hi"  # without the migration: the default "hello"
    assert "greeting" not in answers
    assert (project / "GREETING.txt").read_text() == "hi world\n"
