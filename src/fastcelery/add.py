"""``fastcelery add task NAME``: render the task sub-template into a generated project.

The sub-template (``subtemplates/task``, its own ``copier.yml``) renders new files only: the
service imports every module of its tasks package and includes every route module's
``router``, so nothing of the project is edited. Everything is checked before anything is
written (exit code 2 otherwise); the render goes to a temporary directory first, and its
files are placed in the project only when none of them exists there.

The task records its own answers file (``.copier-answers.task-NAME.yml``) with the URL of the
sub-template's history and a version from the same releases as the project's template
(:func:`fastcelery.history.derive_history`), so ``fastcelery update`` and plain
``copier update -a`` update it like the project.
"""

from __future__ import annotations

import contextlib
import keyword
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastcelery import gitutil
from fastcelery.answers import collect_answers, validate_answers
from fastcelery.errors import FastceleryError, UsageError
from fastcelery.history import (
    copier_environment,
    derive_history,
    import_copier_meanwhile,
    open_history,
    subtemplate_url,
    user_redirect_warning,
)
from fastcelery.options import task_config
from fastcelery.paths import subtemplate_root, template_root
from fastcelery.project import COMMIT_KEY, answers_relpath, read_answers
from fastcelery.questions import (
    PACKAGE_QUESTION,
    PROJECT_ANSWERS,
    TASK_KIND,
    TASK_NAME_QUESTION,
    TemplateConfig,
)

#: Answers whose default is the project's own answer (copier.yml reads them from the
#: project's answers file; fastcelery passes them, so both agree).
PROJECT_DEFAULTS = ("pydantic",)
#: Where the project declares its queues: ``<name>_queue: str = "..."`` in CelerySettings.
QUEUE_SETTING = re.compile(r"^\s+([a-z][a-z0-9_]*)_queue: str = ", re.MULTILINE)


@dataclass(frozen=True)
class AddTaskRequest:
    """``fastcelery add task`` as parsed from the command line."""

    path: Path
    name: str
    #: Answers given by question flags, and raw ``--data KEY=VALUE`` items.
    flags: Mapping[str, Any] = field(default_factory=dict)
    data: Sequence[str] = ()
    git: bool = True


@dataclass
class AddTaskResult:
    path: Path
    name: str
    #: Every answer, the computed ones (``class_prefix``, ``route_path``) included.
    answers: dict[str, Any]
    #: The files written, relative to the project.
    files: list[str] = field(default_factory=list)
    version: str = ""
    committed: str | None = None
    warnings: list[str] = field(default_factory=list)


def add_task(request: AddTaskRequest) -> AddTaskResult:
    """``fastcelery add task``: check everything, render aside, place the new files, commit."""
    path = request.path
    project_answers = _project_answers(path)
    config = task_config()
    answers = _answers(config, request, project_answers)
    _check_added(path, config, answers)
    _check_name(path, answers)
    _check_queue(path, answers)
    if request.git:
        _check_git(path)
    result = AddTaskResult(path=path, name=request.name, answers=answers)
    recorded = {k: v for k, v in answers.items() if not config.question(k).is_computed}
    with tempfile.TemporaryDirectory(prefix="fastcelery-add-") as tmp:
        staged = Path(tmp) / "project"
        staged.mkdir()
        # The sub-template reads the project's answers (its _external_data).
        shutil.copy2(path / answers_relpath(), staged / answers_relpath())
        _render(staged, recorded, result.warnings)
        files = sorted(
            p.relative_to(staged).as_posix()
            for p in staged.rglob("*")
            if p.is_file() and p.relative_to(staged).as_posix() != answers_relpath()
        )
        _check_free(path, files, request.name)
        for rel in files:
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(staged / rel, path / rel)
    result.files = files
    answers_file = next(f for f in files if f.startswith(".copier-answers."))
    result.version = str(read_answers(path / answers_file).get(COMMIT_KEY) or "")
    if request.git:
        message = f"fastcelery add task {request.name}"
        if result.version:
            message += f" (template {result.version})"
        gitutil.git(path, "add", "--", *files)
        gitutil.git(path, "commit", "-q", "--no-verify", "-m", message, identity=True)
        result.committed = gitutil.git(path, "rev-parse", "--short=12", "HEAD").stdout.strip()
    return result


def _project_answers(path: Path) -> dict[str, Any]:
    relpath = answers_relpath()
    if not (path / relpath).is_file():
        raise UsageError(
            f"{path} is not a generated project: it has no {relpath} (run `fastcelery add` in "
            "a project made by `fastcelery new`, or give its PATH)"
        )
    answers = read_answers(path / relpath)
    package = str(answers.get(PACKAGE_QUESTION) or "")
    if not package or not (path / package).is_dir():
        raise UsageError(
            f"{path / relpath} names no package directory of the project "
            f"({PACKAGE_QUESTION}: {package or '(none)'})"
        )
    if not (path / package / "durable" / "__init__.py").is_file():
        raise UsageError(
            f"{path} has no durable-task layer ({package}/durable/): its template predates "
            "durable tasks; `fastcelery update` it first"
        )
    return answers


def _answers(
    config: TemplateConfig, request: AddTaskRequest, project: Mapping[str, Any]
) -> dict[str, Any]:
    """The task's answers: NAME, flags and ``--data``, the project's answers where it has them."""
    given = collect_answers(
        config,
        request.flags,
        request.data,
        fixed={TASK_NAME_QUESTION: request.name},
        fixed_labels={TASK_NAME_QUESTION: "NAME"},
    )
    for name in PROJECT_ANSWERS:
        if name in given:
            raise UsageError(
                f"--data {name}=... cannot be given: a task uses the project's "
                f"{name} ({project.get(name)})"
            )
        given[name] = project.get(name)
    for name in PROJECT_DEFAULTS:
        if name not in given and name in project:
            given[name] = project[name]
    return validate_answers(
        config,
        given,
        interactive=False,
        labels={TASK_NAME_QUESTION: "task name"},
        extra_context={"_external_data": {"project": dict(project)}},
    )


def _check_added(path: Path, config: TemplateConfig, answers: Mapping[str, Any]) -> None:
    """Refuse a task added already (its answers file, copier.yml's ``_answers_file``)."""
    from fastcelery.validation import make_env, render  # noqa: PLC0415 - lazy: Jinja

    relpath = render(make_env(config.settings), str(config.settings["_answers_file"]), answers)
    if (path / relpath).exists():
        raise UsageError(
            f"a task {answers[TASK_NAME_QUESTION]!r} was added already ({relpath}); "
            "`fastcelery update` updates it"
        )


def _check_name(path: Path, answers: Mapping[str, Any]) -> None:
    """Refuse a name that would shadow a module, or that an existing task or route uses."""
    name = str(answers[TASK_NAME_QUESTION])
    if keyword.iskeyword(name):
        raise UsageError(f"invalid task name {name!r}: it is a Python keyword")
    if name in sys.stdlib_module_names:
        raise UsageError(
            f"invalid task name {name!r}: it is a module of Python's standard library; "
            f"choose another, e.g. {name}_task"
        )
    package = path / str(answers[PACKAGE_QUESTION])
    celery_name = f'"tasks.{name}"'
    prefix = f'prefix="{answers["route_path"]}"'
    for module in sorted(package.rglob("*.py")):
        text = module.read_text(encoding="utf-8", errors="replace")
        if celery_name in text:
            raise UsageError(
                f"task name {name!r} is taken: {module.relative_to(path)} declares the "
                f"Celery task {celery_name}; choose another NAME"
            )
        if answers.get("route") and prefix in text:
            raise UsageError(
                f"task name {name!r} clashes with a route: {module.relative_to(path)} serves "
                f"{answers['route_path']}; choose another NAME, or pass --no-route"
            )


def declared_queues(path: Path, package: str) -> list[str]:
    """The queues the project's settings declare (``<name>_queue`` fields), in order."""
    config = path / package / "config.py"
    if not config.is_file():
        return []
    return QUEUE_SETTING.findall(config.read_text(encoding="utf-8", errors="replace"))


def _check_queue(path: Path, answers: Mapping[str, Any]) -> None:
    queue = str(answers["queue"])
    declared = declared_queues(path, str(answers[PACKAGE_QUESTION]))
    if declared and queue not in declared:
        raise UsageError(
            f"unknown --queue {queue!r}: the project's settings declare "
            f"{', '.join(declared)} ({answers[PACKAGE_QUESTION]}/config.py, CelerySettings)"
        )


def _check_git(path: Path) -> None:
    if not gitutil.have_git():
        raise UsageError(
            "git is not installed (needed to commit the new files); install git or pass --no-git"
        )
    if not gitutil.inside_work_tree(path):
        raise UsageError(
            f"{path} is not a git repository, so the new files cannot be committed; "
            "pass --no-git, or `git init && git add -A && git commit -m init` first"
        )
    dirty = gitutil.status_porcelain(path)
    if dirty:
        raise UsageError(
            f"{path} has uncommitted changes ({len(dirty)} path(s), e.g. {dirty[0][3:]}); "
            "commit or stash them (the new task is committed on its own), or pass --no-git"
        )


def _check_free(path: Path, files: Sequence[str], name: str) -> None:
    """Refuse when a file the task would write exists (or a package of that module name)."""
    for rel in files:
        target = path / rel
        for taken in (target, target.with_suffix("")) if rel.endswith(".py") else (target,):
            if taken.exists():
                shown = taken.relative_to(path).as_posix()
                raise UsageError(f"task name {name!r} clashes with {shown}; choose another NAME")


@contextlib.contextmanager
def task_source(warnings: list[str]) -> Iterator[tuple[str, str | None, dict[str, str]]]:
    """(src_path, vcs_ref, redirects) of this fastcelery's task sub-template.

    Read from the sub-template's history derived from the shipped releases, under its URL;
    without git, from the bundled files (the task then records no version).
    """
    url = subtemplate_url(TASK_KIND)
    if not gitutil.have_git():
        warnings.append(
            "git is not installed: the task records no template version, so "
            "`fastcelery update` will not update it"
        )
        yield str(subtemplate_root(TASK_KIND)), None, {}
        return
    import_copier_meanwhile()
    with open_history(template_root()) as history:
        task = derive_history(history, TASK_KIND, history.repo.parent / TASK_KIND)
        if warning := user_redirect_warning(url, task.repo):
            warnings.append(warning)
            yield url, task.current_ref, {}
            return
        if warning := task.unreleased_warning():
            warnings.append(warning)
        yield url, task.current_ref, {url: task.location}


def _render(dst: Path, answers: Mapping[str, Any], warnings: list[str]) -> None:
    with task_source(warnings) as (src, ref, redirects), copier_environment(redirects):
        # Imported once the history is open: it was imported meanwhile, on a thread.
        import copier  # noqa: PLC0415 - lazy: keeps --help fast
        from copier.errors import CopierError  # noqa: PLC0415

        try:
            copier.run_copy(
                src_path=src,
                dst_path=dst,
                data=dict(answers),
                vcs_ref=ref,
                defaults=True,
                unsafe=True,
                quiet=True,
            )
        except (CopierError, ValueError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise FastceleryError(f"rendering the task failed: {message}") from exc


def next_steps(result: AddTaskResult) -> str:
    """Where to write the body, how to enqueue it, how to run its tests."""
    answers = result.answers
    name = result.name
    package = str(answers[PACKAGE_QUESTION])
    module = f"{package}/tasks/{name}.py"
    prefix = answers["class_prefix"]
    where = f" ({result.version})" if result.version else ""
    lines = [f"Added the durable task {name} to {result.path}{where}:"]
    lines += [f"  {rel}" for rel in result.files]
    if result.committed:
        lines.append(f"Committed as {result.committed}.")
    else:
        lines.append("Not committed (--no-git): review and commit the new files.")
    arg = f"{prefix}Args(...)"
    if not answers.get("pydantic"):
        arg += '.model_dump(mode="json")'  # the task takes its arguments as JSON
    lines += [
        "",
        "Next steps:",
        f"  1. Write its work in the body of {name}() in {module}, and its arguments in "
        f"{prefix}Args.",
        "  2. Enqueue it in the transaction that needs it, then commit:",
        f"       from {package}.tasks.{name} import {prefix}Args, {name}",
        f"       record = {name}.enqueue(session, {arg})  # record.id: GET /tasks/{{id}}",
    ]
    if answers.get("route"):
        lines.append(
            f"     or over HTTP: POST {answers['route_path']} with the arguments as JSON "
            "(an Idempotency-Key header makes retries safe)."
        )
    lines.append(f"  3. Run its tests: uv run pytest tests/test_{name}.py")
    return "\n".join(lines)
