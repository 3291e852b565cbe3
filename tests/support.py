"""Shared test helpers: the environment for subprocesses and checks for local services."""

import fcntl
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _pyenv_versions() -> str | None:
    """All pyenv Pythons, the running one first, so uv can find 3.11-3.13 behind pyenv shims."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    found = subprocess.run(
        [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
    ).stdout.split()
    current = ".".join(map(str, sys.version_info[:3]))
    wanted = [v for v in found if v.startswith(("3.11", "3.12", "3.13", "3.14"))]
    ordered = sorted(wanted, key=lambda v: (v != current, v))
    return ":".join(ordered) or None


def expose_pyenv_versions() -> None:
    # pyenv's shim sets PYENV_VERSION to the one version it ran (e.g. under `uv run`): keep it
    # first and add the others, or a rendered 3.12 project would make uv try to download 3.12.
    versions = _pyenv_versions()
    if not versions:
        return
    present = [v for v in os.environ.get("PYENV_VERSION", "").split(":") if v]
    merged = present + [v for v in versions.split(":") if v not in present]
    os.environ["PYENV_VERSION"] = ":".join(merged)


def uv_bin() -> str:
    """The uv installed next to this interpreter (a dev dependency), else the one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed: run the tests with `uv run pytest`")
    return found


def run(
    argv: Sequence[str], cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs a command and fails the test with its output when it exits non-zero."""
    full_env = {**os.environ, **(env or {})}
    # The rendered project must use its own environment, not this repository's.
    full_env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        list(argv),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(argv)}` exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Fails in CI when a service the test needs is down; elsewhere skips with the reason."""
    if port_open(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service fails the test)")
    pytest.skip(f"{message}; start it (see README) or run in CI, where this fails instead")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_debian_tool(tool: str, package: str) -> str:
    """The path of `tool`; installs Debian's `package` first when it is missing (as root, with
    apt-get, as .ci/run does). Fails when it cannot be had in CI; elsewhere skips, saying why."""
    found = shutil.which(tool)
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        lock = Path("/tmp/fastcelery-apt.lock")  # noqa: S108 - xdist workers install one at a time
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            if shutil.which(tool) is None:
                env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                for argv in (
                    ["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                ):
                    subprocess.run(argv, env=env, capture_output=True, check=False, timeout=600)
        found = shutil.which(tool)
    if found is None:
        message = f"{tool} is not installed (Debian package {package}) and could not be installed"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing tool fails the test)")
        pytest.skip(message)
    return found
