"""Update a generated project with Copier's three-way merge (``fastcelery update``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fastcelery import gitutil
from fastcelery.errors import FastceleryError, UsageError
from fastcelery.paths import template_root
from fastcelery.questions import COPIER_YML, load_config
from fastcelery.template_source import cache_repo_path, ensure_version

CONFLICT_MARKER = "<<<<<<< "


@dataclass
class Project:
    path: Path
    answers_relpath: str
    answers: dict[str, Any]

    @property
    def src_path(self) -> str:
        return str(self.answers.get("_src_path") or "")

    @property
    def commit(self) -> str:
        return str(self.answers.get("_commit") or "")

    @property
    def user_answers(self) -> dict[str, Any]:
        return {k: v for k, v in self.answers.items() if not k.startswith("_")}


@dataclass
class UpdateRequest:
    path: Path
    answers: dict[str, Any]
    interactive: bool
    pretend: bool = False
    vcs_ref: str | None = None
    conflict: Literal["inline", "rej"] = "inline"


@dataclass
class UpdateResult:
    old_version: str
    new_version: str
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    pretend: bool = False


def answers_relpath() -> str:
    settings = load_config(template_root() / COPIER_YML).settings
    return str(settings.get("_answers_file") or ".copier-answers.yml")


def load_project(path: Path) -> Project:
    """Refuse (exit 2) unless ``path`` is a clean, git-tracked, generated project."""
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory")
    relpath = answers_relpath()
    answers_file = path / relpath
    if not answers_file.is_file():
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
    data = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise UsageError(f"{answers_file} is not a mapping of answers")
    project = Project(path=path, answers_relpath=relpath, answers=dict(data))
    if not project.src_path or not project.commit:
        raise UsageError(
            f"{relpath} records no template source/version (_src_path, _commit); "
            "it was not rendered from a versioned template, so it cannot be updated"
        )
    return project


def uses_cache(project: Project) -> bool:
    src = Path(project.src_path).expanduser()
    return src.is_absolute() and src.resolve() == cache_repo_path()


def target_ref(project: Project, vcs_ref: str | None) -> str | None:
    """The version to update to: the installed fastcelery's tag when the project uses the cache."""
    if uses_cache(project):
        tag = ensure_version(template_root())
        known = gitutil.git(
            cache_repo_path(), "rev-parse", "-q", "--verify", f"refs/tags/{project.commit}",
            check=False,
        )  # fmt: skip
        if known.returncode != 0:
            raise UsageError(
                f"template version {project.commit} (recorded in {project.answers_relpath}) "
                f"is not in the template cache {cache_repo_path()}; run any `fastcelery new` "
                "with that fastcelery version installed once, or set "
                "FASTCELERY_TEMPLATE_CACHE to a cache that has it"
            )
        return vcs_ref or tag
    src = Path(project.src_path).expanduser()
    if src.is_absolute() and not src.exists():
        raise UsageError(
            f"the template source recorded in {project.answers_relpath} does not exist: "
            f"{project.src_path}; point _src_path at a clone of the template and commit"
        )
    return vcs_ref


def find_conflicts(path: Path, changed: list[str]) -> list[str]:
    conflicts: list[str] = []
    for rel in changed:
        file = path / rel
        if rel.endswith(".rej"):
            conflicts.append(rel)
            continue
        if not file.is_file():
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if any(line.startswith(CONFLICT_MARKER) for line in text.splitlines()):
            conflicts.append(rel)
    return conflicts


def _changed_paths(path: Path) -> list[str]:
    out = gitutil.git(path, "status", "--porcelain", "--untracked-files=all").stdout
    return [line for line in out.splitlines() if line]


def run_update(request: UpdateRequest) -> UpdateResult:
    import copier  # noqa: PLC0415 - lazy: keeps --help fast
    from copier.errors import CopierAnswersInterrupt, CopierError  # noqa: PLC0415

    project = load_project(request.path)
    ref = target_ref(project, request.vcs_ref)
    try:
        copier.run_update(
            dst_path=request.path,
            data=request.answers,
            vcs_ref=ref,
            defaults=not request.interactive,
            overwrite=True,
            pretend=request.pretend,
            unsafe=True,
            quiet=False,
            conflict=request.conflict,
        )
    except CopierAnswersInterrupt:
        raise
    except (CopierError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, ValueError) or "downgrading" in message:
            raise UsageError(message) from exc
        raise FastceleryError(f"update failed: {message}") from exc
    after = yaml.safe_load((request.path / project.answers_relpath).read_text()) or {}
    result = UpdateResult(
        old_version=project.commit,
        new_version=str(after.get("_commit") or ref or "?"),
        pretend=request.pretend,
    )
    if request.pretend:
        result.new_version = ref or "(latest)"
        return result
    status = _changed_paths(request.path)
    result.changed = status
    result.conflicts = find_conflicts(request.path, [line[3:] for line in status])
    return result


def report(result: UpdateResult, path: Path) -> str:
    if result.pretend:
        return (
            f"Dry run (--pretend): {path} would be updated from {result.old_version} to "
            f"{result.new_version}; nothing was written."
        )
    lines = [f"Updated {path} from {result.old_version} to {result.new_version}."]
    if not result.changed:
        lines.append("Nothing changed: the project is up to date.")
        return "\n".join(lines)
    lines.append("Changed files (git status):")
    lines += [f"  {line}" for line in result.changed]
    if result.conflicts:
        lines.append("Conflicts to resolve (conflict markers or .rej files), then commit:")
        lines += [f"  {name}" for name in result.conflicts]
    else:
        lines.append("No conflicts. Review with `git diff`, run the tests, then commit.")
    return "\n".join(lines)


def print_report(result: UpdateResult, path: Path) -> None:
    print(report(result, path), file=sys.stdout)
