"""``fastcelery info``: a project's template source and version, answers, added templates."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastcelery.errors import UsageError
from fastcelery.history import History, derive_history, open_history
from fastcelery.paths import template_root
from fastcelery.project import (
    COMMIT_KEY,
    SRC_KEY,
    answers_relpath,
    is_task_answers,
    read_answers,
)
from fastcelery.questions import TASK_KIND

#: Answers files of templates added to a project (Copier's templated ``_answers_file``,
#: e.g. ``.copier-answers.task-NAME.yml``).
ADDED_ANSWERS_GLOB = ".copier-answers.*.yml"


@dataclass(frozen=True)
class AnswersFile:
    """One applied template: where it comes from, its version, and the answers."""

    file: str
    src_path: str
    commit: str
    answers: dict[str, Any]
    #: What this fastcelery knows of the version (a release, its own template, or nothing).
    status: str


@dataclass(frozen=True)
class ProjectInfo:
    path: Path
    project: AnswersFile
    added: list[AnswersFile]
    #: The template version this fastcelery carries (what `update` goes to).
    carried: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def project_info(path: Path) -> ProjectInfo:
    """Read a generated project's answers files (no git state needed)."""
    relpath = answers_relpath()
    if not (path / relpath).is_file():
        raise UsageError(
            f"{path} is not a generated project: it has no {relpath} "
            "(render one with `fastcelery new`)"
        )
    with open_history(template_root()) as history:
        tasks = derive_history(history, TASK_KIND, history.repo.parent / TASK_KIND)
        main = _answers_file(path, relpath, history)
        added = [
            _answers_file(path, found.name, tasks if is_task_answers(found.name) else history)
            for found in sorted(path.glob(ADDED_ANSWERS_GLOB))
            if found.name != relpath
        ]
        return ProjectInfo(path=path, project=main, added=added, carried=history.describe())


def _answers_file(path: Path, relpath: str, history: History) -> AnswersFile:
    data = read_answers(path / relpath)
    commit = str(data.get(COMMIT_KEY) or "")
    return AnswersFile(
        file=relpath,
        src_path=str(data.get(SRC_KEY) or ""),
        commit=commit,
        answers={k: v for k, v in data.items() if not k.startswith("_")},
        status=_status(commit, history),
    )


def _status(commit: str, history: History) -> str:
    if not commit:
        return "no version recorded: not updatable"
    found = history.resolve(commit)
    if found is None:
        return "not in this fastcelery's history: plain `copier update` reads it from its source"
    if commit in history.tags():
        return "a release"
    if found == history.head:
        return "this fastcelery's unreleased template"
    return "an unreleased template this fastcelery can read"


def format_text(info: ProjectInfo) -> str:
    lines = [f"Project {info.path}", f"This fastcelery carries template {info.carried}."]
    for applied in (info.project, *info.added):
        lines += [
            "",
            f"{applied.file}: {applied.src_path or '(no source)'} at {applied.commit or '?'}",
            f"  version: {applied.status}",
        ]
        lines += [f"  {key}: {value}" for key, value in applied.answers.items()]
    if not info.added:
        lines += ["", f"No added templates ({ADDED_ANSWERS_GLOB})."]
    return "\n".join(lines)
