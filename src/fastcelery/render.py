"""Render a new project with Copier (imported lazily by ``fastcelery new``)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fastcelery import gitutil
from fastcelery.errors import FastceleryError, UsageError
from fastcelery.paths import template_root
from fastcelery.questions import TemplateConfig, load_config
from fastcelery.template_source import TemplateSource, resolve

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


def read_answers(dst: Path, config: TemplateConfig) -> dict[str, Any]:
    answers_file = dst / str(config.settings.get("_answers_file") or ".copier-answers.yml")
    if not answers_file.is_file():
        return {}
    data = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
    return dict(data) if isinstance(data, dict) else {}


def _source(request: NewRequest, bundled: Path) -> TemplateSource:
    if not gitutil.have_git() and not request.template:
        # No git: render straight from the bundled files (updates will not be possible).
        request.warnings.append(
            "git is not installed: the project records no template version, "
            "so `fastcelery update` will not work on it"
        )
        return TemplateSource(src_path=str(bundled), vcs_ref=None)
    return resolve(request.template, request.vcs_ref, bundled)


def render_new(request: NewRequest) -> NewResult:
    """Render the project; the request must be validated already."""
    import copier  # noqa: PLC0415 - lazy: keeps --help fast
    from copier.errors import CopierAnswersInterrupt, CopierError  # noqa: PLC0415

    bundled = template_root()
    config = load_config(bundled / "copier.yml")
    dst = request.destination
    existed = dst.exists()
    source = _source(request, bundled)
    try:
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
    answers = read_answers(dst, config)
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
            committed = gitutil.init_and_commit(
                dst, f"Initial commit: rendered by fastcelery {source.vcs_ref or ''}".strip()
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
