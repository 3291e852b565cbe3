"""Render a new project with Copier (imported lazily by ``fastcelery new``)."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastcelery import gitutil
from fastcelery.errors import FastceleryError, UsageError
from fastcelery.history import (
    SOURCE_URL,
    copier_environment,
    open_history,
    user_redirect_warning,
)
from fastcelery.paths import template_root
from fastcelery.project import COMMIT_KEY, answers_relpath, read_answers

PROJECT_NAME = "project_name"


@dataclass
class NewRequest:
    name: str
    output: Path
    answers: dict[str, Any]
    interactive: bool
    force: bool = False
    git: bool = True
    template: str | None = None
    vcs_ref: str | None = None
    #: The URL the project records as its template source (default: :data:`SOURCE_URL`).
    source: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def destination(self) -> Path:
        return (self.output / self.name).absolute()


@dataclass
class NewResult:
    destination: Path
    answers: dict[str, Any]
    committed: str | None
    git_note: str | None


def check_prerequisites(request: NewRequest) -> None:
    """Fail (exit 2) before writing anything when a required tool is missing."""
    if request.git and not gitutil.have_git():
        raise UsageError(
            "git is not installed (needed for the project's first commit and for updates); "
            "install git or pass --no-git"
        )
    if shutil.which("uv") is None:
        request.warnings.append(
            "uv is not installed; the next steps use it: https://docs.astral.sh/uv/"
        )


def check_destination(request: NewRequest) -> None:
    dst = request.destination
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"target {dst} exists and is not a directory")
    if dst.is_dir() and any(dst.iterdir()) and not request.force:
        raise UsageError(
            f"target directory {dst} is not empty; choose another NAME or --output, "
            "or pass --force to render into it (files that differ are reported)"
        )


@dataclass(frozen=True)
class TemplateSource:
    """What Copier renders: the source a project records, at which ref, and how git reads it."""

    src_path: str
    vcs_ref: str | None
    #: Recorded URL → where git reads it, for Copier's git commands (see history.py).
    redirects: Mapping[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def template_source(request: NewRequest, bundled: Path) -> Iterator[TemplateSource]:
    """The source to render from: the bundled template's history, or ``--template``."""
    if request.template:
        yield _explicit_source(request)
        return
    if not gitutil.have_git():
        # No git: render straight from the bundled files (updates will not be possible).
        request.warnings.append(
            "git is not installed: the project records no template version, "
            "so `fastcelery update` will not work on it"
        )
        yield TemplateSource(src_path=str(bundled), vcs_ref=None)
        return
    with open_history(bundled) as history:
        url = request.source or SOURCE_URL
        ref = request.vcs_ref or history.current_ref
        if warning := user_redirect_warning(url, history.repo):
            request.warnings.append(warning)
            yield TemplateSource(src_path=url, vcs_ref=ref)  # git reads the user's mirror
            return
        if history.resolve(ref) is None:
            raise UsageError(
                f"--vcs-ref {ref!r} is not a template version of this fastcelery; "
                f"choose one of {', '.join(history.tags()) or '(no release yet)'}"
            )
        if request.vcs_ref is None and (warning := history.unreleased_warning()):
            request.warnings.append(warning)
        yield TemplateSource(src_path=url, vcs_ref=ref, redirects={url: history.location})


def _explicit_source(request: NewRequest) -> TemplateSource:
    """``--template PATH_OR_URL``: Copier's own source, recorded as given or as ``--source``."""
    template = str(request.template)
    path = Path(template).expanduser()
    local = path.exists()
    if request.source:
        # Record the shared URL; git reads it from the given template, at its HEAD by default.
        if local and gitutil.inside_work_tree(path) and gitutil.status_porcelain(path):
            request.warnings.append(
                f"{path} has uncommitted changes: they are not rendered; the project records "
                f"{request.source} at the commit of {request.vcs_ref or 'HEAD'}"
            )
        return TemplateSource(
            src_path=request.source,
            vcs_ref=request.vcs_ref or "HEAD",
            redirects={request.source: path.resolve().as_uri() if local else template},
        )
    if not local:
        return TemplateSource(src_path=template, vcs_ref=request.vcs_ref)
    request.warnings.append(
        f"the project records the template path {path.resolve()}, which exists on this "
        "machine only: teammates and CI cannot update it from there; pass --source URL to "
        f"record a URL they can reach (e.g. {SOURCE_URL})"
    )
    return TemplateSource(src_path=str(path.resolve()), vcs_ref=request.vcs_ref)


def render_new(request: NewRequest) -> NewResult:
    """Render the project; the request must be validated already."""
    import copier  # noqa: PLC0415 - lazy: keeps --help fast
    from copier.errors import CopierAnswersInterrupt, CopierError  # noqa: PLC0415

    dst = request.destination
    existed = dst.exists()
    with template_source(request, template_root()) as source:
        try:
            with copier_environment(source.redirects):
                copier.run_copy(
                    src_path=source.src_path,
                    dst_path=dst,
                    data=request.answers,
                    vcs_ref=source.vcs_ref,
                    defaults=not request.interactive,
                    overwrite=request.force,
                    unsafe=True,
                    quiet=False,
                )
        except CopierAnswersInterrupt:
            raise
        except (CopierError, ValueError) as exc:
            if not existed and dst.exists():
                shutil.rmtree(dst, ignore_errors=True)
            message = " ".join(str(exc).split()) or type(exc).__name__
            if isinstance(exc, ValueError):
                raise UsageError(message) from exc
            raise FastceleryError(f"rendering failed: {message}") from exc
    answers = read_answers(dst / answers_relpath())
    committed: str | None = None
    note: str | None = None
    if request.git:
        if gitutil.inside_work_tree(dst):
            # Rendered into (a directory of) an existing repository, e.g. a monorepo: no
            # nested repository, and nothing committed on the user's behalf.
            top = gitutil.git(dst, "rev-parse", "--show-toplevel").stdout.strip()
            note = (
                f"{dst} is inside the git repository {top}: no new repository was created; "
                "review and commit the new files there (updates need them committed)"
            )
        else:
            version = str(answers.get(COMMIT_KEY) or "")
            committed = gitutil.init_and_commit(
                dst, f"Initial commit: rendered by fastcelery {version}".strip()
            )
    return NewResult(destination=dst, answers=answers, committed=committed, git_note=note)


def next_steps(result: NewResult, cwd: Path | None = None) -> str:
    dst = result.destination
    try:
        shown = dst.relative_to((cwd or Path.cwd()).absolute())
    except ValueError:
        shown = dst
    package = str(result.answers.get("package_name") or "app")
    services = _backing_services(result.answers)
    lines = [
        f"Created {result.answers.get(PROJECT_NAME, dst.name)} in {shown}",
        "",
        "Next steps:",
        f"  cd {shown}",
        "  uv sync",
    ]
    if result.committed:
        # uv.lock is part of the project (CI installs with --locked): commit it, so the
        # tree stays clean for `fastcelery update`.
        lines.append('  git add uv.lock && git commit -m "Lock dependencies"')
    compose = [
        n for n in ("compose.yaml", "compose.yml", "docker-compose.yml") if (dst / n).exists()
    ]
    if compose and services:
        # Only the backing services: the next steps run the API and worker locally.
        lines.append(f"  docker compose up -d {' '.join(services)}")
    elif services:
        labels = ", ".join(_SERVICE_LABELS.get(name, name) for name in services)
        lines.append(f"  # start {labels} (see README.md)")
    lines += [
        "  uv run alembic upgrade head",
        f"  uv run uvicorn {package}.main:app --reload",
        f"  uv run celery -A {package}.core.celery worker --loglevel=info",
        "  uv run pytest",
    ]
    return "\n".join(lines)


# compose.yaml's service names, and how the next steps call them.
_SERVICE_LABELS = {"redis": "Redis", "rabbitmq": "RabbitMQ", "postgres": "PostgreSQL"}


def _backing_services(answers: Mapping[str, Any]) -> list[str]:
    """The compose.yaml services of the broker, result backend and database, once each."""
    names = [str(answers.get("broker") or "")]
    if answers.get("result_backend") == "redis":
        names.append("redis")
    if answers.get("database") == "postgresql":
        names.append("postgres")
    return [name for name in dict.fromkeys(names) if name]


def print_warnings(request: NewRequest) -> None:
    for warning in request.warnings:
        print(f"fastcelery: warning: {warning}", file=sys.stderr)
