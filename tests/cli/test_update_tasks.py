"""Added tasks follow the template's releases: ``fastcelery update`` and plain ``copier update``.

Real git repositories, real Copier and the real ``fastcelery`` in subprocesses (see
updatekit): fastcelery 1.0.0 renders a project and adds two tasks, the user writes their
bodies, and fastcelery 2.0.0, whose task sub-template changed, updates them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastcelery.history import subtemplate_url

from .updatekit import (
    Machine,
    answers_of,
    install_version,
    mirror_config,
    publish_subtemplate_mirror,
    snapshot,
    write,
)

TASK_TEMPLATE = "subtemplates/task/template/{{package_name}}/tasks/{{task_name}}.py.jinja"
V1_LINE = 'The README\'s "Adding a durable task" says what every durable task gets.'
V2_LINE = 'The README\'s "Adding a durable task" says what every durable task gets (v2).'
# A user's own work in the body (and, in one task, in the line version 2 changes).
BODY = (
    """    # Your work: read and write through `session`, without committing: your writes commit"""
)
USER_BODY = """    total = len(args.reference)  # the user's own work
    logger.info("counted", extra={"total": total})
"""


def recorded(file: Path) -> dict[str, Any]:
    data = yaml.safe_load(file.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Installed fastcelery 1.0.0 (this template) and 2.0.0 (its task sub-template changed)."""
    root = tmp_path_factory.mktemp("versions")
    # A change of its own, so that 1.0.0 is a release even where this template is one already.
    v1 = install_version(
        root / "v1", "1.0.0", lambda template: write(template, {"VERSION.txt": "1\n"})
    )

    def task_v2(template: Path) -> None:
        module = template.parent / TASK_TEMPLATE
        text = module.read_text()
        assert V1_LINE in text
        module.write_text(text.replace(V1_LINE, V2_LINE))

    return v1, install_version(root / "v2", "2.0.0", task_v2, base=v1)


def _project_with_two_edited_tasks(machine: Machine, v1: Path) -> Path:
    made = machine.fastcelery("new", "svc", "--defaults", cwd=machine.home, installed=v1)
    assert made.exit_code == 0, made.stderr
    project = machine.home / "svc"
    assert answers_of(project)["_commit"] == "v1.0.0"
    for args in (("report", "--no-route"), ("billing",)):
        added = machine.fastcelery("add", "task", *args, cwd=project, installed=v1)
        assert added.exit_code == 0, added.stderr
        assert recorded(project / f".copier-answers.task-{args[0]}.yml")["_commit"] == "v1.0.0"
    for name in ("report", "billing"):
        module = project / "app" / "tasks" / f"{name}.py"
        text = module.read_text()
        assert BODY in text
        mine = text.replace(BODY, USER_BODY + BODY)
        if name == "billing":  # the user also reworded the line version 2 changes
            mine = mine.replace(V1_LINE, "Billing: see docs/billing.md.")
        module.write_text(mine)
    machine.git(project, "commit", "-qam", "the tasks' work")
    return project


def test_update_merges_the_task_template_keeps_the_body_and_reports_a_conflict(
    tmp_path: Path, versions: tuple[Path, Path]
) -> None:
    v1, v2 = versions
    alice = Machine(tmp_path / "alice")
    project = _project_with_two_edited_tasks(alice, v1)
    before = snapshot(project)

    pretend = alice.fastcelery("update", "--pretend", cwd=project, installed=v2)
    assert pretend.exit_code == 3, pretend.stdout + pretend.stderr
    assert snapshot(project) == before  # a dry run writes nothing
    assert "Task billing (.copier-answers.task-billing.yml): would be updated" in pretend.stdout

    updated = alice.fastcelery("update", cwd=project, installed=v2)
    out = updated.stdout
    assert updated.exit_code == 3, out + updated.stderr
    project_part = out[: out.index("Task billing")]
    assert project_part.splitlines()[1:] == [
        "Changed files (git status):",
        "   M .copier-answers.yml",
        "",
    ]
    billing = out[out.index("Task billing") : out.index("Task report")]  # each in turn, by name
    report = out[out.index("Task report") :]
    assert "updated from v1.0.0 to v2.0.0" in report
    assert "Conflicts" not in report
    assert "Conflicts to resolve" in billing
    assert "app/tasks/billing.py" in billing

    merged = (project / "app/tasks/report.py").read_text()
    assert V2_LINE in merged  # the template's change
    assert USER_BODY in merged  # the user's body
    assert "<<<<<<<" not in merged
    conflicted = (project / "app/tasks/billing.py").read_text()
    assert "<<<<<<< before updating" in conflicted
    assert "Billing: see docs/billing.md." in conflicted
    assert V2_LINE in conflicted
    assert USER_BODY in conflicted
    status = alice.git(project, "status", "--porcelain").splitlines()
    assert "UU app/tasks/billing.py" in status  # a conflict git knows, as for the project
    assert " M app/tasks/report.py" in status
    for name in ("report", "billing"):
        assert recorded(project / f".copier-answers.task-{name}.yml")["_commit"] == "v2.0.0"


def test_plain_copier_update_of_an_added_task_through_a_mirror(
    tmp_path: Path, versions: tuple[Path, Path]
) -> None:
    """`copier update -a .copier-answers.task-NAME.yml` reads the task's own published history."""
    v1, v2 = versions
    alice = Machine(tmp_path / "alice")
    project = _project_with_two_edited_tasks(alice, v1)
    mirror = publish_subtemplate_mirror(tmp_path / "task-mirror", v2, "task")
    bob = Machine(tmp_path / "bob", git_config=mirror_config(mirror, subtemplate_url("task")))
    copier = str(Path(sys.executable).parent / "copier")
    command = [copier, "update", "--trust", "--defaults", "-a", ".copier-answers.task-report.yml"]
    offline = Machine(tmp_path / "no-mirror").run(command, project)
    assert offline.exit_code != 0  # the URL really is unreachable without the mirror
    updated = bob.run(command, project)
    assert updated.exit_code == 0, updated.stderr
    merged = (project / "app/tasks/report.py").read_text()
    assert V2_LINE in merged
    assert USER_BODY in merged
    assert recorded(project / ".copier-answers.task-report.yml")["_commit"] == "v2.0.0"
    assert recorded(project / ".copier-answers.task-billing.yml")["_commit"] == "v1.0.0"
