"""The template's version history, shipped inside the package (see docs/updating.md).

A project records where its template comes from and at which version in
``.copier-answers.yml``: ``_src_path`` is a git URL (:data:`SOURCE_URL` unless the user
chose another) and ``_commit`` a release tag such as ``v0.2.0``. Both mean the same on
every machine. To resolve them without network access, the package ships the template's
released history as git bundles in ``releases/``: one small bundle per release, holding
only what changed since the previous one, and ``index.txt`` naming each release's commit
and tree. :func:`open_history` unpacks them into a temporary git repository, and
:func:`copier_environment` points the recorded URL at it for every git command Copier
runs (git's ``url.<base>.insteadOf``, set for this process only).

A release commit holds only ``copier.yml``, the template subdirectory and the
sub-templates (``subtemplates/``), is made with a fixed identity, date and message, and its
parent is the previous release. So the commit of a template tree is the same on every
machine: an unreleased template (an edited checkout) renders from the commit that releasing
it would make, and its projects become updatable everywhere once exactly that template is
released.

Sub-templates (``fastcelery add task``) are released with the project's template, but Copier
reads a template only at the root of a repository. So each has a history derived from the
same releases (:func:`derive_history`): one commit per release holding that release's
``subtemplates/<kind>`` at its root (an empty tree before the sub-template existed), tagged
like the release, made as deterministically as the releases themselves. Its URL is the
project template's with ``-<kind>`` (:func:`subtemplate_url`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import os
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastcelery.errors import FastceleryError, UsageError
from fastcelery.gitutil import git
from fastcelery.paths import PACKAGE_DIR, SUBTEMPLATES_DIR
from fastcelery.questions import COPIER_YML, load_config

#: Where projects say their template comes from, unless the user chose a fork or mirror.
SOURCE_URL = "https://github.com/fastcelery/fastcelery.git"
#: The released history: ``<tag>.bundle`` files and their index.
RELEASES_DIR = PACKAGE_DIR / "releases"
INDEX = "index.txt"
#: Fixed commit metadata, so a template tree on top of a release is one commit everywhere.
COMMIT_MESSAGE = "fastcelery template"
_COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "fastcelery",
    "GIT_AUTHOR_EMAIL": "fastcelery@localhost",
    "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "fastcelery",
    "GIT_COMMITTER_EMAIL": "fastcelery@localhost",
    "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+0000",
}
#: Never part of a template version (caches a test or an editor leaves behind).
IGNORED = ("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".venv")
#: The branch of the temporary repository that holds the bundled template's commit.
BRANCH = "main"


@dataclass(frozen=True)
class Release:
    """One line of ``releases/index.txt``: a released template version."""

    version: str
    commit: str
    tree: str

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def bundle(self) -> str:
        return f"{self.tag}.bundle"

    def line(self) -> str:
        return f"{self.version} {self.commit} {self.tree}\n"


def read_releases(releases_dir: Path = RELEASES_DIR) -> tuple[Release, ...]:
    """The released versions, oldest first (the index is append-only)."""
    index = releases_dir / INDEX
    if not index.is_file():
        return ()
    releases = []
    for line in index.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            version, commit, tree = fields
            releases.append(Release(version, commit, tree))
    return tuple(releases)


def subtemplate_url(kind: str, project_url: str = SOURCE_URL) -> str:
    """Where the history of the sub-template ``kind`` is published: ``…/fastcelery-task.git``."""
    return f"{project_url.removesuffix('.git')}-{kind}.git"


def template_files(root: Path) -> list[str]:
    """What a template version holds: ``copier.yml``, its subdirectory and the sub-templates,
    minus caches."""
    files = [COPIER_YML]
    subdir = str(load_config(root / COPIER_YML).settings.get("_subdirectory") or "")
    for folder in (subdir, SUBTEMPLATES_DIR) if subdir else (SUBTEMPLATES_DIR,):
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root)
            if any(fnmatch.fnmatch(part, p) for part in rel.parts for p in IGNORED):
                continue
            if path.is_symlink() or path.is_file():
                files.append(rel.as_posix())
    return files


def write_tree(repo: Path, root: Path) -> str:
    """Store the template files under ``root`` in ``repo``; return their git tree.

    Blobs are hashed without filters (no line-ending or attribute conversions) and modes
    come from the files, so the tree depends on the content only.
    """
    files = template_files(root)
    regular = [f for f in files if not (root / f).is_symlink()]
    paths = "".join(f"{root / f}\n" for f in regular)
    blobs = git(repo, "hash-object", "-w", "--no-filters", "--stdin-paths", input=paths)
    entries = []
    for rel, blob in zip(regular, blobs.stdout.split(), strict=True):
        executable = (root / rel).stat().st_mode & stat.S_IXUSR
        entries.append(f"{'100755' if executable else '100644'} {blob}\t{rel}\n")
    for rel in files:
        if (root / rel).is_symlink():
            target = os.readlink(root / rel)
            blob = git(repo, "hash-object", "-w", "--stdin", input=target).stdout.strip()
            entries.append(f"120000 {blob}\t{rel}\n")
    git(repo, "read-tree", "--empty")
    git(repo, "update-index", "--index-info", input="".join(entries))
    return git(repo, "write-tree").stdout.strip()


def commit_tree(repo: Path, tree: str, parent: str | None) -> str:
    """The template commit of ``tree`` on top of ``parent``: the same on every machine."""
    args = ["-c", "i18n.commitEncoding=UTF-8", "commit-tree", tree, "--no-gpg-sign"]
    args += ["-m", COMMIT_MESSAGE] + (["-p", parent] if parent else [])
    return git(repo, *args, env=_COMMIT_ENV).stdout.strip()


@dataclass(frozen=True)
class History:
    """A temporary git repository with every released template version and the bundled one."""

    repo: Path
    releases: tuple[Release, ...]
    #: The commit of the template this fastcelery carries (released or not).
    head: str
    #: The release the bundled template is, or ``None`` when it is unreleased.
    released: Release | None

    @property
    def newest(self) -> Release | None:
        return self.releases[-1] if self.releases else None

    @property
    def current_ref(self) -> str:
        """What a render records for the bundled template: its tag, else its commit."""
        return self.released.tag if self.released else self.head

    def describe(self) -> str:
        if self.released:
            return self.released.tag
        base = f"changed since {self.newest.tag}" if self.newest else "no release yet"
        return f"unreleased commit {self.head[:12]}, {base}"

    def unreleased_warning(self) -> str | None:
        """Why a render or update to the bundled template is not portable yet, if it is not."""
        if self.released:
            return None
        return (
            f"this fastcelery's template is not a released version ({self.describe()}): the "
            "project records that commit, which only a fastcelery carrying this same template "
            "can resolve until exactly this template is released "
            "(`python -m fastcelery.release VERSION`, see docs/updating.md)"
        )

    def resolve(self, ref: str) -> str | None:
        """The commit of ``ref`` (tag, commit, ``git describe`` output), if the history has it."""
        found = git(self.repo, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
        return found.stdout.strip() if found.returncode == 0 else None

    def require(self, ref: str) -> None:
        """Refuses (exit 2) a ``--vcs-ref`` this history does not hold."""
        if self.resolve(ref) is None:
            raise UsageError(
                f"--vcs-ref {ref!r} is not a template version of this fastcelery; "
                f"choose one of {', '.join(self.tags()) or '(no release yet)'}"
            )

    def tags(self) -> list[str]:
        return [release.tag for release in self.releases]

    @property
    def location(self) -> str:
        """Where git reads this history (the target of a redirect)."""
        return self.repo.as_uri()


def build_history(
    repo: Path,
    bundled_root: Path,
    releases_dir: Path = RELEASES_DIR,
    extras: Sequence[tuple[Path, str]] = (),
) -> History:
    """Make ``repo``: the released tags, ``extras`` (repository, tag) and the bundled template."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q")
    releases = read_releases(releases_dir)
    for release in releases:
        ref = f"refs/tags/{release.tag}"
        git(repo, "fetch", "-q", str(releases_dir / release.bundle), f"{ref}:{ref}")
        got = git(repo, "rev-parse", f"{ref}^{{commit}}").stdout.strip()
        if got != release.commit:
            raise FastceleryError(
                f"{releases_dir / release.bundle} holds commit {got}, but {INDEX} says "
                f"{release.commit}: the installed fastcelery is damaged; reinstall it"
            )
    for source, tag in extras:
        git(repo, "fetch", "-q", "--no-tags", str(source), f"refs/tags/{tag}:refs/tags/{tag}")
    tree = write_tree(repo, bundled_root)
    released = next((r for r in reversed(releases) if r.tree == tree), None)
    if released:
        head = released.commit
    else:
        head = commit_tree(repo, tree, releases[-1].commit if releases else None)
    git(repo, "update-ref", f"refs/heads/{BRANCH}", head)
    git(repo, "symbolic-ref", "HEAD", f"refs/heads/{BRANCH}")
    return History(repo=repo, releases=releases, head=head, released=released)


def derive_history(main: History, kind: str, repo: Path, *, standalone: bool = False) -> History:
    """The history of the sub-template ``kind`` in ``repo``, derived from ``main``'s releases.

    Each release (and the bundled template, when unreleased) becomes one commit holding its
    ``subtemplates/<kind>`` at the root, with the release's tag. ``standalone``: copy the
    objects into ``repo`` (to publish it), rather than reading them from ``main``'s.
    """
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q")
    alternates = repo / ".git" / "objects" / "info" / "alternates"
    alternates.write_text(f"{main.repo / '.git' / 'objects'}\n", encoding="utf-8")
    empty = git(repo, "hash-object", "-t", "tree", "-w", "--stdin", input="").stdout.strip()
    folder = f"{SUBTEMPLATES_DIR}/{kind}"

    def derive(commit: str, parent: str | None) -> Release:
        found = git(repo, "rev-parse", "-q", "--verify", f"{commit}:{folder}", check=False)
        tree = found.stdout.strip() if found.returncode == 0 else empty
        return Release("", commit_tree(repo, tree, parent), tree)

    releases: list[Release] = []
    released: Release | None = None
    for release in main.releases:
        made = derive(release.commit, releases[-1].commit if releases else None)
        releases.append(Release(release.version, made.commit, made.tree))
        git(repo, "update-ref", f"refs/tags/{release.tag}", made.commit)
        if main.released == release:
            released = releases[-1]
    if released:
        head = released.commit
    else:
        head = derive(main.head, releases[-1].commit if releases else None).commit
    git(repo, "update-ref", f"refs/heads/{BRANCH}", head)
    git(repo, "symbolic-ref", "HEAD", f"refs/heads/{BRANCH}")
    if standalone:
        git(repo, "repack", "-a", "-d", "-q")
        alternates.unlink()
    return History(repo=repo, releases=tuple(releases), head=head, released=released)


@contextlib.contextmanager
def open_history(
    bundled_root: Path,
    releases_dir: Path = RELEASES_DIR,
    extras: Sequence[tuple[Path, str]] = (),
) -> Iterator[History]:
    """:func:`build_history` in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="fastcelery-history-") as tmp:
        yield build_history(Path(tmp) / "template", bundled_root, releases_dir, extras)


def import_copier_meanwhile() -> None:
    """Starts importing Copier on a thread, for a command that opens the history and then
    renders. The import is about 0.3 s of CPU; unpacking the history is about 0.1 s spent
    waiting for git processes, which run on another core meanwhile. The later
    ``import copier`` waits for this one to finish. Not a daemon thread: the interpreter
    never exits in the middle of an import."""
    threading.Thread(target=_import_copier, name="import-copier").start()


def _import_copier() -> None:
    with contextlib.suppress(Exception):  # a broken install: the render's own import says so
        importlib.import_module("copier")


def git_config_env(
    settings: Sequence[tuple[str, str]], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Git configuration for child git processes, after any the caller's environment sets."""
    start = int((os.environ if environ is None else environ).get("GIT_CONFIG_COUNT") or 0)
    env = {"GIT_CONFIG_COUNT": str(start + len(settings))}
    for index, (key, value) in enumerate(settings, start):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def redirect_settings(redirects: Mapping[str, str]) -> list[tuple[str, str]]:
    """``url.<where>.insteadOf <url>`` for each redirect, and full commit names."""
    settings = [(f"url.{where}.insteadOf", url) for url, where in redirects.items()]
    # `_commit` is `git describe` output: with full hashes it stays unambiguous for years.
    settings.append(("core.abbrev", "40"))
    return settings


def user_redirect_warning(url: str, cwd: Path) -> str | None:
    """A warning when the user's git configuration maps exactly ``url`` elsewhere.

    Of equally long ``insteadOf`` matches git uses the first it reads, and per-process
    settings come last: such a rule wins over fastcelery's, so git reads the template there.
    """
    rules = git(cwd, "config", "--get-regexp", r"^url\..*\.insteadof$", check=False).stdout
    for line in rules.splitlines():
        key, _, value = line.partition(" ")
        if value.strip() == url:
            base = key[len("url.") : -len(".insteadof")]
            return (
                f"your git configuration maps {url} to {base}: the template is read from "
                "there, not from the history this fastcelery ships; map a shorter prefix "
                "(e.g. https://github.com/fastcelery/) to keep fastcelery offline"
            )
    return None


@contextlib.contextmanager
def copier_environment(redirects: Mapping[str, str]) -> Iterator[None]:
    """Run Copier with redirects (recorded URL → where git reads it) and a throwaway cache.

    The throwaway cache keeps fastcelery from writing anything outside the project (Copier
    would otherwise keep a mirror of the redirected URL in the user's cache).
    """
    with tempfile.TemporaryDirectory(prefix="fastcelery-copier-") as cache:
        env = {**git_config_env(redirect_settings(redirects)), "COPIER_CACHE_DIR": cache}
        with patched_environ(env):
            yield


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for this process and for Copier's git commands.

    Copier runs git through plumbum, whose environment is a copy of ``os.environ`` taken
    when plumbum was imported: both must be set.
    """
    from plumbum import local  # noqa: PLC0415 - Copier's dependency, imported with it

    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        with local.env(**values):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
