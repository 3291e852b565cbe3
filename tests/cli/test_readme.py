"""The root README's front door: its first command works as written, its table is copier.yml's."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from fastcelery.options import ADD_TASK, NEW, describe_questions, format_markdown
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

    def run_in_clone(script: str) -> None:
        """Runs a README block where the README runs it: in the clone, with bash."""
        proc = subprocess.run(
            ["bash", "-ec", script],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr

    run_in_clone(command)
    project = tmp_path / "src" / "myservice"
    assert git_out(project, "rev-parse", "--show-toplevel") == str(project)
    assert git_out(project, "rev-list", "--count", "HEAD") == "1"
    assert git_out(project, "status", "--porcelain") == ""
    # The next block grows it by two tasks, each its own commit.
    grow = re.findall(r"```bash\n(.+?)\n```", README, re.S)[1]
    assert "fastcelery add task" in grow
    run_in_clone(grow)
    assert git_out(project, "rev-list", "--count", "HEAD") == "3"
    assert git_out(project, "status", "--porcelain") == ""
    assert (project / "app" / "tasks" / "send_invoice.py").is_file()


@pytest.mark.parametrize(("marker", "command"), [("options", NEW), ("options add task", ADD_TASK)])
def test_option_tables_are_generated_from_the_copier_files(marker: str, command: str) -> None:
    found = re.search(rf"<!-- {marker}:.*?-->\n(.+?)\n<!-- /{marker} -->", README, re.S)
    assert found is not None
    rows = describe_questions(command=command)
    assert found.group(1) == format_markdown(rows), (
        f"README's option table is stale: paste `fastcelery options --markdown`'s table of "
        f"`fastcelery {command}` between the <!-- {marker} --> markers"
    )
    for row in rows:  # every question, --beat … --kubernetes included
        assert row["flag"] in found.group(1)


def test_add_task_is_on_the_first_screen() -> None:
    """The README's first screen shows how to grow a service, as docs/cli.md's does."""
    first_screen = README[: README.index("## What you get")]
    assert "fastcelery add task send_invoice ~/src/myservice" in first_screen
    cli_doc = (REPO_ROOT / "docs" / "cli.md").read_text()
    assert "fastcelery add task NAME [OPTIONS] [PATH]" in cli_doc[: cli_doc.index("\n## ")]
