"""Record a released template version: ``python -m fastcelery.release 0.2.0``.

Run once per release from a checkout of this repository, then commit what it changed:

1. the release commit of the template (``copier.yml`` + ``template/`` + ``subtemplates/``),
   on top of the previous release (see :mod:`fastcelery.history`);
2. ``src/fastcelery/releases/v<VERSION>.bundle``, holding only what changed since the
   previous release, and one more line in ``src/fastcelery/releases/index.txt``;
3. ``__version__`` in ``src/fastcelery/__init__.py``.

From then on ``fastcelery new`` records ``_commit: v<VERSION>`` and every installed
fastcelery of this version or later updates such projects offline. Tag the commit that
holds these changes ``v<VERSION>`` when publishing it: plain ``copier update`` online finds
versions by these tag names. ``--from-ref REF`` releases the template as it is in commit
REF of this checkout instead of the working tree (how v0.1.0 was recorded).

``--publish-subtemplates DIR`` writes the history of each sub-template (``fastcelery add
task``), one git repository per sub-template with every release's tag, to push to its own
URL (:func:`fastcelery.history.subtemplate_url`): plain ``copier update -a`` of an added task
reads it there.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from packaging.version import InvalidVersion, Version

from fastcelery.errors import FastceleryError, UsageError, message_line
from fastcelery.gitutil import git
from fastcelery.history import (
    INDEX,
    RELEASES_DIR,
    Release,
    derive_history,
    open_history,
    subtemplate_url,
)
from fastcelery.paths import PACKAGE_DIR, SUBTEMPLATES_DIR, WHEEL_TEMPLATE_DIR, template_root
from fastcelery.questions import COPIER_YML, load_config

PROG = "python -m fastcelery.release"
INIT_FILE = PACKAGE_DIR / "__init__.py"
_VERSION_LINE = re.compile(r'^__version__ = "([^"]*)"$', re.MULTILINE)


def release(version: str, bundled_root: Path, releases_dir: Path = RELEASES_DIR) -> Release:
    """Record the template under ``bundled_root`` as release ``version``; return it."""
    try:
        parsed = Version(version)
    except InvalidVersion as exc:
        raise UsageError(f"invalid version {version!r}: expected e.g. 0.2.0") from exc
    with open_history(bundled_root, releases_dir) as history:
        newest = history.newest
        if newest and parsed <= Version(newest.version):
            raise UsageError(f"version {version} is not newer than the last release {newest.tag}")
        if history.released:
            raise UsageError(
                f"nothing to release: the template is release {history.released.tag} already"
            )
        tree = git(history.repo, "rev-parse", f"{history.head}^{{tree}}").stdout.strip()
        recorded = Release(str(parsed), history.head, tree)
        git(history.repo, "tag", recorded.tag, recorded.commit)
        releases_dir.mkdir(parents=True, exist_ok=True)
        exclude = [f"^{newest.commit}"] if newest else []
        bundle = str(releases_dir / recorded.bundle)
        git(history.repo, "bundle", "create", "-q", bundle, f"refs/tags/{recorded.tag}", *exclude)
    with (releases_dir / INDEX).open("a", encoding="utf-8") as index:
        index.write(recorded.line())
    return recorded


def set_package_version(version: str, init_file: Path = INIT_FILE) -> bool:
    """Raise ``__version__`` to ``version``; ``False`` when it is that version or newer already."""
    text = init_file.read_text(encoding="utf-8")
    found = _VERSION_LINE.search(text)
    if found is None:
        raise FastceleryError(f"no __version__ line in {init_file}")
    if Version(found.group(1)) >= Version(version):
        return False
    init_file.write_text(_VERSION_LINE.sub(f'__version__ = "{version}"', text), encoding="utf-8")
    return True


def export_ref(checkout: Path, ref: str, destination: Path) -> Path:
    """The template files of commit ``ref`` of ``checkout``, written under ``destination``."""
    subdir = str(load_config(checkout / COPIER_YML).settings.get("_subdirectory") or "")
    folders = [f for f in (subdir, SUBTEMPLATES_DIR) if f and _has_path(checkout, ref, f)]
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, COPIER_YML, *folders],
        cwd=checkout,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        detail = archive.stderr.decode(errors="replace").strip()
        raise UsageError(f"cannot read the template at {ref}: {detail}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def publish_subtemplates(
    destination: Path, root: Path, releases_dir: Path = RELEASES_DIR
) -> list[Path]:
    """Each sub-template's history as a git repository ``destination/<kind>``."""
    folder = root / SUBTEMPLATES_DIR
    kinds = sorted(p.name for p in folder.iterdir() if (p / COPIER_YML).is_file())
    made = []
    with open_history(root, releases_dir) as history:
        for kind in kinds:
            made.append(destination / kind)
            derive_history(history, kind, made[-1], standalone=True)
    return made


def _has_path(checkout: Path, ref: str, path: str) -> bool:
    found = git(checkout, "cat-file", "-e", f"{ref}:{path}", check=False)
    return found.returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Record the template as a released version (see docs/updating.md).",
    )
    parser.add_argument("version", nargs="?", help="the version to release, e.g. 0.2.0")
    parser.add_argument(
        "--from-ref", metavar="REF", help="release the template of this commit of the checkout"
    )
    parser.add_argument(
        "--publish-subtemplates",
        metavar="DIR",
        type=Path,
        help="write each sub-template's history to DIR/<kind> (a git repository to push)",
    )
    args = parser.parse_args(argv)
    root = template_root()
    if root == WHEEL_TEMPLATE_DIR:
        print(
            "release: error: run this from a checkout of the fastcelery repository", file=sys.stderr
        )
        return 2
    if args.version is None:
        if args.publish_subtemplates is None:
            parser.error("give the VERSION to release, or --publish-subtemplates DIR")
        return _publish(args.publish_subtemplates, root)
    version = str(args.version).removeprefix("v")
    try:
        with tempfile.TemporaryDirectory(prefix="fastcelery-release-") as tmp:
            source = export_ref(root, args.from_ref, Path(tmp)) if args.from_ref else root
            recorded = release(version, source)
        bumped = set_package_version(recorded.version)
    except FastceleryError as exc:
        print(message_line("error", str(exc), PROG), file=sys.stderr)
        return exc.exit_code
    print(f"Recorded template release {recorded.tag} (commit {recorded.commit}).")
    changed = [RELEASES_DIR / recorded.bundle, RELEASES_DIR / INDEX]
    if bumped:
        changed.append(INIT_FILE)
    print("Commit these files:")
    for path in changed:
        print(f"  {path.relative_to(root) if path.is_relative_to(root) else path}")
    print(
        f"Then tag that commit {recorded.tag} when publishing it (plain `copier update` "
        "online finds template versions by these tag names)."
    )
    return _publish(args.publish_subtemplates, root) if args.publish_subtemplates else 0


def _publish(destination: Path, root: Path) -> int:
    for repo in publish_subtemplates(destination, root):
        url = subtemplate_url(repo.name)
        print(f"Wrote the {repo.name} sub-template's history to {repo}: push it to {url}")
        print(f"  git -C {repo} push --mirror {url}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
