"""Bad input: exit code 2, ONE line on stderr naming the problem, nothing written."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fastcelery import cli

from .clihelpers import Result, assert_one_error_line, run_cli, tree
from .updatekit import snapshot

#: Bad answers to ``fastcelery new``: (id, command line, fragments of the one error line).
BAD_INPUTS: list[tuple[str, str, list[str]]] = [
    ("invalid-project-name", "new Bad_Name", ["invalid project name 'Bad_Name'", "slug"]),
    (
        "package-name-shadows-library",
        "new svc --package-name celery",
        ["invalid --package-name 'celery'", "shadows no keyword or library"],
    ),
    (
        "unknown-choice",
        "new svc --broker kafka",
        ["invalid --broker 'kafka': choose one of redis, rabbitmq"],
    ),
    (
        "refused-choice",
        "new svc --result-backend rpc",
        [
            "--result-backend 'rpc' is not offered",
            "read only once",
            "GET /tasks/{id}",
            "choose one of redis, postgresql, none",
        ],
    ),
    (
        "refused-choice-via-data",
        "new svc --data result_backend=rpc",
        ["--data result_backend='rpc' is not offered", "read only once"],
    ),
    (
        "invalid-combination",
        "new svc --result-backend postgresql --database sqlite",
        ["invalid --result-backend 'postgresql'", "needs database 'postgresql'"],
    ),
    ("unknown-data-key", "new svc --data colour=red", ["unknown --data key 'colour'", "broker"]),
    ("malformed-data", "new svc --data broker", ["malformed --data 'broker': expected KEY=VALUE"]),
    ("malformed-data-empty-key", "new svc --data =redis", ["malformed --data '=redis'"]),
    (
        "flag-and-data-for-same-key",
        "new svc --broker redis --data broker=rabbitmq",
        ["--data broker=... conflicts with --broker"],
    ),
    (
        "data-for-name",
        "new svc --data project_name=other",
        ["--data project_name=... conflicts with NAME"],
    ),
    (
        "bad-bool-via-data",
        "new svc --data pydantic=maybe",
        ["invalid --data pydantic='maybe': expected a value of type bool"],
    ),
    (
        "unknown-choice-via-data",
        "new svc --data broker=kafka",
        ["invalid --data broker='kafka': choose one of redis, rabbitmq"],
    ),
]


@pytest.mark.parametrize(
    ("command_line", "expected"), [pytest.param(c, e, id=i) for i, c, e in BAD_INPUTS]
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    runner: CliRunner, tmp_path: Path, command_line: str, expected: list[str]
) -> None:
    cache = Path(os.environ["XDG_CACHE_HOME"])
    cache.mkdir(exist_ok=True)
    before, cache_before = tree(tmp_path), tree(cache)
    result = runner.invoke(cli.app, [*shlex.split(command_line), "--output", str(tmp_path)])
    assert_one_error_line(result, *expected)
    assert result.stdout == ""
    assert tree(tmp_path) == before
    assert tree(cache) == cache_before


def test_non_empty_target_without_force(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "svc"
    target.mkdir()
    (target / "mine.txt").write_text("precious\n")
    before = tree(tmp_path)
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(tmp_path)])
    assert_one_error_line(result, "is not empty", "--force")
    assert tree(tmp_path) == before
    assert (target / "mine.txt").read_text() == "precious\n"


def test_target_directory_not_created_on_error(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "not-yet"
    result = runner.invoke(cli.app, ["new", "svc", "-o", str(out), "--broker", "kafka"])
    assert_one_error_line(result)
    assert not out.exists()


# ---- fastcelery add task: bad input in a generated project


def _write(project: Path, rel: str, text: str) -> None:
    (project / rel).write_text(text)


#: Bad ``fastcelery add task`` command lines, run on a copy of a generated project after
#: ``setup``: (id, setup, command line, fragments of the one error line).
BAD_ADD_INPUTS: list[tuple[str, str, str, list[str]]] = [
    ("not-an-identifier", "", "add task Bad-Name", ["invalid task name 'Bad-Name'", "identifier"]),
    ("keyword", "", "add task class", ["invalid task name 'class'", "keyword"]),
    ("stdlib-module", "", "add task json", ["invalid task name 'json'", "standard library"]),
    (
        "clashes-with-a-module",
        "",
        "add task orders --no-route",
        ["task name 'orders' clashes with app/tasks/orders.py"],
    ),
    ("clashes-with-a-route", "", "add task orders", ["clashes with a route", "/orders"]),
    (
        "clashes-with-tests",
        "",
        "add task durable --no-route",
        ["clashes with tests/test_durable.py"],
    ),
    (
        "clashes-with-a-celery-task",
        "user-task",
        "add task billing --no-git",
        ["task name 'billing' is taken", "app/tasks/payments.py", '"tasks.billing"'],
    ),
    ("added-already", "added", "add task ping --no-git", ["'ping' was added already"]),
    (
        "template-without-durable-tasks",
        "no-durable",
        "add task ping --no-git",
        ["has no durable-task layer (app/durable/)", "`fastcelery update` it first"],
    ),
    (
        "unknown-queue",
        "",
        "add task ping --queue bulk",
        ["unknown --queue 'bulk'", "default, orders, priority"],
    ),
    ("queue-not-a-name", "", "add task ping --queue Bulk!", ["invalid --queue 'Bulk!'"]),
    ("dirty-tree", "dirty", "add task ping", ["uncommitted changes", "--no-git"]),
    ("not-a-repository", "no-git", "add task ping", ["is not a git repository", "--no-git"]),
    (
        "package-from-the-project",
        "",
        "add task ping --data package_name=other",
        ["--data package_name=... cannot be given", "(app)"],
    ),
    ("unknown-data-key", "", "add task ping --data colour=red", ["unknown --data key 'colour'"]),
    (
        "bad-bool-via-data",
        "",
        "add task ping --data route=maybe",
        ["invalid --data route='maybe': expected a value of type bool"],
    ),
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated project (committed), copied by each test that changes it."""
    out = tmp_path_factory.mktemp("generated")
    made = run_cli(["new", "svc", "--defaults", "--output", str(out)])
    assert made.exit_code == 0, made.stderr
    return out / "svc"


def _prepare(project: Path, setup: str) -> None:
    if setup == "user-task":
        _write(project, "app/tasks/payments.py", '@durable_task(name="tasks.billing")\n')
    elif setup == "added":
        added = run_cli(["add", "task", "ping", "--no-git", str(project)])
        assert added.exit_code == 0, added.stderr
    elif setup == "dirty":
        _write(project, "NOTES.md", "mine\n")
    elif setup == "no-git":
        shutil.rmtree(project / ".git")
    elif setup == "no-durable":  # as rendered by fastcelery 0.1.0
        shutil.rmtree(project / "app" / "durable")


@pytest.mark.parametrize(
    ("setup", "command_line", "expected"),
    [pytest.param(s, c, e, id=i) for i, s, c, e in BAD_ADD_INPUTS],
)
def test_bad_add_task_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, generated: Path, setup: str, command_line: str, expected: list[str]
) -> None:
    project = tmp_path / "svc"
    shutil.copytree(generated, project, symlinks=True)
    _prepare(project, setup)
    before = snapshot(project)
    result = CliRunner().invoke(cli.app, [*shlex.split(command_line), str(project)])
    assert_one_error_line(result, *expected)
    assert result.stdout == ""
    assert snapshot(project) == before


def test_add_task_outside_a_generated_project(tmp_path: Path) -> None:
    result = run_cli(["add", "task", "ping"], cwd=tmp_path)
    assert_one_error_line(result, "is not a generated project", ".copier-answers.yml")
    assert tree(tmp_path) == []


# ---- real processes: click's own usage errors are one line too, with exit code 2

#: (id, command line run in an empty directory, fragment of the one error line).
REAL_PROCESS_ERRORS: list[tuple[str, str, str]] = [
    ("unknown-option", "new svc --colour red", "No such option"),
    ("missing-name", "new", "missing NAME"),
    ("output-is-a-file", "new z -o afile", "afile exists and is not a directory"),
    ("update-outside-a-project", "update .", "is not a generated project"),
    ("invalid-conflict-style", "update . --conflict both", "invalid --conflict 'both'"),
    ("unknown-command", "frobnicate", "No such command"),
    ("add-without-a-name", "add task", "Missing argument 'NAME'"),
    ("add-unknown-kind", "add route x", "No such command 'route'"),
    ("invalid-project-name", "new Bad_Name", "invalid project name 'Bad_Name'"),
    ("refused-choice", "new svc --result-backend rpc", "is not offered"),
]


@pytest.mark.parametrize(
    ("command_line", "fragment"), [pytest.param(c, f, id=i) for i, c, f in REAL_PROCESS_ERRORS]
)
def test_usage_errors_in_a_real_process(tmp_path: Path, command_line: str, fragment: str) -> None:
    (tmp_path / "afile").write_text("not a directory\n")
    result = run_cli(shlex.split(command_line), cwd=tmp_path)
    assert_one_error_line(result, fragment)
    assert tree(tmp_path) == ["afile"]


def test_missing_git_fails_before_writing(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**os.environ, "PATH": str(empty_bin)}
    result = run_cli(["new", "svc", "-o", str(tmp_path / "out"), "--defaults"], env=env)
    assert_one_error_line(result, "git is not installed", "--no-git")
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


def test_missing_template_is_one_error_line(tmp_path: Path) -> None:
    """A broken install (no copier.yml next to the package): one line, exit 1, no traceback."""
    code = (
        "import sys\n"
        "from fastcelery import cli, options, paths\n"
        "def missing(*args, **kwargs):\n"
        "    return paths.template_root(paths.PACKAGE_DIR / 'nowhere' / 'x' / 'fastcelery')\n"
        "options.template_root = missing\n"
        "cli.main(['new', 'svc', '--defaults'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert_one_error_line(result, "cannot find the bundled template", exit_code=1)
    assert tree(tmp_path) == []
