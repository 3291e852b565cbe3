"""A generated project as fastcelery sees it: its answers file and its recorded template source."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

import yaml

from fastcelery import gitutil
from fastcelery.errors import UsageError
from fastcelery.paths import template_root
from fastcelery.questions import COPIER_YML, load_config

#: Keys Copier records in the answers file: the template source and its version.
SRC_KEY = "_src_path"
COMMIT_KEY = "_commit"
#: Where fastcelery 0.1.0 kept its per-user template repository (``…/fastcelery/template``),
#: and the variable that moved it: projects recording it are moved to a URL by `update`.
LEGACY_CACHE_TAIL = ("fastcelery", "template")
LEGACY_CACHE_ENV = "FASTCELERY_TEMPLATE_CACHE"

SourceKind = Literal["url", "legacy-cache", "path"]


def answers_relpath() -> str:
    """The answers file of fastcelery's template (copier.yml's ``_answers_file``)."""
    settings = load_config(template_root() / COPIER_YML).settings
    return str(settings.get("_answers_file") or ".copier-answers.yml")


#: The answers files of the tasks added to a project (``fastcelery add task NAME``): the task
#: sub-template's templated ``_answers_file``.
TASK_ANSWERS_GLOB = ".copier-answers.task-*.yml"


def task_answers_files(path: Path) -> list[str]:
    """The answers files of the tasks added to the project at ``path``, by name."""
    return sorted(found.name for found in path.glob(TASK_ANSWERS_GLOB) if found.is_file())


def is_task_answers(relpath: str) -> bool:
    return PurePath(relpath).match(TASK_ANSWERS_GLOB)


def read_answers(file: Path) -> dict[str, Any]:
    """The answers recorded in ``file`` (empty when it does not exist)."""
    if not file.is_file():
        return {}
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise UsageError(f"{file} is not a mapping of answers")
    return data


def is_url(src: str) -> bool:
    """A git URL (or a Copier shortcut such as ``gh:owner/repo``) rather than a local path."""
    return "://" in src or src.startswith(("git@", "gh:", "gl:"))


def is_legacy_cache(src: str) -> bool:
    """The per-user template repository that fastcelery 0.1.0 recorded as ``_src_path``."""
    if is_url(src):
        return False
    path = PurePath(os.path.expanduser(src))
    legacy = os.environ.get(LEGACY_CACHE_ENV)
    if legacy and Path(src).expanduser().resolve() == Path(legacy).expanduser().resolve():
        return True
    return path.is_absolute() and path.parts[-2:] == LEGACY_CACHE_TAIL


@dataclass(frozen=True)
class Project:
    path: Path
    answers_relpath: str
    answers: Mapping[str, Any]

    @property
    def src_path(self) -> str:
        return str(self.answers.get(SRC_KEY) or "")

    @property
    def commit(self) -> str:
        return str(self.answers.get(COMMIT_KEY) or "")

    @property
    def user_answers(self) -> dict[str, Any]:
        return {k: v for k, v in self.answers.items() if not k.startswith("_")}

    @property
    def source_kind(self) -> SourceKind:
        if is_legacy_cache(self.src_path):
            return "legacy-cache"
        return "url" if is_url(self.src_path) else "path"


def load_project(path: Path, answers_file: str | None = None) -> Project:
    """Refuse (exit 2) unless ``path`` is a clean, git-tracked, generated project.

    ``answers_file``: another template applied to the project (its own answers file).
    """
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory")
    relpath = answers_file or answers_relpath()
    recorded = path / relpath
    if not recorded.is_file():
        raise UsageError(
            f"{path} is not a generated project: it has no {relpath} "
            "(render one with `fastcelery new`)"
        )
    if not gitutil.have_git():
        raise UsageError("git is not installed; updating a project needs git")
    if not gitutil.inside_work_tree(path):
        raise UsageError(
            f"{path} is not a git repository; updates merge against its history: "
            "run `git init && git add -A && git commit -m init` first"
        )
    dirty = gitutil.status_porcelain(path)
    if dirty:
        example = dirty[0][3:]
        raise UsageError(
            f"{path} has uncommitted changes ({len(dirty)} path(s), e.g. {example}); "
            "commit or stash them, then update"
        )
    project = Project(path=path, answers_relpath=relpath, answers=read_answers(recorded))
    if not project.src_path or not project.commit:
        raise UsageError(
            f"{relpath} records no template source/version ({SRC_KEY}, {COMMIT_KEY}); "
            "it was not rendered from a versioned template, so it cannot be updated"
        )
    return project


def rewrite_answers(file: Path, values: Mapping[str, str]) -> None:
    """Replace top-level ``key: value`` lines of an answers file, keeping everything else."""
    text = file.read_text(encoding="utf-8")
    for key, value in values.items():
        line = yaml.safe_dump({key: value}, default_flow_style=False, width=10_000).strip()
        text, count = re.subn(rf"^{re.escape(key)}:.*$", lambda _: line, text, flags=re.M)  # noqa: B023
        if count != 1:
            raise UsageError(f"{file} has no single {key} line to change")
    file.write_text(text, encoding="utf-8")
