"""The built wheel carries the template and renders offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fastcelery.history import SOURCE_URL, read_releases
from tests.support import uv_bin

from .clihelpers import REPO_ROOT


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheel_install_renders_offline(tmp_path: Path) -> None:
    uv = uv_bin()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    dist = tmp_path / "dist"
    _run([uv, "build", "--wheel", "--out-dir", str(dist), str(REPO_ROOT)], env=env)
    [wheel] = dist.glob("fastcelery-*.whl")
    venv = tmp_path / "venv"
    _run([uv, "venv", "--python", sys.executable, str(venv)], env=env)
    python = venv / "bin" / "python"
    install = [uv, "pip", "install", "--python", str(python), str(wheel)]
    offline = subprocess.run(
        [*install, "--offline"], capture_output=True, text=True, env=env, check=False
    )
    if offline.returncode != 0:  # uv's cache lacks a dependency: use the registry once
        _run(install, env=env)

    where = _run(
        [str(python), "-c", "from fastcelery.paths import template_root; print(template_root())"],
        cwd=tmp_path,
        env=env,
    ).stdout.strip()
    assert Path(where) == venv.joinpath(
        "lib", f"python{sys.version_info.major}.{sys.version_info.minor}",
        "site-packages", "fastcelery", "_template",
    )  # fmt: skip
    assert (Path(where) / "template").is_dir()

    out = tmp_path / "out"
    user = {**env, "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    _run(
        [str(venv / "bin" / "fastcelery"), "new", "svc", "-o", str(out), "--defaults",
         "--broker", "rabbitmq"],
        cwd=tmp_path,
        env=user,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    answers = yaml.safe_load((out / "svc" / ".copier-answers.yml").read_text())
    assert answers["broker"] == "rabbitmq"
    assert answers["_src_path"] == SOURCE_URL
    # The wheel carries the released history that resolves the recorded version offline.
    releases = Path(where).parent / "releases"
    shipped = {p.name for p in releases.glob("*.bundle")}
    assert shipped
    assert {r.bundle for r in read_releases(releases)} == shipped
    assert not (tmp_path / "cache").exists()
    assert (out / "svc" / "pyproject.toml").is_file()
    assert (out / "svc" / ".git").is_dir()
    # It carries the task sub-template too: a task is added ...
    added = _run(
        [str(venv / "bin" / "fastcelery"), "add", "task", "ping"],
        cwd=out / "svc",
        env=user,
        stdin=subprocess.DEVNULL,
    )
    assert "Committed as" in added.stdout
    assert (out / "svc" / "app" / "tasks" / "ping.py").is_file()
    # ... and both update from it (here: to the same version, changing an answer).
    updated = _run(
        [str(venv / "bin" / "fastcelery"), "update", "--broker", "redis"],
        cwd=out / "svc",
        env=user,
        stdin=subprocess.DEVNULL,
    )
    assert "No conflicts" in updated.stdout
    assert "Task ping (.copier-answers.task-ping.yml): rendered again at v" in updated.stdout
    assert not (tmp_path / "cache").exists()
