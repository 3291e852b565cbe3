"""Servers of the end-to-end tests: per-test resources on the machine's shared PostgreSQL,
Redis and RabbitMQ, and throwaway servers a fault test may stop (redis-server, a webhook
receiver; the TCP proxy that cuts or stalls a connection path is in proxy.py)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.support import free_port, port_open, run, wait_until

# Re-exported (the fault tests import it from here).
from .proxy import TcpProxy as TcpProxy  # noqa: PLC0414

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
# Shared-Redis databases the e2e tests may use (0-3 are left to other tools and tests).
REDIS_DBS = range(4, 16)
LOCK_DIR = Path("/tmp/fastcelery-e2e-locks")  # noqa: S108 - fixed, shared across xdist workers
# How long a test waits for a shared resource (a free Redis database) or a server to start.
RESOURCE_LIMIT = 90.0


def _random_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(5)}"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the shared PostgreSQL; yields its SQLAlchemy URL; dropped after."""
    name = _random_name("e2e")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def redis_db_lease() -> Iterator[int]:
    """A database number of the shared Redis that no other e2e test uses; flushed around use."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + RESOURCE_LIMIT
    while True:
        for db in REDIS_DBS:
            handle = (LOCK_DIR / f"redis-db-{db}.lock").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
            try:
                client.flushdb()
                yield db
            finally:
                with contextlib.suppress(Exception):
                    client.flushdb()
                client.close()
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if time.monotonic() > deadline:
            pytest.fail("no free Redis database for the e2e tests")
        time.sleep(0.5)


def rabbitmqctl(*args: str) -> None:
    run(["rabbitmqctl", "-q", *args], cwd=Path.cwd(), timeout=60)


@contextlib.contextmanager
def rabbit_vhost() -> Iterator[str]:
    """A throwaway RabbitMQ vhost (guest has full rights); deleted after."""
    vhost = _random_name("e2e")
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


class RedisServer:
    """A throwaway redis-server on a free port; stop() and start() again on the same port."""

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (the fault tests start their own)")
        self.port = free_port()
        self.workdir = workdir
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url_base(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
            if self.persistent
            else ["--save", "", "--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--daemonize",
                "no",
                *persistence,
            ],
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: port_open("127.0.0.1", self.port, timeout=0.5),
            bool,
            limit=30,
            what="redis-server to listen",
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


class WebhookReceiver:
    """A local HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
