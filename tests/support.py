"""Shared test helpers: subprocesses (run, Proc), waits, and checks for local services."""

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

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


def wait_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    limit: float,
    what: str,
    interval: float = 0.2,
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """Polls `probe` until `done(value)`; fails the test (with diagnostics) after `limit` s.

    For state outside this process (a server, a log file, a database row); threads of the
    test itself are coordinated with events and joins instead.
    """
    deadline = time.monotonic() + limit
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            extra = diagnostics() if diagnostics else ""
            pytest.fail(f"gave up waiting {limit:.0f}s for {what}; last value: {value!r}\n{extra}")
        time.sleep(interval)


class Proc:
    """A subprocess in its own process group, its output in a log file."""

    def __init__(
        self, name: str, argv: list[str], cwd: Path, env: Mapping[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def exited_within(self, seconds: float) -> bool:
        """Waits up to `seconds` for the process to exit; whether it did."""
        try:
            self.popen.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 4000) -> str:
        return f"--- {self.name} ({self.log_path}) ---\n{self.log()[-chars:]}"

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL for the whole group if it has not exited after `grace` s."""
        if self.alive():
            self.kill_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        # Children (prefork pool processes) may outlive their parent: kill the whole group.
        self.kill_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)
        self._log.close()
