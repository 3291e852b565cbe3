"""The template cache skips its copy and git commands when the bundle has not changed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from fastcelery import gitutil, template_source
from fastcelery.template_source import bundle_fingerprint, ensure_version

from .clihelpers import git_out
from .test_cli_update import copy_template


def test_unchanged_bundle_reuses_its_tag_with_one_git_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "cache"
    bundle = copy_template(tmp_path / "bundle")
    assert ensure_version(bundle, "9.9.9", repo=repo) == "v9.9.9"

    calls: list[tuple[str, ...]] = []
    real_git = gitutil.git

    def counting_git(cwd: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return real_git(cwd, *args, **kwargs)

    monkeypatch.setattr(template_source, "git", counting_git)
    assert ensure_version(bundle, "9.9.9", repo=repo) == "v9.9.9"
    assert [args[0] for args in calls] == ["rev-parse"]  # only: does the tag still exist?


def test_changed_or_reverted_bundle_and_lost_tags_are_handled(tmp_path: Path) -> None:
    repo = tmp_path / "cache"
    bundle = copy_template(tmp_path / "bundle")
    extra = bundle / "template" / "EXTRA.txt"
    assert ensure_version(bundle, "9.9.9", repo=repo) == "v9.9.9"
    extra.write_text("changed\n")
    assert ensure_version(bundle, "9.9.9", repo=repo) == "v9.9.9.post1"
    extra.unlink()
    assert ensure_version(bundle, "9.9.9", repo=repo) == "v9.9.9"  # the first content again
    # A tag deleted by hand is made again, not trusted from the record.
    git_out(repo, "tag", "-d", "v9.9.9")
    assert ensure_version(bundle, "9.9.9", repo=repo) == "v9.9.9"
    assert set(git_out(repo, "tag").split()) == {"v9.9.9", "v9.9.9.post1"}


def test_fingerprint_follows_content_mode_and_version(tmp_path: Path) -> None:
    bundle = copy_template(tmp_path / "bundle")
    first = bundle_fingerprint(bundle, "1.0.0")
    assert bundle_fingerprint(bundle, "1.0.0") == first
    assert bundle_fingerprint(bundle, "1.0.1") != first
    (bundle / "template" / "__pycache__").mkdir(exist_ok=True)
    (bundle / "template" / "__pycache__" / "x.pyc").write_bytes(b"ignored")
    assert bundle_fingerprint(bundle, "1.0.0") == first  # ignored files do not count
    script = bundle / "template" / "run.sh"
    script.write_text("echo hi\n")
    plain = bundle_fingerprint(bundle, "1.0.0")
    script.chmod(0o755)
    assert bundle_fingerprint(bundle, "1.0.0") != plain
