"""``fastcelery add task``: new files only, committed, next steps; plain ``copier copy`` too.

(Bad input is in test_cli_errors.py; updates of added tasks in test_update_tasks.py; the
rendered task's own checks and tests run in the render matrix, tests/render/.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fastcelery import cli
from fastcelery.history import open_history, subtemplate_url
from fastcelery.paths import template_root

from .clihelpers import REPO_ROOT, git_out, run_cli


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    made = run_cli(["new", "svc", "--defaults", "--output", str(out)])
    assert made.exit_code == 0, made.stderr
    return out / "svc"


@pytest.fixture
def project(tmp_path: Path, generated: Path) -> Path:
    copy = tmp_path / "svc"
    shutil.copytree(generated, copy, symlinks=True)
    return copy


def answers(path: Path) -> dict[str, object]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def test_add_task_writes_new_files_only_commits_them_and_says_what_next(project: Path) -> None:
    tracked = set(git_out(project, "ls-files").splitlines())
    result = CliRunner().invoke(cli.app, ["add", "task", "send_invoice", str(project)])
    assert result.exit_code == 0, result.output
    new = {
        ".copier-answers.task-send_invoice.yml",
        "app/api/routes/send_invoice.py",
        "app/tasks/send_invoice.py",
        "tests/test_send_invoice.py",
    }
    assert set(git_out(project, "ls-files").splitlines()) == tracked | new
    assert git_out(project, "diff", "--stat", "HEAD~1", "--", *tracked) == ""  # none edited
    assert git_out(project, "status", "--porcelain") == ""
    recorded = answers(project / ".copier-answers.task-send_invoice.yml")
    with open_history(template_root()) as history:
        released = history.released is not None
    # What a render records: the release's tag, or the unreleased template's commit.
    assert git_out(project, "log", "-1", "--format=%s").startswith(
        "fastcelery add task send_invoice (template v"
    )
    assert recorded["_src_path"] == subtemplate_url("task")
    assert recorded["package_name"] == "app"
    assert (recorded["route"], recorded["queue"], recorded["batch"], recorded["pydantic"]) == (
        True,
        "default",
        False,
        False,
    )
    module = (project / "app/tasks/send_invoice.py").read_text()
    assert '@durable_task(\n    name="tasks.send_invoice",\n' in module
    assert "queue=get_settings().celery.default_queue," in module
    assert "batch=" not in module
    route = (project / "app/api/routes/send_invoice.py").read_text()
    assert 'prefix="/send-invoice"' in route
    assert "IdempotencyDep" in route
    # The next steps: where the body is, how to enqueue it, how to run its tests.
    out = result.stdout
    assert "body of send_invoice() in app/tasks/send_invoice.py" in out
    assert 'send_invoice.enqueue(session, SendInvoiceArgs(...).model_dump(mode="json"))' in out
    assert "POST /send-invoice" in out
    assert "uv run pytest tests/test_send_invoice.py" in out
    unreleased = "fastcelery: warning: this fastcelery's template is not a released version"
    assert (unreleased in result.stderr) is not released

    info = run_cli(["info", str(project)])
    assert info.exit_code == 0, info.stderr
    assert (
        f".copier-answers.task-send_invoice.yml: {subtemplate_url('task')} at "
        f"{recorded['_commit']}\n"
    ) in info.stdout
    status = "a release" if released else "this fastcelery's unreleased template"
    assert f"version: {status}" in info.stdout


def test_add_task_without_route_to_another_queue_and_without_git(project: Path) -> None:
    result = run_cli(
        [
            *["add", "task", "nightly_report", "--no-route"],
            *["--queue", "priority", "--batch", "--no-git"],
        ],
        cwd=project,
    )
    assert result.exit_code == 0, result.stderr
    assert git_out(project, "status", "--porcelain", "--untracked-files=all").splitlines() == [
        "?? .copier-answers.task-nightly_report.yml",
        "?? app/tasks/nightly_report.py",
        "?? tests/test_nightly_report.py",
    ]
    module = (project / "app/tasks/nightly_report.py").read_text()
    assert "queue=get_settings().celery.priority_queue," in module
    assert "batch=True," in module
    assert "Not committed (--no-git)" in result.stdout
    assert "POST" not in result.stdout


def test_the_task_version_is_derived_from_the_released_history() -> None:
    """Tasks record versions of the same releases as projects: v0.1.0 predates the task
    sub-template (an empty tree), and the bundled one is released with the template."""
    from fastcelery.history import derive_history  # noqa: PLC0415

    with open_history(template_root()) as history:
        task = derive_history(history, "task", history.repo.parent / "task")
        assert task.tags() == history.tags()
        listed = git_out(task.repo, "ls-tree", "--name-only", "HEAD").splitlines()
        assert listed == ["copier.yml", "template"]
        assert git_out(task.repo, "ls-tree", "v0.1.0") == ""
        again = derive_history(history, "task", history.repo.parent / "again")
        assert again.head == task.head  # the same commit on every machine


def test_plain_copier_copy_from_the_repository(tmp_path: Path) -> None:
    """The sub-template is a Copier template of its own: defaults from the project's answers."""
    made = run_cli(
        ["new", "shop", "--defaults", "--package-name", "shop", "--pydantic", "-o", str(tmp_path)]
    )
    assert made.exit_code == 0, made.stderr
    project = tmp_path / "shop"
    copier = Path(sys.executable).parent / "copier"
    subprocess.run(
        [str(copier), "copy", "--trust", "--defaults", "-d", "task_name=refund",
         str(REPO_ROOT / "subtemplates" / "task"), str(project)],
        check=True, capture_output=True,
    )  # fmt: skip
    recorded = answers(project / ".copier-answers.task-refund.yml")
    assert (recorded["package_name"], recorded["pydantic"]) == ("shop", True)
    module = (project / "shop/tasks/refund.py").read_text()
    assert "pydantic=True" in module
    assert "def refund(\n    session: Session,\n    args: RefundArgs,\n) -> RefundResult:" in module
    assert (project / "shop/api/routes/refund.py").is_file()
    assert (project / "tests/test_refund.py").is_file()
