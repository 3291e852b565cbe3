"""Render a new project with Copier (imported lazily by ``fastcelery new``)."""

from __future__ import annotations

import contextlib
import filecmp
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastcelery import gitutil
from fastcelery.answers import collect_answers, validate_answers
from fastcelery.errors import FastceleryError, UsageError
from fastcelery.history import (
    SOURCE_URL,
    copier_environment,
    import_copier_meanwhile,
    open_history,
    user_redirect_warning,
)
from fastcelery.options import template_config
from fastcelery.paths import WHEEL_TEMPLATE_DIR, template_root
from fastcelery.project import COMMIT_KEY, answers_relpath, read_answers
from fastcelery.questions import (
    COPIER_YML,
    NAME_QUESTION,
    PACKAGE_QUESTION,
    TemplateConfig,
    load_config,
)


@dataclass(frozen=True)
class NewRequest:
    """``fastcelery new`` as parsed from the command line."""

    name: str
    output: Path
    #: Answers given by question flags, and raw ``--data KEY=VALUE`` items.
    flags: Mapping[str, Any] = field(default_factory=dict)
    data: Sequence[str] = ()
    interactive: bool = False
    force: bool = False
    git: bool = True
    template: str | None = None
    vcs_ref: str | None = None
    #: The URL the project records as its template source (default: :data:`SOURCE_URL`).
    source: str | None = None
    #: With ``--force``: asked with the files rendering would replace; ``False`` keeps them.
    confirm_overwrite: Callable[[Sequence[str]], bool] | None = None

    @property
    def destination(self) -> Path:
        return (self.output / self.name).absolute()


@dataclass
class NewResult:
    destination: Path
    answers: dict[str, Any]
    committed: str | None = None
    git_note: str | None = None
    #: Existing files the template would have replaced, kept as they were (``--force``).
    kept: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def new_project(request: NewRequest) -> NewResult:
    """``fastcelery new``: check everything before writing, render, make the first commit."""
    answers = _answers(request)
    warnings = check_prerequisites(request)
    check_destination(request)
    return render_new(request, answers, warnings)


def _answers(request: NewRequest) -> dict[str, Any]:
    """The answers given, typed and checked against the chosen template's copier.yml.

    With ``--template`` they are checked against that template's copier.yml when it is a
    local directory; for a URL, Copier checks them.
    """
    bundled = template_config()
    config: TemplateConfig | None = bundled
    if request.template:
        local = Path(request.template).expanduser() / COPIER_YML
        config = load_config(local.resolve()) if local.is_file() else None
    given = collect_answers(
        config or bundled,
        request.flags,
        request.data,
        fixed={NAME_QUESTION: request.name},
        fixed_labels={NAME_QUESTION: "NAME"},
        allow_unknown=config is None,
    )
    if config is not None:
        validate_answers(
            config,
            given,
            interactive=request.interactive,
            labels={NAME_QUESTION: "project name"},
            extra_context={"_folder_name": request.name},
        )
    return given


def check_prerequisites(request: NewRequest) -> list[str]:
    """Fail (exit 2) before writing anything when a required tool is missing; warnings."""
    if request.git and not gitutil.have_git():
        raise UsageError(
            "git is not installed (needed for the project's first commit and for updates); "
            "install git or pass --no-git"
        )
    if shutil.which("uv") is None:
        return ["uv is not installed; the next steps use it: https://docs.astral.sh/uv/"]
    return []


def check_destination(request: NewRequest) -> None:
    dst = request.destination
    for place in (dst, *dst.parents):  # the first that exists must be a directory
        if place.exists():
            if not place.is_dir():
                raise UsageError(
                    f"{place} exists and is not a directory; choose another NAME or --output"
                )
            break
    checkout = template_root()
    if checkout != WHEEL_TEMPLATE_DIR and dst.resolve().is_relative_to(checkout.resolve()):
        raise UsageError(
            f"{dst} is inside fastcelery's own checkout {checkout}: the project would not "
            "get a repository of its own; choose an --output outside it, e.g. --output ~/src"
        )
    if dst.is_dir() and any(dst.iterdir()) and not request.force:
        raise UsageError(
            f"target directory {dst} is not empty; choose another NAME or --output, "
            "or pass --force to render into it (files it has are kept unless you confirm)"
        )


@dataclass(frozen=True)
class TemplateSource:
    """What Copier renders: the source a project records, at which ref, and how git reads it."""

    src_path: str
    vcs_ref: str | None
    #: Recorded URL → where git reads it, for Copier's git commands (see history.py).
    redirects: Mapping[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def template_source(
    request: NewRequest, bundled: Path, warnings: list[str]
) -> Iterator[TemplateSource]:
    """The source to render from: the bundled template's history, or ``--template``."""
    if request.template:
        yield _explicit_source(request, warnings)
        return
    if not gitutil.have_git():
        # No git: render straight from the bundled files (updates will not be possible).
        warnings.append(
            "git is not installed: the project records no template version, "
            "so `fastcelery update` will not work on it"
        )
        yield TemplateSource(src_path=str(bundled), vcs_ref=None)
        return
    import_copier_meanwhile()
    with open_history(bundled) as history:
        url = request.source or SOURCE_URL
        ref = request.vcs_ref or history.current_ref
        if warning := user_redirect_warning(url, history.repo):
            warnings.append(warning)
            yield TemplateSource(src_path=url, vcs_ref=ref)  # git reads the user's mirror
            return
        history.require(ref)
        if request.vcs_ref is None and (warning := history.unreleased_warning()):
            warnings.append(warning)
        yield TemplateSource(src_path=url, vcs_ref=ref, redirects={url: history.location})


def _explicit_source(request: NewRequest, warnings: list[str]) -> TemplateSource:
    """``--template PATH_OR_URL``: Copier's own source, recorded as given or as ``--source``."""
    template = str(request.template)
    path = Path(template).expanduser()
    local = path.exists()
    if request.source:
        # Record the shared URL; git reads it from the given template, at its HEAD by default.
        if local and gitutil.inside_work_tree(path) and gitutil.status_porcelain(path):
            warnings.append(
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
    warnings.append(
        f"the project records the template path {path.resolve()}, which exists on this "
        "machine only: teammates and CI cannot update it from there; pass --source URL to "
        f"record a URL they can reach (e.g. {SOURCE_URL})"
    )
    return TemplateSource(src_path=str(path.resolve()), vcs_ref=request.vcs_ref)


def render_new(request: NewRequest, answers: dict[str, Any], warnings: list[str]) -> NewResult:
    """Render the project (answers and destination checked already), then commit it."""
    dst = request.destination
    existed = dst.exists()
    result = NewResult(destination=dst, answers={}, warnings=warnings)
    rendered: list[str] | None = None  # None: everything in dst is the render
    with template_source(request, template_root(), warnings) as source:
        try:
            if existed and any(dst.iterdir()):
                # --force: render aside, then place only what replaces nothing of the user's
                # (unless confirmed), so the user's files are kept and stay out of the commit.
                with tempfile.TemporaryDirectory(prefix="fastcelery-new-") as tmp:
                    staged = Path(tmp) / dst.name
                    _copy(source, staged, answers, request.interactive)
                    rendered, result.kept = _place(staged, dst, request.confirm_overwrite)
            else:
                _copy(source, dst, answers, request.interactive)
        except FastceleryError:
            if not existed and dst.exists():
                shutil.rmtree(dst, ignore_errors=True)
            raise
    if result.kept:
        warnings.append(
            "kept your files that the template would have replaced: "
            + ", ".join(result.kept)
            + " (compare with `fastcelery new` elsewhere; they are not in the first commit)"
        )
    result.answers = read_answers(dst / answers_relpath())
    if request.git:
        if gitutil.inside_work_tree(dst):
            # Rendered into (a directory of) an existing repository, e.g. a monorepo: no
            # nested repository, and nothing committed on the user's behalf.
            top = gitutil.git(dst, "rev-parse", "--show-toplevel").stdout.strip()
            result.git_note = (
                f"{dst} is inside the git repository {top}: no new repository was created; "
                "review and commit the new files there (updates need them committed)"
            )
        else:
            version = str(result.answers.get(COMMIT_KEY) or "")
            result.committed = gitutil.init_and_commit(
                dst, f"Initial commit: rendered by fastcelery {version}".strip(), rendered
            )
    return result


def _copy(source: TemplateSource, dst: Path, answers: dict[str, Any], interactive: bool) -> None:
    """Copier's render of ``source`` into ``dst``; its errors as fastcelery's."""
    import copier  # noqa: PLC0415 - lazy: keeps --help fast
    from copier.errors import CopierAnswersInterrupt, CopierError  # noqa: PLC0415

    try:
        with copier_environment(source.redirects):
            copier.run_copy(
                src_path=source.src_path,
                dst_path=dst,
                data=answers,
                vcs_ref=source.vcs_ref,
                defaults=not interactive,
                unsafe=True,
                quiet=False,
            )
    except CopierAnswersInterrupt:
        raise
    except (CopierError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, ValueError):
            raise UsageError(message) from exc
        raise FastceleryError(f"rendering failed: {message}") from exc


def _place(
    staged: Path, dst: Path, confirm: Callable[[Sequence[str]], bool] | None
) -> tuple[list[str], list[str]]:
    """Copy the render into ``dst``; return (files written, existing files kept).

    A file that exists with other content is replaced only when ``confirm`` says so; the
    answers file, the record of this render, is always written.
    """
    files = sorted(
        p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file() or p.is_symlink()
    )
    answers = answers_relpath()
    clashes = [
        f
        for f in files
        if f != answers and (dst / f).exists() and not filecmp.cmp(staged / f, dst / f, False)
    ]
    kept = [] if clashes and confirm is not None and confirm(clashes) else clashes
    written = [f for f in files if f not in kept]
    for rel in written:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staged / rel, dst / rel, follow_symlinks=False)
    return written, kept


def next_steps(result: NewResult, cwd: Path | None = None) -> str:
    dst = result.destination
    try:
        shown = dst.relative_to((cwd or Path.cwd()).absolute())
    except ValueError:
        shown = dst
    package = str(result.answers.get(PACKAGE_QUESTION) or "app")
    services = _backing_services(result.answers)
    lines = [
        f"Created {result.answers.get(NAME_QUESTION, dst.name)} in {shown}",
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
        # As the project's README starts it (its keep-alive outlasts a proxy's idle timeout).
        f"  uv run uvicorn {package}.main:app --timeout-keep-alive 75 --reload",
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
