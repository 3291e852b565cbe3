"""The pytest-copie example of docs/testing-your-renders.md runs, as a user would run it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .clihelpers import REPO_ROOT

EXAMPLE = REPO_ROOT / "docs" / "examples" / "test_render.py"


def _run_example(tmp_path: Path, extra_env: dict[str, str]) -> str:
    # A user's repository: just the example file, no configuration of ours.
    shutil.copy2(EXAMPLE, tmp_path / "test_render.py")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(extra_env)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "test_render.py", "-q", "-p", "no:cacheprovider",
         "-W", "ignore::UserWarning"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    return proc.stdout


def test_docs_example_renders(tmp_path: Path) -> None:
    out = _run_example(tmp_path, {})
    assert "3 passed, 1 skipped" in out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_docs_example_full(tmp_path: Path) -> None:
    extra = {"RENDER_FULL": "1"}
    uv_dir = str(Path(sys.executable).parent)
    extra["PATH"] = f"{os.environ.get('PATH', '')}{os.pathsep}{uv_dir}"
    out = _run_example(tmp_path, extra)
    assert "4 passed" in out
