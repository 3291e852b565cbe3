"""Drive Copier's real interactive prompt through a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .clihelpers import FASTCELERY

DOWN = b"\x1b[B"
ENTER = b"\r"


def _read(fd: int, wait: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], wait)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # the child closed the terminal
        return b""


@pytest.mark.timeout(120)
def test_prompt_answers_one_question_interactively(tmp_path: Path) -> None:
    """Only --broker is left to the prompt: pick the second choice with ↓ + Enter."""
    primary, secondary = pty.openpty()
    args = [
        str(FASTCELERY), "new", "svc", "-o", str(tmp_path), "--no-git",
        "--package-name", "app", "--description", "x", "--python-version", "3.12",
        "--database", "postgresql", "--result-backend", "redis", "--no-pydantic",
    ]  # fmt: skip
    config_names = {"broker"}
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    proc = subprocess.Popen(
        args, stdin=secondary, stdout=secondary, stderr=secondary, env=env, close_fds=True
    )
    os.close(secondary)
    seen = b""
    mark = 0  # output before this offset has been answered
    answered = False
    deadline = time.monotonic() + 90
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            chunk = _read(primary, 1.0)
            seen += chunk
            if chunk:
                continue
            pending = seen[mark:]
            if not answered and b"Message broker" in pending:
                os.write(primary, DOWN)
                time.sleep(0.3)
                os.write(primary, ENTER)
                answered = True
                mark = len(seen)
            elif b"?" in pending:  # any other (future) question: accept its default
                os.write(primary, ENTER)
                mark = len(seen)
        while chunk := _read(primary, 0.5):
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    text = seen.decode(errors="replace")
    assert proc.wait(timeout=10) == 0, text[-3000:]
    assert answered, text[-3000:]
    answers = yaml.safe_load((tmp_path / "svc" / ".copier-answers.yml").read_text())
    assert answers["broker"] == "rabbitmq"
    assert config_names <= set(answers)


@pytest.mark.timeout(120)
def test_missing_name_is_asked_at_a_terminal(tmp_path: Path) -> None:
    """`fastcelery new` without NAME at a terminal asks for it (with copier.yml's help)."""
    primary, secondary = pty.openpty()
    args = [str(FASTCELERY), "new", "-o", str(tmp_path), "--no-git", "--data", "description=x"]
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    proc = subprocess.Popen(
        args, stdin=secondary, stdout=secondary, stderr=secondary, env=env, close_fds=True
    )
    os.close(secondary)
    seen = b""
    named = False
    deadline = time.monotonic() + 90
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            chunk = _read(primary, 1.0)
            seen += chunk
            if chunk:
                continue
            if not named and b"Project name" in seen:
                os.write(primary, b"order-service" + ENTER)
                named = True
                seen = b""
            elif named and seen.strip():  # Copier's own questions: accept their defaults
                os.write(primary, ENTER)
                seen = b""
        while chunk := _read(primary, 0.5):
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    assert proc.wait(timeout=10) == 0, seen.decode(errors="replace")[-3000:]
    assert named
    answers = yaml.safe_load((tmp_path / "order-service" / ".copier-answers.yml").read_text())
    assert answers["project_name"] == "order-service"
