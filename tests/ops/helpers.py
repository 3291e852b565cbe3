"""Rendering and tools for the operations tests (containers, CI, Kubernetes, migrations)."""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import copier
import yaml

from tests.render.matrix import CORE_QUESTIONS, combinations
from tests.support import REPO_ROOT

OPS_OPTIONS = ("beat", "flower", "sentry", "kubernetes", "observability")
# Tools installed into this repository's environment from PyPI (see pyproject's dev group).
BIN = Path(sys.executable).parent


def _valid_core_combinations() -> list[dict[str, Any]]:
    return [{name: combo[name] for name in CORE_QUESTIONS} for combo in combinations()]


def ops_combinations() -> list[dict[str, Any]]:
    """Every valid core combination with every ops option on, and the core ones with all off.

    The render matrix cycles each option through its values; here the interactions
    (beat with flower, Kubernetes with each broker) are all rendered too.
    """
    combos = []
    for core in _valid_core_combinations():
        combos.append({**core, **dict.fromkeys(OPS_OPTIONS, True)})
    for core in _valid_core_combinations()[::5]:
        combos.append({**core, **dict.fromkeys(OPS_OPTIONS, False)})
    return combos


def combo_id(answers: dict[str, Any]) -> str:
    core = "-".join(str(answers[k]) for k in ("broker", "database", "result_backend"))
    core += "-pyd" if answers.get("pydantic") else ""
    return core + ("-all-ops" if answers.get("beat") else "-no-ops")


def render(answers: dict[str, Any], root: Path) -> Path:
    """Renders the template (the working tree, uncommitted changes included) once per combo."""
    target = root / re.sub(r"[^A-Za-z0-9_.=-]", "_", combo_id(answers))
    root.mkdir(parents=True, exist_ok=True)
    with (root / "render.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist workers share the renders
        if not (target / ".rendered").exists():
            _render(answers, target)
            (target / ".rendered").touch()
    return target


def _template_snapshot(root: Path) -> Path:
    """copier.yml and template/ as they are in the working tree, copied outside git.

    Rendering from the repository makes Copier clone it and commit the uncommitted changes
    for every project (seconds each); a plain directory renders at once.
    """
    snapshot = root / "_template"
    if not (snapshot / "copier.yml").exists():
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.copytree(REPO_ROOT / "template", snapshot / "template")
        shutil.copy2(REPO_ROOT / "copier.yml", snapshot / "copier.yml")
    return snapshot


def _render(answers: dict[str, Any], target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            src_path=str(_template_snapshot(target.parent)),
            dst_path=str(target),
            data={"project_name": "ops-svc", **answers},
            defaults=True,
            unsafe=True,
            quiet=True,
        )


def tool(
    name: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs a validator from this environment with a minimal environment (no stray secrets)."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [str(BIN / name), *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def check_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def compose_config(project: Path, file: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as Docker Compose itself resolves it (merge keys, interpolation, defaults)."""
    result = tool("docker-compose", "-f", file, "config", "--format", "json", cwd=project, env=env)
    check_ok(result)
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def argv_of(command: Sequence[str] | str) -> list[str]:
    return list(command) if not isinstance(command, str) else command.split()
