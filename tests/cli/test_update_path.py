"""An update path that works on every machine: portable source, offline history, releases.

Real git repositories in temporary folders, the real ``fastcelery`` in subprocesses, one
HOME and cache per user, and no network (see updatekit.Machine).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fastcelery.errors import UsageError
from fastcelery.history import SOURCE_URL, open_history, read_releases
from fastcelery.release import release

from .clihelpers import REPO_ROOT, assert_one_error_line
from .updatekit import (
    Machine,
    answers_of,
    install_version,
    mirror_config,
    publish_mirror,
    write,
)


def _version_file(text: str) -> Callable[[Path], None]:
    return lambda template: write(template, {"VERSION.txt": text})


def test_shipped_history_is_the_released_template(tmp_path: Path) -> None:
    """v0.1.0 is the template of commit de99543 (its git tree), and builds are reproducible."""
    [first, *_] = read_releases()
    assert (first.version, first.tree) == ("0.1.0", "4b07a5c3b514c4fcc51f687314e138e6802a03a6")
    with open_history(REPO_ROOT) as one, open_history(REPO_ROOT) as two:
        assert one.head == two.head  # the bundled template's commit is the same everywhere
        assert one.resolve(first.tag) == first.commit


def test_a_teammate_and_ci_update_a_project_offline(tmp_path: Path) -> None:
    alice, bob = Machine(tmp_path / "alice"), Machine(tmp_path / "bob")
    ci = Machine(tmp_path / "ci", ci=True)
    made = alice.fastcelery("new", "svc", "--defaults", cwd=alice.home)
    assert made.exit_code == 0, made.stderr
    project = alice.home / "svc"
    assert answers_of(project)["_src_path"] == SOURCE_URL
    write(project, {"NOTES.md": "alice's notes\n"})
    alice.git(project, "add", "-A")
    alice.git(project, "commit", "-qm", "notes")
    team = tmp_path / "team.git"
    alice.git(tmp_path, "clone", "-q", "--bare", str(project), str(team))

    bob.git(bob.home, "clone", "-q", str(team), "svc")
    mine = bob.home / "svc"
    updated = bob.fastcelery("update", "--broker", "rabbitmq", cwd=mine)
    assert updated.exit_code == 0, updated.stdout + updated.stderr
    assert answers_of(mine)["broker"] == "rabbitmq"
    assert (mine / "NOTES.md").read_text() == "alice's notes\n"
    assert not bob.cache.exists()  # nothing kept per user

    ci.git(ci.home, "clone", "-q", str(team), "svc")
    checked = ci.fastcelery("update", "--pretend", cwd=ci.home / "svc")
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    assert "Nothing changed" in checked.stdout


def test_plain_copier_update_through_a_mirror_named_in_git_config(tmp_path: Path) -> None:
    """Where the recorded URL resolves (here: a team mirror via insteadOf), plain Copier works."""
    newer = install_version(tmp_path / "newer", "99.0.0", _version_file("99\n"))
    mirror = publish_mirror(tmp_path / "mirror", newer)
    alice = Machine(tmp_path / "alice")
    made = alice.fastcelery("new", "svc", "--defaults", "--vcs-ref", "v0.1.0", cwd=alice.home)
    assert made.exit_code == 0, made.stderr
    project = alice.home / "svc"

    copier = [str(Path(sys.executable).parent / "copier"), "update", "--defaults", "--trust"]
    offline = Machine(tmp_path / "no-mirror").run(copier, project)
    assert offline.exit_code != 0  # the URL really is unreachable without the mirror
    bob = Machine(tmp_path / "bob", git_config=mirror_config(mirror))
    updated = bob.run(copier, project)
    assert updated.exit_code == 0, updated.stderr
    assert (project / "VERSION.txt").read_text() == "99\n"
    assert answers_of(project)["_commit"] == "v99.0.0"
    # A rule for the very same URL wins over fastcelery's own (git keeps the first of equal
    # matches): fastcelery then reads the mirror, and says so.
    made = bob.fastcelery("new", "svc", "--defaults", "--vcs-ref", "v99.0.0", cwd=bob.home)
    assert made.exit_code == 0, made.stderr
    assert f"your git configuration maps {SOURCE_URL} to {mirror.as_uri()}" in made.stderr
    assert (bob.home / "svc" / "VERSION.txt").read_text() == "99\n"  # only the mirror has it


def test_version_2_and_version_3_update_a_version_1_project(tmp_path: Path) -> None:
    """Installed fastcelery 2 updates a 1 project with no cache; 3 skips 2."""
    v1 = install_version(tmp_path / "v1", "1.0.0", _version_file("one\n"))

    def two(template: Path) -> None:
        write(template, {"VERSION.txt": "two\n", "ADDED_IN_2.txt": "2\n"})

    v2 = install_version(tmp_path / "v2", "2.0.0", two, base=v1)
    v3 = install_version(tmp_path / "v3", "3.0.0", _version_file("three\n"), base=v2)
    alice = Machine(tmp_path / "alice")
    for name in ("p2", "p3"):
        made = alice.fastcelery("new", name, "--defaults", cwd=alice.home, installed=v1)
        assert made.exit_code == 0, made.stderr
        assert answers_of(alice.home / name)["_commit"] == "v1.0.0"
        write(alice.home / name, {"MINE.txt": "mine\n"})
        alice.git(alice.home / name, "add", "-A")
        alice.git(alice.home / name, "commit", "-qm", "mine")

    for name, installed, version, text in (
        ("p2", v2, "v2.0.0", "two"),
        ("p3", v3, "v3.0.0", "three"),
    ):
        machine = Machine(tmp_path / f"user-{name}")  # a fresh home: no cache of any kind
        project = alice.home / name
        updated = machine.fastcelery("update", cwd=project, installed=installed)
        assert updated.exit_code == 0, updated.stdout + updated.stderr
        assert f"from v1.0.0 to {version}" in updated.stdout
        assert answers_of(project)["_commit"] == version
        assert (project / "VERSION.txt").read_text() == f"{text}\n"
        assert (project / "ADDED_IN_2.txt").read_text() == "2\n"
        assert (project / "MINE.txt").read_text() == "mine\n"


def test_unreleased_render_warns_and_becomes_portable_when_released(tmp_path: Path) -> None:
    """The release step is one command; a project rendered just before it needs nothing after."""
    dev = install_version(tmp_path / "dev", "1.0.0", _version_file("one\n"))
    write(dev / "template", {"VERSION.txt": "two\n"})  # edited after the 1.0.0 release
    alice = Machine(tmp_path / "alice")
    made = alice.fastcelery("new", "early", "--defaults", cwd=alice.home, installed=dev)
    assert made.exit_code == 0, made.stderr
    assert "not a released version" in made.stderr
    assert "python -m fastcelery.release VERSION" in made.stderr
    early = answers_of(alice.home / "early")["_commit"]
    assert early.startswith("v1.0.0-1-g")

    released = alice.run(
        [sys.executable, "-m", "fastcelery.release", "2.0.0"], dev, PYTHONPATH=str(dev / "src")
    )
    assert released.exit_code == 0, released.stderr
    assert "Recorded template release v2.0.0" in released.stdout
    assert '__version__ = "2.0.0"' in (dev / "src" / "fastcelery" / "__init__.py").read_text()
    [*_, newest] = read_releases(dev / "src" / "fastcelery" / "releases")
    assert early.endswith(newest.commit)  # the early render's commit is now release 2.0.0

    made = alice.fastcelery("new", "late", "--defaults", cwd=alice.home, installed=dev)
    assert made.exit_code == 0, made.stderr
    assert "not a released version" not in made.stderr
    assert answers_of(alice.home / "late")["_commit"] == "v2.0.0"
    bob = Machine(tmp_path / "bob")
    updated = bob.fastcelery("update", cwd=alice.home / "early", installed=dev)
    assert updated.exit_code == 0, updated.stdout + updated.stderr
    assert answers_of(alice.home / "early")["_commit"] == "v2.0.0"


def test_release_refusals(tmp_path: Path) -> None:
    dev = install_version(tmp_path / "dev", "1.0.0", _version_file("one\n"))
    releases = dev / "src" / "fastcelery" / "releases"
    with pytest.raises(UsageError, match="nothing to release"):
        release("1.0.1", dev, releases)
    write(dev / "template", {"VERSION.txt": "two\n"})
    with pytest.raises(UsageError, match=r"not newer than the last release v1\.0\.0"):
        release("1.0.0", dev, releases)
    with pytest.raises(UsageError, match="invalid version"):
        release("two", dev, releases)


def _legacy_project(machine: Machine, tag: str, extra: dict[str, str]) -> tuple[Path, Path]:
    """A project as fastcelery 0.1.0 made it: rendered from its per-user cache repository."""
    cache = machine.cache / "fastcelery" / "template"
    bundle = REPO_ROOT / "src" / "fastcelery" / "releases" / "v0.1.0.bundle"
    machine.git(machine.root, "clone", "-q", "--no-checkout", str(bundle), str(cache))
    machine.git(cache, "checkout", "-q", "v0.1.0")
    write(cache / "template", extra)
    if extra:
        machine.git(cache, "add", "-A")
        machine.git(cache, "commit", "-qm", tag)
    machine.git(cache, "tag", "-f", tag)
    copier = str(Path(sys.executable).parent / "copier")
    copied = machine.run(
        [copier, "copy", "--trust", "--defaults", "--vcs-ref", tag, "--data", "project_name=old",
         str(cache), str(machine.home / "old")],
        machine.home,
    )  # fmt: skip
    assert copied.exit_code == 0, copied.stderr
    project = machine.home / "old"
    assert answers_of(project)["_src_path"] == str(cache)
    machine.git(project, "init", "-q")
    machine.git(project, "add", "-A")
    machine.git(project, "commit", "-qm", "rendered by fastcelery 0.1.0")
    return project, cache


def test_a_cache_path_project_is_moved_to_the_portable_source(tmp_path: Path) -> None:
    alice = Machine(tmp_path / "alice")
    project, cache = _legacy_project(alice, "v0.1.0", {})
    shutil.rmtree(cache)  # another machine, or a cleaned cache: the release resolves it
    updated = alice.fastcelery("update", cwd=project)
    assert updated.exit_code == 0, updated.stdout + updated.stderr
    assert "portable template source" in updated.stdout
    assert answers_of(project)["_src_path"] == SOURCE_URL
    message = alice.git(project, "log", "-1", "--format=%s")
    assert message.startswith(f"fastcelery update: template source _src_path {SOURCE_URL}")
    assert str(cache) in message  # says what it was
    assert alice.git(project, "rev-list", "--count", "HEAD") == "2"  # one commit, then the update


def test_a_machine_local_version_is_resolved_or_explained(tmp_path: Path) -> None:
    """0.1.0 recorded `v0.1.0.postN` for edited checkouts: a version only its cache has."""
    alice = Machine(tmp_path / "alice")
    project, cache = _legacy_project(alice, "v0.1.0.post1", {"POST.txt": "post\n"})
    clone = tmp_path / "clone"
    alice.git(tmp_path, "clone", "-q", str(project), str(clone))
    # A released fastcelery (0.1.0.post1 sorts after what an unreleased checkout renders).
    v1 = install_version(tmp_path / "v1", "1.0.0", _version_file("one\n"))

    same_machine = alice.fastcelery("update", cwd=project, installed=v1)  # its cache has it
    assert same_machine.exit_code == 0, same_machine.stdout + same_machine.stderr
    assert answers_of(project)["_src_path"] == SOURCE_URL

    shutil.rmtree(cache)
    elsewhere = alice.fastcelery("update", cwd=clone, installed=v1)
    assert_one_error_line(elsewhere, "v0.1.0.post1", "--from-version v0.1.0")
    assert alice.git(clone, "status", "--porcelain") == ""
    assumed = alice.fastcelery("update", "--from-version", "v0.1.0", cwd=clone, installed=v1)
    assert assumed.exit_code == 0, assumed.stdout + assumed.stderr
    assert (clone / "POST.txt").read_text() == "post\n"  # not v0.1.0's: kept as the user's
    assert answers_of(clone)["_src_path"] == SOURCE_URL


def test_render_with_a_checkout_records_its_commit_under_a_shared_url(tmp_path: Path) -> None:
    """``--template PATH --source URL``: PATH renders, URL (and PATH's commit) is recorded."""
    alice = Machine(tmp_path / "alice")
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO_ROOT / "template", checkout / "template")
    shutil.copy2(REPO_ROOT / "copier.yml", checkout / "copier.yml")
    alice.git(checkout, "init", "-q")
    alice.git(checkout, "add", "-A")
    alice.git(checkout, "commit", "-qm", "fork")
    head = alice.git(checkout, "rev-parse", "HEAD")
    url = "https://git.example.com/team/fastcelery.git"
    made = alice.fastcelery(
        "new", "svc", "--defaults", "--template", str(checkout), "--source", url, cwd=alice.home
    )
    assert made.exit_code == 0, made.stderr
    answers = answers_of(alice.home / "svc")
    assert (answers["_src_path"], answers["_commit"]) == (url, head)
    plain = alice.fastcelery(
        "new", "local", "--defaults", "--template", str(checkout), cwd=alice.home
    )
    assert plain.exit_code == 0, plain.stderr
    assert "exists on this machine only" in plain.stderr


def test_unknown_vcs_ref_is_one_error_line(tmp_path: Path) -> None:
    """A wrong --vcs-ref is one error line naming the released versions; nothing written."""
    alice = Machine(tmp_path / "alice")
    result = alice.fastcelery("new", "svc", "--defaults", "--vcs-ref", "v9.9.9", cwd=alice.home)
    assert_one_error_line(result, "--vcs-ref 'v9.9.9' is not a template version", "v0.1.0")
    assert not (alice.home / "svc").exists()
