"""The versioned template source that renders record and ``copier update`` reads.

An installed fastcelery has no network access, yet ``copier update`` needs the
template as a git repository with a tag for the version a project was rendered
from and one for the version to update to. So the CLI keeps a local git
repository of the template versions in the user's cache directory:

* location: ``$FASTCELERY_TEMPLATE_CACHE``, else ``$XDG_CACHE_HOME/fastcelery/template``,
  else ``~/.cache/fastcelery/template``;
* on every ``new``/``update`` the bundled template (``copier.yml`` + ``template/``
  shipped in the wheel, or the repository root of a source checkout) is committed
  there and tagged ``v<__version__>``; if that tag already exists with different
  content (a development checkout edited under the same version), the content is
  committed again and tagged ``v<version>.post<N>`` so versions only go up;
* projects are rendered with ``vcs_ref`` set to that tag, so ``.copier-answers.yml``
  records ``_src_path`` (this repository) and ``_commit`` (the tag): plain
  ``copier update`` works too.

See docs/updating.md.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastcelery import __version__
from fastcelery.gitutil import git
from fastcelery.questions import COPIER_YML, load_config

CACHE_ENV = "FASTCELERY_TEMPLATE_CACHE"
_IGNORED = ("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".venv")
_IGNORE = shutil.ignore_patterns(*_IGNORED)
# In the cache's .git: one "<fingerprint> <tag>" line per bundle content already committed,
# so a `new` with an unchanged bundle skips the copy and the git commands (most of the
# CLI's own cost on top of Copier's render).
_FINGERPRINTS = "fastcelery-fingerprints"


@dataclass(frozen=True)
class TemplateSource:
    """Where Copier reads the template from, and at which git ref (``None``: Copier decides)."""

    src_path: str
    vcs_ref: str | None


def cache_repo_path() -> Path:
    if env := os.environ.get(CACHE_ENV):
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return (Path(base).expanduser() / "fastcelery" / "template").resolve()


@contextlib.contextmanager
def _locked(repo: Path) -> Iterator[None]:
    """Serialise concurrent fastcelery processes working on the same cache repository."""
    repo.parent.mkdir(parents=True, exist_ok=True)
    lock_path = repo.parent / f".{repo.name}.lock"
    with lock_path.open("a") as handle:
        try:
            import fcntl  # noqa: PLC0415 - POSIX only
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _subdirectory(bundled_root: Path) -> str:
    """copier.yml's `_subdirectory`: where the template's files are ("" for the root)."""
    return str(load_config(bundled_root / COPIER_YML).settings.get("_subdirectory") or "")


def _copy_bundle(bundled_root: Path, repo: Path) -> None:
    """Make the work tree of ``repo`` exactly ``copier.yml`` + the template subdirectory."""
    for child in repo.iterdir():
        if child.name == ".git":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    shutil.copy2(bundled_root / COPIER_YML, repo / COPIER_YML)
    if subdir := _subdirectory(bundled_root):
        shutil.copytree(bundled_root / subdir, repo / subdir, ignore=_IGNORE, symlinks=True)


def _bundle_files(bundled_root: Path) -> list[Path]:
    """The files `_copy_bundle` copies, in a stable order."""
    files = [bundled_root / COPIER_YML]
    if subdir := _subdirectory(bundled_root):
        for path in sorted((bundled_root / subdir).rglob("*")):
            parts = path.relative_to(bundled_root).parts
            ignored = any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in _IGNORED)
            if not ignored and (path.is_file() or path.is_symlink()):
                files.append(path)
    return files


def bundle_fingerprint(bundled_root: Path, version: str) -> str:
    """Identifies the bundle's content under this version (a new version gets its own tag)."""
    digest = hashlib.sha256(version.encode() + b"\0")
    for path in _bundle_files(bundled_root):
        digest.update(path.relative_to(bundled_root).as_posix().encode() + b"\0")
        content = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        digest.update(hashlib.sha256(content).digest())
        digest.update(b"\1" if os.access(path, os.X_OK) else b"\0")
    return digest.hexdigest()


def _recorded_tag(repo: Path, fingerprint: str) -> str | None:
    """The tag already holding this bundle content, if the record says so and the tag exists."""
    record = repo / ".git" / _FINGERPRINTS
    if not record.is_file():
        return None
    for line in record.read_text(encoding="utf-8").splitlines():
        known, _, tag = line.partition(" ")
        if known == fingerprint and tag:
            exists = git(repo, "rev-parse", "-q", "--verify", f"refs/tags/{tag}", check=False)
            return tag if exists.returncode == 0 else None
    return None


def _record_tag(repo: Path, fingerprint: str, tag: str) -> None:
    with (repo / ".git" / _FINGERPRINTS).open("a", encoding="utf-8") as record:
        record.write(f"{fingerprint} {tag}\n")


def _tags(repo: Path) -> list[str]:
    out = git(repo, "tag", "--list", "v*").stdout
    return [t for t in out.split() if t]


def _tree_of(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", f"{ref}^{{tree}}").stdout.strip()


def ensure_version(bundled_root: Path, version: str = __version__, repo: Path | None = None) -> str:
    """Commit the bundled template into the cache repository; return the tag of its content."""
    repo = repo or cache_repo_path()
    fingerprint = bundle_fingerprint(bundled_root, version)
    with _locked(repo):
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True, exist_ok=True)
            git(repo, "init", "-q")
        elif recorded := _recorded_tag(repo, fingerprint):
            return recorded
        tag = _commit_bundle(bundled_root, version, repo)
        _record_tag(repo, fingerprint, tag)
        return tag


def _commit_bundle(bundled_root: Path, version: str, repo: Path) -> str:
    """Copy the bundle into the work tree; return the tag that holds it, tagging if new."""
    _copy_bundle(bundled_root, repo)
    git(repo, "add", "-A")
    tree = git(repo, "write-tree").stdout.strip()
    base = f"v{version}"
    post = re.compile(rf"^{re.escape(base)}\.post(\d+)$")
    ours = [t for t in _tags(repo) if t == base or post.match(t)]
    # Newest first: the exact tag, then .postN by N descending.
    ours.sort(key=lambda t: int(m.group(1)) if (m := post.match(t)) else 0, reverse=True)
    for tag in ours:
        if _tree_of(repo, tag) == tree:
            git(repo, "checkout", "-q", "--detach", tag)
            return tag
    if base not in ours:
        tag = base
    else:
        numbers = [int(m.group(1)) for t in ours if (m := post.match(t))]
        tag = f"{base}.post{max(numbers, default=0) + 1}"
    git(
        repo,
        "commit",
        "-q",
        "--no-verify",
        "--allow-empty",
        "-m",
        f"fastcelery template {tag}",
        identity=True,
    )
    git(repo, "tag", tag)
    return tag


def resolve(template: str | None, vcs_ref: str | None, bundled_root: Path) -> TemplateSource:
    """The source to render from: ``--template`` as given, else the versioned cache repository."""
    if template:
        path = Path(template).expanduser()
        src = str(path.resolve()) if path.exists() else template
        return TemplateSource(src_path=src, vcs_ref=vcs_ref)
    repo = cache_repo_path()
    tag = ensure_version(bundled_root, repo=repo)
    return TemplateSource(src_path=str(repo), vcs_ref=vcs_ref or tag)
