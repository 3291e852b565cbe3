"""No silent loss: what Copier's update drops without a word is reported, or carried along.

Template versions are real git repositories in temporary folders (see test_cli_update.py):
v1 → render → the user's edits, committed → v2 → ``fastcelery update``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fastcelery import cli

from .clihelpers import git_out
from .test_cli_update import NOTES_V1, commit_all, copy_template, git, render
from .updatekit import snapshot, write

LEGACY_UTIL = "def helper() -> int:\n    return 1\n"
OLD_NAME = "".join(f"guide line {i}\n" for i in range(1, 9))


@pytest.fixture
def template_v1(tmp_path: Path) -> Path:
    repo = copy_template(tmp_path / "template-repo")
    write(
        repo / "template",
        {
            "NOTES.md": NOTES_V1,
            "DOOMED.txt": "the template will delete me\n",
            "OLD_NAME.md": OLD_NAME,
            "{{package_name}}/legacy_util.py": LEGACY_UTIL,
        },
    )
    git(repo, "init", "-q")
    commit_all(repo, "template v1", tag="v1.0.0")
    return repo


def _commit(project: Path, files: dict[str, str], message: str = "my edits") -> None:
    write(project, files)
    commit_all(project, message)


def test_deleted_renamed_and_broken_imports_are_reported_and_pretend_writes_nothing(
    runner: CliRunner, tmp_path: Path, template_v1: Path
) -> None:
    project = render(runner, tmp_path / "out", template_v1)
    _commit(
        project,
        {
            "NOTES.md": "line 1 (mine)\nline 2\nline 3\n",
            "DOOMED.txt": "my precious edit\n",
            "OLD_NAME.md": OLD_NAME.replace("guide line 2\n", "guide line 2 (mine)\n"),
            "app/extra.py": "from app.legacy_util import helper\n\nVALUE = helper()\n",
        },
    )
    edits = git_out(project, "rev-parse", "HEAD")
    tpl = template_v1 / "template"
    (tpl / "NOTES.md").write_text("line 1 (v2)\nline 2\nline 3\n")
    (tpl / "DOOMED.txt").unlink()
    (tpl / "OLD_NAME.md").rename(tpl / "NEW_NAME.md")
    (tpl / "{{package_name}}" / "legacy_util.py").unlink()
    commit_all(template_v1, "template v2", tag="v2.0.0")

    cache = Path(os.environ["XDG_CACHE_HOME"])
    before = snapshot(project, cache)
    dry = runner.invoke(cli.app, ["update", str(project), "--pretend"])
    assert dry.exit_code == cli.EXIT_ATTENTION, dry.output
    assert snapshot(project, cache) == before  # tree, .git and cache byte-identical
    assert "nothing was written" in dry.stdout
    assert "D DOOMED.txt" in dry.stdout
    assert "NEW_NAME.md" in dry.stdout  # would be added
    assert "NOTES.md" in dry.stdout.split("Conflicts to resolve", 1)[1]

    result = runner.invoke(cli.app, ["update", str(project)])
    assert result.exit_code == cli.EXIT_ATTENTION, result.output
    out = result.stdout
    lost = out.split("Edited files the template deleted or renamed", 1)[1]
    assert f"DOOMED.txt: git show {edits[:12]}:DOOMED.txt" in lost
    assert "OLD_NAME.md (renamed to NEW_NAME.md?)" in lost
    assert "app/extra.py:1: from app.legacy_util import helper  (app.legacy_util.helper)" in out
    assert "NOTES.md" in out.split("Conflicts to resolve", 1)[1]
    # The edit is where the report says.
    assert git_out(project, "show", f"{edits[:12]}:DOOMED.txt") == "my precious edit"
    assert not (project / "DOOMED.txt").exists()


def test_untouched_deleted_files_and_kept_imports_are_not_reported(
    runner: CliRunner, tmp_path: Path, template_v1: Path
) -> None:
    project = render(runner, tmp_path / "out", template_v1)
    _commit(project, {"app/extra.py": "from app.legacy_util import helper\n"})
    (template_v1 / "template" / "DOOMED.txt").unlink()
    commit_all(template_v1, "template v2", tag="v2.0.0")
    result = runner.invoke(cli.app, ["update", str(project)])
    assert result.exit_code == 0, result.output
    assert "D DOOMED.txt" in result.stdout
    assert "No conflicts" in result.stdout


def test_package_rename_carries_the_users_files_along(
    runner: CliRunner, tmp_path: Path, template_v1: Path
) -> None:
    project = render(runner, tmp_path / "out", template_v1)
    _commit(
        project,
        {
            "app/tasks_extra/__init__.py": "",
            "app/tasks_extra/jobs.py": "from app.legacy_util import helper\n",
            "tests/test_extra.py": "import app.tasks_extra.jobs\nfrom app import legacy_util\n",
        },
    )
    result = runner.invoke(cli.app, ["update", str(project), "--package-name", "orders"])
    assert result.exit_code == 0, result.output
    assert not (project / "app").exists()
    jobs = project / "orders" / "tasks_extra" / "jobs.py"
    assert jobs.read_text() == "from orders.legacy_util import helper\n"
    test = (project / "tests" / "test_extra.py").read_text()
    assert test == "import orders.tasks_extra.jobs\nfrom orders import legacy_util\n"
    assert "Carried along the package rename: app/tasks_extra/jobs.py -> " in result.stdout
    assert "tests/test_extra.py" in result.stdout.split("Imports of the old package", 1)[1]
    assert "Imports the update broke" not in result.stdout


def test_a_rename_migration_keeps_the_users_edits(
    runner: CliRunner, tmp_path: Path, template_v1: Path
) -> None:
    """The migration docs/updating.md shows: `git mv` in the "before" stage (Copier diffs the
    index), reading package_name from the answers file because that stage renders it empty."""
    project = render(runner, tmp_path / "out", template_v1)
    mine = LEGACY_UTIL + "\n\ndef mine() -> int:\n    return 2\n"
    _commit(project, {"app/legacy_util.py": mine})

    seen = tmp_path / "seen"
    rename = (
        "import pathlib, re, subprocess; "
        "answers = pathlib.Path('.copier-answers.yml').read_text(); "
        "package = re.search(r'^package_name: (\\S+)', answers, re.M).group(1); "
        "old = pathlib.Path(package, 'legacy_util.py'); "
        "old.exists() and subprocess.run(['git', 'mv', str(old), str(old.with_name('util.py'))], "
        "check=True)"
    )
    record = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"
    migrations = [
        {
            "version": "v2.0.0",
            "when": "{{ _stage == 'before' }}",
            "command": [sys.executable, "-c", rename],
        },
        {
            "version": "v2.0.0",
            "when": "{{ _stage == 'before' }}",
            "command": [sys.executable, "-c", record, str(seen) + ".before", "{{ package_name }}"],
        },
        {
            "version": "v2.0.0",
            "when": "{{ _stage == 'after' }}",
            "command": [sys.executable, "-c", record, str(seen) + ".after", "{{ package_name }}"],
        },
    ]
    config = template_v1 / "copier.yml"
    config.write_text(
        config.read_text() + "\n" + yaml.safe_dump({"_migrations": migrations}, sort_keys=False)
    )
    package = template_v1 / "template" / "{{package_name}}"
    (package / "legacy_util.py").rename(package / "util.py")
    (package / "util.py").write_text("# v2: renamed from legacy_util.py\n" + LEGACY_UTIL)
    commit_all(template_v1, "template v2: legacy_util.py renamed util.py", tag="v2.0.0")

    result = runner.invoke(cli.app, ["update", str(project)])
    assert result.exit_code == 0, result.output
    util = (project / "app" / "util.py").read_text()
    assert util.startswith("# v2: renamed from legacy_util.py\n")  # the template's change
    assert "def mine() -> int:" in util  # and the user's edit
    assert not (project / "app" / "legacy_util.py").exists()
    assert "Edited files the template deleted" not in result.stdout
    assert "your edits merged three-way: app/legacy_util.py -> app/util.py" in result.stdout
    assert "Conflicts to resolve" not in result.stdout  # Copier alone: one whole-file conflict
    # Copier 9.x: the "before" stage renders answers empty; the "after" stage has them.
    assert (Path(f"{seen}.before").read_text(), Path(f"{seen}.after").read_text()) == ("", "app")
