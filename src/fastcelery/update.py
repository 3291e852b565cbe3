"""Update a generated project with Copier's three-way merge (``fastcelery update``).

1. Load the project: a clean git tree with an answers file.
2. Plan the source: the URL the project records (a 0.1.0 per-user cache path becomes
   :data:`~fastcelery.history.SOURCE_URL`; ``--source`` chooses another), the version to
   update from and to, and whether git reads them from the history shipped in this
   fastcelery (offline) or from the URL itself.
3. Work in the project, or for ``--pretend`` in a throwaway clone of it: commit the source
   move, render the recorded version for comparison, run Copier's update, and carry the
   user's files along a package rename.
4. Report what Copier does not: edits in files the template deleted or renamed, and
   imports of the project's own modules that the update broke.
5. Then every task added with ``fastcelery add task`` (``.copier-answers.task-*.yml``), in
   turn, the same way from the task sub-template's history: each in a throwaway clone of
   the project's last commit (Copier updates only a clean tree, and the project's update
   has just changed it), its changes then copied into the project. A task's files are its
   own (the sub-template renders new files only), so nothing the project's update changed
   is overwritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastcelery import gitutil
from fastcelery.answers import collect_answers, validate_answers
from fastcelery.errors import FastceleryError, UsageError
from fastcelery.history import (
    SOURCE_URL,
    History,
    copier_environment,
    derive_history,
    import_copier_meanwhile,
    open_history,
    user_redirect_warning,
)
from fastcelery.imports import BrokenImport, Tree, broken_imports
from fastcelery.options import task_config, template_config
from fastcelery.paths import template_root
from fastcelery.project import (
    COMMIT_KEY,
    SRC_KEY,
    Project,
    answers_relpath,
    is_task_answers,
    is_url,
    load_project,
    read_answers,
    rewrite_answers,
    task_answers_files,
)
from fastcelery.questions import PACKAGE_QUESTION, TASK_KIND

CONFLICT_MARKER = "<<<<<<< "
CONFLICT_STYLES = ("inline", "rej")
#: `git status` codes of unmerged paths (Copier records inline conflicts in the index).
UNMERGED = frozenset({"DD", "AU", "UD", "UA", "DU", "AA", "UU"})


@dataclass(frozen=True)
class UpdateRequest:
    path: Path
    #: Answers given by question flags, and raw ``--data KEY=VALUE`` items.
    flags: Mapping[str, Any] = field(default_factory=dict)
    data: Sequence[str] = ()
    interactive: bool = False
    pretend: bool = False
    vcs_ref: str | None = None
    conflict: str = "inline"
    #: Move the project to this template URL (one commit) before updating.
    source: str | None = None
    #: Update as if the project had been rendered from this release.
    from_version: str | None = None
    #: The answers file of the template to update (default: the project's own, and then
    #: every added task's).
    answers_file: str | None = None


@dataclass(frozen=True)
class LostEdit:
    """A file the user had edited that the update deletes (the template deleted or renamed it)."""

    path: str
    #: A commit that holds the user's version: ``git show <commit>:<path>``.
    commit: str
    renamed_to: str | None = None


@dataclass
class UpdateResult:
    path: Path
    old_version: str
    new_version: str
    pretend: bool = False
    #: The commit that moved the project to a portable template source, and its message.
    moved: str | None = None
    changes: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    lost: list[LostEdit] = field(default_factory=list)
    broken: list[BrokenImport] = field(default_factory=list)
    carried: list[tuple[str, str]] = field(default_factory=list)
    #: Files a migration renamed with `git mv` whose edits were merged three-way: (old, new).
    renamed: list[tuple[str, str]] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The answers file of the template this is about.
    answers_file: str = ""
    #: Why this added task was not updated (it records no template version, say).
    skipped: str | None = None
    #: The tasks added to the project, each updated after it.
    added: list[UpdateResult] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        mine = bool(self.conflicts or self.lost or self.broken)
        return mine or any(task.needs_attention for task in self.added)


@dataclass(frozen=True)
class SourcePlan:
    """Where the template comes from and which version the project is updated from."""

    src_path: str
    old_ref: str
    #: Answers-file lines to change (and commit) before updating.
    moves: Mapping[str, str]
    #: (repository, tag) pairs to add to the history: 0.1.0 cache versions still on disk.
    extras: Sequence[tuple[Path, str]]


def update_project(request: UpdateRequest) -> UpdateResult:
    """``fastcelery update``: validate, plan, update (or pretend) the project, then each
    task added to it; report."""
    if request.conflict not in CONFLICT_STYLES:
        raise UsageError(
            f"invalid --conflict {request.conflict!r}: choose one of {', '.join(CONFLICT_STYLES)}"
        )
    project = load_project(request.path, request.answers_file)
    answers = _answers(project, request)
    plan = plan_source(project, request)
    tasks = [] if request.answers_file else task_answers_files(request.path)
    renamed = answers.get(PACKAGE_QUESTION, project.answers.get(PACKAGE_QUESTION))
    if tasks and renamed != project.answers.get(PACKAGE_QUESTION):
        raise UsageError(
            f"the project has added tasks ({', '.join(tasks)}): renaming its package with "
            "them is not supported; keep --package-name, or remove the tasks first"
        )
    import_copier_meanwhile()
    with open_history(template_root(), extras=plan.extras) as history:
        task_history = None
        if tasks or is_task_answers(project.answers_relpath):
            task_history = derive_history(history, TASK_KIND, history.repo.parent / TASK_KIND)
        warnings: list[str] = []
        source = task_history if is_task_answers(project.answers_relpath) else history
        redirects, target = _resolve(project, plan, source or history, request, warnings)
        job = _Job(project, plan, answers, redirects, target, request)
        with _workdir(project.path, request.pretend) as workdir:
            result = _update(workdir, job)
        result.path = request.path
        result.answers_file = project.answers_relpath
        result.warnings[:0] = warnings
        if task_history is not None:
            result.added = [_update_task(request, name, task_history) for name in tasks]
    return result


def _update_task(request: UpdateRequest, relpath: str, history: History) -> UpdateResult:
    """One added task, updated in a throwaway clone of the project's last commit, whose
    changes are then copied into the project (unless --pretend)."""
    task = dataclasses.replace(
        request, flags={}, data=(), source=None, from_version=None, answers_file=relpath
    )
    with _workdir(request.path, pretend=True) as clone:
        try:
            project = load_project(clone, relpath)
        except UsageError as exc:  # e.g. added without git: no version to update from
            return UpdateResult(
                path=request.path, old_version="", new_version="", pretend=request.pretend,
                answers_file=relpath, skipped=str(exc),
            )  # fmt: skip
        answers = _answers(project, task)
        plan = plan_source(project, task)
        warnings: list[str] = []
        redirects, target = _resolve(project, plan, history, task, warnings)
        result = _update(clone, _Job(project, plan, answers, redirects, target, task))
        if not request.pretend:
            copy_changes(clone, request.path, result.changes)
    result.path = request.path
    result.answers_file = relpath
    # The project's update said it already, of the same template.
    result.warnings[:0] = [w for w in warnings if w != history.unreleased_warning()]
    return result


def copy_changes(clone: Path, path: Path, changes: Sequence[tuple[str, str]]) -> None:
    """Bring an update made in a clone into the project at ``path``: its changed and new
    files, its deletions, and the unmerged index entries of its conflicts (so that `git
    status` shows them in the project too)."""
    for _code, name in changes:
        for rel in name.split(" -> "):
            source, target = clone / rel, path / rel
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            elif target.is_file():
                target.unlink()
    clone_top = Path(_git(clone, "rev-parse", "--show-toplevel"))
    top = Path(_git(path, "rev-parse", "--show-toplevel"))
    entries, paths = [], []
    unmerged = _git(clone_top, "ls-files", "-u", "--full-name", "--", _relative(clone, clone_top))
    for line in unmerged.splitlines():
        meta, rel = line.split("\t", 1)
        mode, blob, stage = meta.split()
        content = _run_git(clone_top, "cat-file", "blob", blob)
        stored = _run_git(top, "hash-object", "-w", "--stdin", content=content).decode().strip()
        entries.append(f"{mode} {stored} {stage}\t{rel}\n")
        paths.append(rel)
    if entries:
        removed = "".join(f"0 {'0' * 40}\t{rel}\n" for rel in dict.fromkeys(paths))
        gitutil.git(top, "update-index", "--index-info", input=removed + "".join(entries))


def _relative(path: Path, top: Path) -> str:
    return path.resolve().relative_to(top.resolve()).as_posix() or "."


def _run_git(cwd: Path, *args: str, content: bytes | None = None) -> bytes:
    """``git args`` on bytes (blobs are copied byte for byte)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, input=content, capture_output=True, check=True
    ).stdout


def _answers(project: Project, request: UpdateRequest) -> dict[str, Any]:
    """The changed answers, checked against copier.yml (or the task sub-template's) when the
    template is fastcelery's."""
    task = is_task_answers(project.answers_relpath)
    config = task_config() if task else template_config()
    ours = project.source_kind != "path"
    given = collect_answers(config, request.flags, request.data, allow_unknown=not ours)
    if ours:
        known = {k: v for k, v in project.user_answers.items() if k in config.names}
        parent = read_answers(project.path / answers_relpath()) if task else {}
        context = {"_external_data": {"project": parent}} if task else None
        validate_answers(
            config, {**known, **given}, interactive=request.interactive, extra_context=context
        )
    return given


def plan_source(project: Project, request: UpdateRequest) -> SourcePlan:
    legacy = project.source_kind == "legacy-cache"
    src = request.source or (SOURCE_URL if legacy else project.src_path)
    moves: dict[str, str] = {}
    if src != project.src_path:
        moves[SRC_KEY] = src
    old_ref = project.commit
    if request.from_version:
        old_ref = "v" + request.from_version.removeprefix("v")
        moves[COMMIT_KEY] = old_ref
    extras: list[tuple[Path, str]] = []
    cache = Path(project.src_path).expanduser()
    if legacy and not request.from_version and (cache / ".git").is_dir():
        has_tag = gitutil.git(
            cache, "rev-parse", "-q", "--verify", f"refs/tags/{old_ref}", check=False
        )
        if has_tag.returncode == 0:
            extras.append((cache, old_ref))
    return SourcePlan(src_path=src, old_ref=old_ref, moves=moves, extras=extras)


def _resolve(
    project: Project,
    plan: SourcePlan,
    history: History,
    request: UpdateRequest,
    warnings: list[str],
) -> tuple[dict[str, str], str | None]:
    """Redirects for Copier's git commands and the version to update to."""
    if not is_url(plan.src_path):
        # A local template path (rendered with --template PATH): Copier reads it as it is.
        src = Path(plan.src_path).expanduser()
        if not src.exists():
            raise UsageError(
                f"the template source recorded in {project.answers_relpath} does not exist: "
                f"{plan.src_path}; move the project to a URL with --source URL "
                f"(e.g. {SOURCE_URL})"
            )
        return {}, request.vcs_ref
    if warning := user_redirect_warning(plan.src_path, history.repo):
        warnings.append(warning)  # git reads the user's mirror, not the shipped history
        return {}, request.vcs_ref or history.current_ref
    if history.resolve(plan.old_ref) is None:
        if project.source_kind == "legacy-cache" and not request.from_version:
            raise UsageError(
                f"{project.answers_relpath} records template version {plan.old_ref}, which "
                f"existed only in the per-user cache {project.src_path} of the machine that "
                "rendered the project; run `fastcelery update` there once, or pass "
                f"--from-version {_release_of(plan.old_ref, history)} to update as if the "
                "project had been rendered from that release (its differences then show as "
                "your edits)"
            )
        if request.from_version:
            raise UsageError(
                f"--from-version {plan.old_ref} is not a released template version; choose "
                f"one of {', '.join(history.tags()) or '(no release yet)'}"
            )
        warnings.append(
            f"template version {plan.old_ref} is not in the history shipped with this "
            f"fastcelery ({', '.join(history.tags())}): updating from {plan.src_path} online"
        )
        return {}, request.vcs_ref
    target = request.vcs_ref or history.current_ref
    history.require(target)
    if request.vcs_ref is None and (warning := history.unreleased_warning()):
        warnings.append(warning)
    return {plan.src_path: history.location}, target


def _release_of(version: str, history: History) -> str:
    """The release an unreleased 0.1.0-style version (``v0.1.0.post3``) was built on."""
    base = re.sub(r"\.post\d+$", "", version)
    if base in history.tags():
        return base
    return history.newest.tag if history.newest else "VERSION"


@contextlib.contextmanager
def _workdir(project: Path, pretend: bool) -> Iterator[Path]:
    """The project itself, or for ``--pretend`` the same project in a throwaway clone."""
    if not pretend:
        yield project
        return
    top = Path(gitutil.git(project, "rev-parse", "--show-toplevel").stdout.strip())
    with tempfile.TemporaryDirectory(prefix="fastcelery-pretend-") as tmp:
        # --shared reads the project's objects in place: nothing is written to the project.
        gitutil.git(Path(tmp), "clone", "-q", "--shared", str(top), "clone")
        yield Path(tmp) / "clone" / project.resolve().relative_to(top.resolve())


@dataclass(frozen=True)
class _Job:
    """Everything one update needs, decided before anything is written."""

    project: Project
    plan: SourcePlan
    answers: dict[str, Any]
    redirects: dict[str, str]
    target: str | None
    request: UpdateRequest


def _update(workdir: Path, job: _Job) -> UpdateResult:
    import copier  # noqa: PLC0415 - lazy: keeps --help fast
    from copier.errors import CopierAnswersInterrupt, CopierError  # noqa: PLC0415

    project, plan, request = job.project, job.plan, job.request
    edits_commit = _git(workdir, "rev-parse", "HEAD")
    result = UpdateResult(
        path=workdir, old_version=plan.old_ref, new_version="", pretend=request.pretend
    )
    with (
        tempfile.TemporaryDirectory(prefix="fastcelery-old-") as old,
        copier_environment(job.redirects),
    ):
        old_render = Path(old) / "project"
        parent = answers_relpath()
        if project.answers_relpath != parent and (workdir / parent).is_file():
            # An added template reads the project's answers (its _external_data).
            old_render.mkdir()
            shutil.copy2(workdir / parent, old_render / parent)
        try:
            copier.run_copy(
                src_path=plan.src_path,
                dst_path=old_render,
                data=project.user_answers,
                answers_file=project.answers_relpath,
                vcs_ref=plan.old_ref,
                defaults=True,
                unsafe=True,
                quiet=True,
            )
            if plan.moves:
                result.moved = _move_source(workdir, project, plan)
            copier.run_update(
                dst_path=workdir,
                answers_file=project.answers_relpath,
                data=job.answers,
                vcs_ref=job.target,
                defaults=not request.interactive,
                overwrite=True,
                unsafe=True,
                quiet=request.pretend,
                conflict=request.conflict,  # type: ignore[arg-type]
            )
        except CopierAnswersInterrupt:
            raise
        except (CopierError, ValueError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            if isinstance(exc, ValueError) or "downgrading" in message:
                raise UsageError(message) from exc
            raise FastceleryError(f"update failed: {message}") from exc
        after = read_answers(workdir / project.answers_relpath)
        result.new_version = str(after.get(COMMIT_KEY) or job.target or "?")
        old_package = str(project.answers.get(PACKAGE_QUESTION) or "")
        new_package = str(after.get(PACKAGE_QUESTION) or "")
        if old_package and new_package and old_package != new_package:
            _carry_package(workdir, old_render, old_package, new_package, result)
        result.renamed = _merge_renames(workdir, old_render, edits_commit)
        result.changes = changed_paths(workdir)
        result.conflicts = find_conflicts(workdir, result.changes)
        moved = {old for old, _new in result.renamed}
        changes = [(code, name) for code, name in result.changes if name not in moved]
        result.lost = _lost_edits(workdir, old_render, edits_commit, changes)
        result.broken = broken_imports(
            _head_tree(workdir), _work_tree(workdir), _work_tree(workdir).files
        )
    return result


def _git(cwd: Path, *args: str) -> str:
    return gitutil.git(cwd, *args).stdout.strip()


def _move_source(workdir: Path, project: Project, plan: SourcePlan) -> str:
    """Record the portable source (and ``--from-version``) in one commit; return its summary."""
    rewrite_answers(workdir / project.answers_relpath, plan.moves)
    changes = ", ".join(f"{key} {value}" for key, value in plan.moves.items())
    was = f"was {project.src_path} at {project.commit}"
    message = f"fastcelery update: template source {changes} ({was})"
    gitutil.git(workdir, "add", "--", project.answers_relpath)
    gitutil.git(workdir, "commit", "-q", "--no-verify", "-m", message, identity=True)
    return f"{_git(workdir, 'rev-parse', '--short=12', 'HEAD')} {message}"


def changed_paths(path: Path) -> list[tuple[str, str]]:
    """``git status`` as (code, path) pairs relative to ``path``; renames as ``old -> new``."""
    out = gitutil.git(
        path, "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all",
        "--", ".",
    ).stdout  # fmt: skip
    prefix = _git(path, "rev-parse", "--show-prefix")
    fields = out.split("\0")
    changes: list[tuple[str, str]] = []
    index = 0
    while index < len(fields) and fields[index]:
        code, name = fields[index][:2], fields[index][3:].removeprefix(prefix)
        index += 1
        if "R" in code or "C" in code:
            source = fields[index].removeprefix(prefix)
            index += 1
            name = f"{source} -> {name}"
        changes.append((code, name))
    return changes


def find_conflicts(path: Path, changes: Sequence[tuple[str, str]]) -> list[str]:
    conflicts: list[str] = []
    for code, name in changes:
        rel = name.split(" -> ")[-1]
        if rel.endswith(".rej") or code in UNMERGED:
            conflicts.append(rel)
            continue
        file = path / rel
        if not file.is_file():
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if any(line.startswith(CONFLICT_MARKER) for line in text.splitlines()):
            conflicts.append(rel)
    return conflicts


#: Conflict labels, as Copier writes them (the version the project had, the recorded
#: version of the template, the new one).
MERGE_LABELS = ("before updating", "last update", "after updating")


def _merge_renames(workdir: Path, old_render: Path, commit: str) -> list[tuple[str, str]]:
    """Merge files that a migration renamed with `git mv` three-way.

    Copier sees such a file as added on both sides and leaves one conflict over the whole
    file (its base is empty). The recorded version's render of the old path is the true
    base: merge the user's version (stage 2) and the template's (stage 3) against it.
    """
    stages: dict[str, dict[str, str]] = {}
    for line in _git(workdir, "ls-files", "-u", "--", ".").splitlines():
        meta, path = line.split("\t", 1)
        _mode, blob, stage = meta.split()
        stages.setdefault(path, {})[stage] = blob
    moved = {}
    deleted = _git(
        workdir, "diff", "--name-only", "--relative", "--cached", "--diff-filter=D", commit
    )
    for old in deleted.splitlines():
        mine = _git(workdir, "rev-parse", f"{commit}:./{old}")
        for path, blobs in stages.items():
            if blobs.get("2") == mine and "3" in blobs and (old_render / old).is_file():
                moved[old] = path
    for old, path in moved.items():
        blobs = stages[path]
        with tempfile.TemporaryDirectory(prefix="fastcelery-merge-") as tmp:
            ours, theirs = Path(tmp) / "ours", Path(tmp) / "theirs"
            ours.write_text(_git_blob(workdir, blobs["2"]), encoding="utf-8")
            theirs.write_text(_git_blob(workdir, blobs["3"]), encoding="utf-8")
            labels = [arg for label in MERGE_LABELS for arg in ("-L", label)]
            merged = gitutil.git(
                workdir, "merge-file", "-p", *labels, str(ours), str(old_render / old),
                str(theirs), check=False,
            )  # fmt: skip
        (workdir / path).write_text(merged.stdout, encoding="utf-8")
        if merged.returncode == 0:  # clean: resolve the conflict Copier recorded
            gitutil.git(workdir, "add", "--", path)
    return list(moved.items())


def _git_blob(workdir: Path, blob: str) -> str:
    return gitutil.git(workdir, "cat-file", "blob", blob).stdout


def _blob(workdir: Path, file: Path) -> str:
    return _git(workdir, "hash-object", "--no-filters", "--", str(file))


def _lost_edits(
    workdir: Path, old_render: Path, commit: str, changes: Sequence[tuple[str, str]]
) -> list[LostEdit]:
    """Deleted files whose content in ``commit`` is not what the recorded version rendered."""
    added = [n for c, n in changes if c in ("??", "A ", "AM") and " -> " not in n]
    lost = []
    for code, name in changes:
        if "D" not in code or " -> " in name:
            continue
        mine = _git(workdir, "rev-parse", f"{commit}:./{name}")
        rendered = old_render / name
        if rendered.is_file() and _blob(workdir, rendered) == mine:
            continue  # untouched by the user: deleting it loses nothing
        lost.append(LostEdit(name, commit[:12], _renamed_to(name, rendered, added, workdir)))
    return lost


def _renamed_to(name: str, rendered: Path, added: Sequence[str], workdir: Path) -> str | None:
    """The added file most like the deleted one, if any is alike (a rename by the template)."""
    if not rendered.is_file():
        return None
    before = rendered.read_text(encoding="utf-8", errors="replace")
    best, score = None, 0.6
    for candidate in added:
        text = (workdir / candidate).read_text(encoding="utf-8", errors="replace")
        ratio = difflib.SequenceMatcher(None, before, text).ratio()
        if Path(candidate).name == Path(name).name:
            ratio += 0.2
        if ratio > score:
            best, score = candidate, ratio
    return best


def _carry_package(
    workdir: Path, old_render: Path, old: str, new: str, result: UpdateResult
) -> None:
    """Move the user's own files of package ``old`` into ``new``, and fix imports of ``old``."""
    if not (workdir / new).is_dir():
        return
    tracked = _git(workdir, "ls-files", "--", old).splitlines()
    for rel in tracked:
        source, rendered = workdir / rel, old_render / rel
        if not source.is_file() or rendered.exists():
            continue  # gone, or the template's own file (its fate is Copier's)
        destination = new + rel[len(old) :]
        if (workdir / destination).exists():
            result.warnings.append(
                f"{rel} stays where it is: {destination} exists (package renamed {old} → {new})"
            )
            continue
        (workdir / destination).parent.mkdir(parents=True, exist_ok=True)
        gitutil.git(workdir, "mv", "--", rel, destination)
        result.carried.append((rel, destination))
        for parent in source.parents:  # git mv leaves the emptied directories behind
            if parent == workdir or any(parent.iterdir()):
                break
            parent.rmdir()
    pattern = re.compile(rf"^(\s*(?:from|import)\s+){re.escape(old)}(?=[.\s]|$)", re.MULTILINE)
    for rel in _work_tree(workdir).files:
        if not rel.endswith(".py"):
            continue
        text = (workdir / rel).read_text(encoding="utf-8")
        fixed = pattern.sub(lambda m: m.group(1) + new, text)
        if fixed != text:
            (workdir / rel).write_text(fixed, encoding="utf-8")
            result.rewritten.append(rel)


def _work_tree(workdir: Path) -> Tree:
    listed = _git(workdir, "ls-files", "-co", "--exclude-standard", "--", ".").splitlines()
    files = frozenset(f for f in listed if (workdir / f).is_file())

    def read(rel: str) -> str | None:
        try:
            return (workdir / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    return Tree(files=files, read=read)


def _head_tree(workdir: Path) -> Tree:
    files = frozenset(_git(workdir, "ls-tree", "-r", "--name-only", "HEAD").splitlines())

    def read(rel: str) -> str | None:
        shown = gitutil.git(workdir, "show", f"HEAD:./{rel}", check=False)
        return shown.stdout if shown.returncode == 0 else None

    return Tree(files=files, read=read)


def report(result: UpdateResult) -> str:
    """What happened (or, for ``--pretend``, would happen), for people: the project, then
    each added task."""
    would = result.pretend
    versions = _versions(result)
    if would:
        lines = [f"Dry run (--pretend): {result.path} would be {versions}; nothing was written."]
    else:
        lines = [f"{result.path}: {versions}."]
    if result.moved:
        verb = "would move" if would else "moved"
        lines.append(f"First, {verb} the project to a portable template source: {result.moved}")
    lines += _changes(result, "Nothing changed: the project is up to date.")
    for task in result.added:
        lines += ["", *_task_report(task)]
    if result.changes or any(task.changes for task in result.added):
        if not result.needs_attention:
            lines.append("No conflicts. Review with `git diff`, run the tests, then commit.")
        elif not would:
            lines.append("Resolve the above, run the tests, then commit.")
    return "\n".join(lines)


def _task_report(task: UpdateResult) -> list[str]:
    name = task.answers_file.removeprefix(".copier-answers.task-").removesuffix(".yml")
    title = f"Task {name} ({task.answers_file})"
    if task.skipped:
        return [f"{title}: not updated: {task.skipped}"]
    lines = [f"{title}: {'would be ' if task.pretend else ''}{_versions(task)}."]
    return lines + _changes(task, "Nothing changed: the task is up to date.")


def _versions(result: UpdateResult) -> str:
    if result.old_version == result.new_version:
        return f"rendered again at {result.new_version}, its template version already"
    return f"updated from {result.old_version} to {result.new_version}"


def _changes(result: UpdateResult, unchanged: str) -> list[str]:
    """The changed files of one template's update, and what needs the user."""
    if not result.changes:
        return [unchanged]
    would = result.pretend
    lines = [("Files that would change" if would else "Changed files") + " (git status):"]
    lines += [f"  {code} {name}" for code, name in result.changes]
    for old, new in result.carried:
        lines.append(f"Carried along the package rename: {old} -> {new}")
    for old, new in result.renamed:
        lines.append(f"Renamed by a migration, your edits merged three-way: {old} -> {new}")
    if result.rewritten:
        lines.append("Imports of the old package rewritten in: " + ", ".join(result.rewritten))
    return lines + _attention(result)


def _attention(result: UpdateResult) -> list[str]:
    """The report's sections about what needs the user."""
    lines = []
    if result.conflicts:
        lines.append("Conflicts to resolve (conflict markers or .rej files), then commit:")
        lines += [f"  {name}" for name in result.conflicts]
    if result.lost:
        lines.append(
            "Edited files the template deleted or renamed (your edits are not in the update; "
            "`git show COMMIT:PATH` shows them):"
        )
        for lost in result.lost:
            renamed = f" (renamed to {lost.renamed_to}?)" if lost.renamed_to else ""
            lines.append(f"  {lost.path}{renamed}: git show {lost.commit}:{lost.path}")
    if result.broken:
        lines.append("Imports the update broke (the module or name no longer exists):")
        lines += [f"  {b.file}:{b.line}: {b.statement}  ({b.missing})" for b in result.broken]
    return lines
