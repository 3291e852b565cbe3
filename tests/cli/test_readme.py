"""The root README's front door: its first command works as written, its table is copier.yml's."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from fastcelery.options import describe_questions, format_markdown
from tests.support import uv_bin

from .clihelpers import REPO_ROOT, git_out

README = (REPO_ROOT / "README.md").read_text()


def test_first_command_renders_its_own_repository_outside_the_clone(tmp_path: Path) -> None:
    """Run where the README says (inside the clone), it lands where the README says."""
    first = re.search(r"```bash\n(.+?)\n```", README, re.S)
    assert first is not None
    command = first.group(1).split(" && ", 1)[1]  # the pip install of uv is done already
    assert "--output ~/src" in command
    assert "renders **`~/src/myservice`**" in README
    cache = subprocess.run(
        [uv_bin(), "cache", "dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), UV_CACHE_DIR=cache)
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    project = tmp_path / "src" / "myservice"
    assert git_out(project, "rev-parse", "--show-toplevel") == str(project)
    assert git_out(project, "rev-list", "--count", "HEAD") == "1"
    assert git_out(project, "status", "--porcelain") == ""


def test_option_table_is_generated_from_copier_yml() -> None:
    found = re.search(r"<!-- options:.*?-->\n(.+?)\n<!-- /options -->", README, re.S)
    assert found is not None
    assert found.group(1) == format_markdown(describe_questions()), (
        "README's option table is stale: paste `fastcelery options --markdown` between the "
        "<!-- options --> markers"
    )
    for row in describe_questions():  # every question, --beat … --kubernetes included
        assert f"`{row['flag']}`" in found.group(1)
