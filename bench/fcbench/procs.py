"""Processes the benchmarks start: a throwaway Redis, the API, the worker, and their RSS.

Every process is started in its own session and stopped by its own id (and its own
process group, for the worker's pool children); nothing is killed by name.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process (a warm shutdown), then SIGKILL what is left of its group."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # The group may still hold pool children after the leader exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


def start(
    name: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    logdir: Path,
) -> Proc:
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Proc(name, popen, log)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def rss_tree(pid: int) -> int:
    """Resident bytes of a process and all its descendants (0 if it is gone)."""
    tree = _children()
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/statm").read_text().split()
        except OSError:
            continue
        total += int(fields[1]) * PAGE
        todo.extend(tree.get(p, []))
    return total


TICK = os.sysconf("SC_CLK_TCK")


def cpu_tree(pid: int) -> float:
    """CPU seconds (user + system) of a process tree, including its reaped children."""
    tree = _children()
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after "pid (comm)".
        total += sum(int(x) for x in fields[11:15])
        todo.extend(tree.get(p, []))
    return total / TICK


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {k: cpu_tree(v) for k, v in pids.items()}


def cpu_ms_per(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """Milliseconds of CPU per unit of work, per process tree."""
    return {
        f"cpu_ms_{k}": round((after[k] - before[k]) * 1000 / count, 3) if count else 0.0
        for k in before
    }


@dataclass
class RssSampler:
    """Samples the RSS of some process trees in the background every `interval` s."""

    pids: dict[str, int]
    interval: float = 0.5
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.samples = {k: [] for k in self.pids}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        for k, pid in self.pids.items():
            self.samples[k].append((now, rss_tree(pid)))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def peak(self, key: str) -> int:
        return max((v for _, v in self.samples[key]), default=0)

    def first(self, key: str) -> int:
        s = self.samples[key]
        return s[0][1] if s else 0

    def last(self, key: str) -> int:
        s = self.samples[key]
        return s[-1][1] if s else 0


def wait_http(port: int, path: str = "/health", timeout: float = 60.0) -> None:
    """Wait until something answers HTTP on the port (any status)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answers HTTP on port {port}") from None
            time.sleep(0.1)


def wait_log(proc: Proc, needle: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proc.log_text():
            return True
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_text()[-3000:]}")
        time.sleep(0.1)
    return False


@contextlib.contextmanager
def redis_server(logdir: Path) -> Iterator[tuple[int, Proc]]:
    """A throwaway redis-server on a free port, nothing kept on disk."""
    port = free_port()
    proc = start(
        f"redis-{port}",
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(logdir),
        ],
        cwd=logdir,
        env=os.environ,
        logdir=logdir,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or not proc.alive():
                proc.stop()
                raise
            time.sleep(0.05)
    try:
        yield port, proc
    finally:
        client.close()
        proc.stop()
