"""The end-to-end harness: rendered projects, their real processes, and the servers they use.

Everything here starts real processes: `uvicorn <pkg>.main:app`, `celery -A <pkg>.core.celery
worker`, throwaway `redis-server`s and a small webhook receiver (the TCP proxy that cuts or
stalls a connection path is in `proxy.py`). Every process is started in its own process group
and killed on teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import copier
import httpx
import psycopg
import pytest
import redis
import yaml

from tests.support import REPO_ROOT, free_port, run, uv_bin

# Re-exported (the fault tests import it from here).
from .proxy import TcpProxy as TcpProxy  # noqa: PLC0414

T = TypeVar("T")

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
# Shared-Redis databases the e2e tests may use (0-3 are left to other tools and tests).
REDIS_DBS = range(4, 16)
LOCK_DIR = Path("/tmp/fastcelery-e2e-locks")  # noqa: S108 - fixed, shared across xdist workers
# Safety limits for waits: a test that needs longer has hung. These are not assertions
# about speed (the only timed assertion is the 2 s bound on 503s, asserted where it is).
STARTUP_LIMIT = 90.0
DRAIN_LIMIT = 240.0


def wait_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    limit: float,
    what: str,
    interval: float = 0.2,
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """Polls `probe` until `done(value)`; fails the test (with diagnostics) after `limit` s."""
    deadline = time.monotonic() + limit
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            extra = diagnostics() if diagnostics else ""
            pytest.fail(f"gave up waiting {limit:.0f}s for {what}; last value: {value!r}\n{extra}")
        time.sleep(interval)


# --- rendered projects --------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    path: Path
    answers: Mapping[str, Any]

    @property
    def package(self) -> str:
        return str(self.answers.get("package_name", "app"))

    def bin(self, name: str) -> str:
        return str(self.path / ".venv" / "bin" / name)

    @property
    def broker(self) -> str:
        return str(self.answers.get("broker", "redis"))

    @property
    def result_backend(self) -> str:
        return str(self.answers.get("result_backend", "redis"))


def combo_key(answers: Mapping[str, Any]) -> str:
    return "-".join(f"{k}={v}" for k, v in sorted(answers.items()))


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# A second durable task and a route for it, written into every rendered project as one of
# its users would (two new files; tasks and routes are discovered): the fault tests run every
# guarantee on it as well as on the order example.
INVOICE_TASK = '''"""A durable task of the service's user (fastcelery's e2e tests)."""

import logging
import os
import signal

from sqlalchemy.orm import Session

from ..durable import durable_task

logger = logging.getLogger(__name__)


@durable_task(name="invoices.send_invoice", queue="default")
def send_invoice(session: Session, invoice_id: str, crash: bool = False) -> dict[str, str]:
    if crash:  # a poison message: it kills its worker process, every time
        os.kill(os.getpid(), signal.SIGKILL)
    logger.info("sending invoice", extra={"invoice_id": invoice_id})
    return {"invoice_id": invoice_id}
'''
INVOICE_ROUTE = '''"""POST /invoices enqueues send_invoice (fastcelery's e2e tests)."""

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from ...tasks.invoices import send_invoice
from ..deps import SessionDep

router = APIRouter(prefix="/invoices", tags=["invoices"])


class InvoiceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    invoice_id: str = Field(min_length=1, max_length=64)
    crash: bool = False


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def create_invoice(payload: InvoiceRequest, session: SessionDep) -> dict[str, str]:
    record = send_invoice.enqueue(session, payload.invoice_id, payload.crash)
    await session.commit()
    return {"invoice_id": payload.invoice_id, "task_id": str(record.id)}
'''


def add_invoice_task(project: Path, package: str) -> None:
    (project / package / "tasks" / "invoices.py").write_text(INVOICE_TASK)
    (project / package / "api" / "routes" / "invoices.py").write_text(INVOICE_ROUTE)


def render_project(answers: Mapping[str, Any], cache_root: Path) -> Project:
    """Renders (once per combination, shared by xdist workers) and `uv sync`s a project,
    with a second durable task added (see INVOICE_TASK)."""
    key = combo_key(answers)
    target = cache_root / re.sub(r"[^A-Za-z0-9_.=-]", "_", key)
    with file_lock(cache_root / f"{target.name}.lock"):
        if not (target / ".rendered").exists():
            shutil.rmtree(target, ignore_errors=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # DirtyLocalWarning: a working tree is fine
                copier.run_copy(
                    src_path=str(REPO_ROOT),
                    dst_path=str(target),
                    data=dict(answers),
                    defaults=True,
                    unsafe=True,
                    vcs_ref="HEAD",
                    quiet=True,
                )
            add_invoice_task(target, str(answers.get("package_name", "app")))
            run([uv_bin(), "sync", "--quiet", "--no-dev"], cwd=target)
            (target / ".rendered").write_text(key)
    # Every answer, the defaults included, as Copier recorded them.
    recorded = yaml.safe_load((target / ".copier-answers.yml").read_text())
    return Project(path=target, answers={**recorded, **answers})


# --- per-test resources on the shared servers -----------------------------------------


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
    deadline = time.monotonic() + STARTUP_LIMIT
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


# --- processes -------------------------------------------------------------------------


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


@dataclass
class Api:
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    """The processes of one rendered project in one test, sharing a base environment."""

    project: Project
    env: dict[str, str]
    log_dir: Path
    database_url: str
    procs: list[Proc] = field(default_factory=list)
    # Workers that exited on their own and were started again by a supervisor.
    restarts: list[Proc] = field(default_factory=list)
    _count: Counter[str] = field(default_factory=Counter)
    _closing: bool = False

    def _process_env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        # The stack's own temporary folder: per-host state (the alerts' repeat counts) is
        # this test's alone.
        tmp = self.log_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmp)
        env.update(self.env)
        env.update(extra or {})
        return env

    def spawn(self, name: str, argv: list[str], extra_env: Mapping[str, str] | None = None) -> Proc:
        self._count[name] += 1
        log = self.log_dir / f"{name}-{self._count[name]}.log"
        proc = Proc(name, argv, self.project.path, self._process_env(extra_env), log)
        self.procs.append(proc)
        return proc

    def migrate(self) -> None:
        run(
            [self.project.bin("alembic"), "upgrade", "head"],
            cwd=self.project.path,
            env=self._process_env(None),
        )

    def python(self, code: str, extra_env: Mapping[str, str] | None = None) -> str:
        """Runs a Python snippet in the project's environment (its settings from `env`)."""
        result = run(
            [self.project.bin("python"), "-c", code],
            cwd=self.project.path,
            env=self._process_env(extra_env),
            timeout=120,
        )
        return result.stdout

    def diagnostics_full(self) -> str:
        return "\n".join(proc.log() for proc in self.procs)

    def diagnostics(self) -> str:
        return "\n".join(proc.tail() for proc in self.procs)

    def start_api(
        self,
        extra_env: Mapping[str, str] | None = None,
        port: int = 0,
        command: list[str] | None = None,
    ) -> Api:
        """The API, ready. `command`: the project's own uvicorn command line (say, its
        Dockerfile's CMD), run with its host and port set to 127.0.0.1 and `port`."""
        port = port or free_port()
        argv = command or [
            "uvicorn",
            f"{self.project.package}.main:app",
            # Longer than any pause between a test's requests, so a client never reuses a
            # keep-alive connection the server is closing at that instant.
            "--timeout-keep-alive",
            "60",
        ]
        argv = [self.project.bin(argv[0]), *argv[1:]]
        for option, value in (("--host", "127.0.0.1"), ("--port", str(port))):
            if option in argv:
                argv[argv.index(option) + 1] = value
            else:
                argv += [option, value]
        proc = self.spawn("api", argv, extra_env)
        api = Api(proc=proc, port=port)

        def live() -> bool:
            if not proc.alive():
                pytest.fail(f"the API exited with {proc.popen.returncode}\n{proc.tail()}")
            try:
                return httpx.get(f"{api.url}/health/live", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(
            live, bool, limit=STARTUP_LIMIT, what="the API to start", diagnostics=self.diagnostics
        )
        return api

    def start_worker(
        self,
        extra_env: Mapping[str, str] | None = None,
        concurrency: int = 2,
        supervised: bool = False,
    ) -> Proc:
        """A worker, ready. `supervised`: restarted when it exits, as a deployment's restart
        policy does (compose `restart: unless-stopped`, Kubernetes); see `restarts`."""
        proc = self._spawn_worker(extra_env, concurrency)
        self.wait_worker_ready(proc)
        if supervised:
            threading.Thread(
                target=self._supervise, args=(proc, extra_env, concurrency), daemon=True
            ).start()
        return proc

    def _supervise(self, proc: Proc, extra_env: Mapping[str, str] | None, concurrency: int) -> None:
        while not self._closing:
            if not proc.alive() and not self._closing:
                self.restarts.append(proc)
                proc = self._spawn_worker(extra_env, concurrency)
            time.sleep(0.5)

    def _spawn_worker(self, extra_env: Mapping[str, str] | None, concurrency: int) -> Proc:
        self._count["worker-name"] += 1
        node = f"e2e{self._count['worker-name']}-{secrets.token_hex(3)}@%h"
        return self.spawn(
            "worker", self._celery("worker", "-n", node, "-c", str(concurrency)), extra_env
        )

    def _celery(self, command: str, *args: str) -> list[str]:
        """The project's `celery` command line for a worker or beat, as its README gives it."""
        app = f"{self.project.package}.core.celery"
        return [self.project.bin("celery"), "-A", app, command, "--loglevel=info", *args]

    def start_beat(self, extra_env: Mapping[str, str] | None = None) -> Proc:
        """Celery beat (projects rendered with beat: it runs the outbox relay)."""
        schedule = self.log_dir / f"beat-schedule-{self._count['beat'] + 1}"
        proc = self.spawn("beat", self._celery("beat", "--schedule", str(schedule)), extra_env)

        def started() -> bool:
            if not proc.alive():
                pytest.fail(f"beat exited with {proc.popen.returncode}\n{proc.tail()}")
            return "beat: Starting" in proc.log() or "Scheduler: Sending" in proc.log()

        wait_until(
            started, bool, limit=STARTUP_LIMIT, what="beat to start", diagnostics=self.diagnostics
        )
        return proc

    def start_relay(self) -> None:
        """Whatever runs this project's outbox relay besides the API: beat, if rendered with it."""
        if self.project.answers.get("beat"):
            self.start_beat()

    def wait_worker_ready(self, proc: Proc, occurrence: int = 1) -> None:
        def ready() -> bool:
            if not proc.alive():
                pytest.fail(f"the worker exited with {proc.popen.returncode}\n{proc.tail()}")
            return proc.log().count(" ready.") >= occurrence

        wait_until(
            ready,
            bool,
            limit=STARTUP_LIMIT,
            what="the worker to be ready",
            diagnostics=self.diagnostics,
        )

    def close(self) -> None:
        self._closing = True
        time.sleep(0.6)  # supervisors see the flag before any process goes away
        for proc in reversed(self.procs):
            proc.stop()

    # --- what the processes logged

    def worker_log_records(self) -> list[dict[str, Any]]:
        records = []
        for proc in self.procs:
            if proc.name != "worker":
                continue
            for line in proc.log().splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(json.JSONDecodeError):
                        records.append(json.loads(line))
        return records

    def processing_counts(self) -> Counter[str]:
        """How many times `apply_order` (the business work) ran for each order id."""
        return self.work_counts("processing order", "order_id")

    def invoice_counts(self) -> Counter[str]:
        """How many times `send_invoice`'s body ran for each invoice id."""
        return self.work_counts("sending invoice", "invoice_id")

    def work_counts(self, message: str, key: str) -> Counter[str]:
        return Counter(
            str(record[key])
            for record in self.worker_log_records()
            if record.get("message") == message
        )


# --- database reads -------------------------------------------------------------------


def psycopg_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")


def order_rows(database_url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(psycopg_url(database_url)) as conn:
        cursor = conn.execute("SELECT id, task_id, status, processed_at, error FROM orders")
        names = [column.name for column in cursor.description or []]
        return {str(row[0]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def status_counts(database_url: str) -> Counter[str]:
    return Counter(row["status"] for row in order_rows(database_url).values())


def task_records(database_url: str, name: str | None = None) -> dict[str, dict[str, Any]]:
    """The durable task records (of one task name), by task id."""
    with psycopg.connect(psycopg_url(database_url)) as conn:
        cursor = conn.execute(
            "SELECT * FROM task_records WHERE %(name)s::text IS NULL OR name = %(name)s",
            {"name": name},
        )
        names = [column.name for column in cursor.description or []]
        return {str(row[0]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def record_counts(database_url: str, name: str | None = None) -> Counter[str]:
    return Counter(row["status"] for row in task_records(database_url, name).values())


# --- HTTP -----------------------------------------------------------------------------


# POSTs the harness sent again after a transport error (reported by the tests that care).
TRANSPORT_RETRIES: list[str] = []


@dataclass
class Posted:
    status: int
    body: dict[str, Any]
    elapsed: float
    headers: dict[str, str]

    @property
    def data(self) -> dict[str, Any]:
        """An order's answer wraps its fields in `data`; an invoice's does not."""
        data: dict[str, Any] = self.body.get("data", self.body)
        return data

    @property
    def order_id(self) -> str:
        return str(self.data["order_id"])

    @property
    def task_id(self) -> str:
        return str(self.data["task_id"])


def wait_task_status(
    client: httpx.Client,
    task_id: str,
    done: Callable[[str], bool],
    stack: Stack,
    *,
    limit: float,
    what: str,
) -> str:
    """Polls the public `GET /tasks/{task_id}` until `done(status)`; returns the status."""
    return wait_until(
        lambda: str(client.get(f"/tasks/{task_id}").json()["status"]),
        done,
        limit=limit,
        what=what,
        diagnostics=stack.diagnostics,
    )


def wait_order_status(stack: Stack, order_id: str, wanted: str, *, what: str) -> None:
    """Polls the order's row in the database until its status is `wanted`."""
    wait_until(
        lambda: order_rows(stack.database_url)[order_id]["status"],
        lambda status: status == wanted,
        limit=DRAIN_LIMIT,
        what=what,
        diagnostics=stack.diagnostics,
    )


def post_orders(
    base_url: str, count: int, concurrency: int = 50, prefix: str = "sku"
) -> list[Posted]:
    """POSTs `count` orders at once (at most `concurrency` in flight); returns every answer."""
    return post_many(
        base_url,
        "/orders",
        [{"product_id": f"{prefix}-{i}", "quantity": 1 + i % 5} for i in range(count)],
        concurrency,
    )


def post_invoices(
    base_url: str, count: int, concurrency: int = 50, prefix: str = "inv"
) -> list[Posted]:
    """POSTs `count` invoices (the second durable task) at once; returns every answer."""
    bodies = [{"invoice_id": f"{prefix}-{i}"} for i in range(count)]
    return post_many(base_url, "/invoices", bodies, concurrency)


def post_many(
    base_url: str, path: str, bodies: list[dict[str, Any]], concurrency: int
) -> list[Posted]:

    async def main() -> list[Posted]:
        limits = httpx.Limits(max_connections=concurrency)
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

            async def one(body: dict[str, Any]) -> Posted:
                async with gate:
                    for attempt in range(3):
                        started = time.monotonic()
                        try:
                            response = await client.post(path, json=body)
                        except httpx.TransportError as exc:
                            # The connection died before an answer (seen once on a loaded
                            # machine); a client tries again. The order may exist twice
                            # then, which the tests allow for (they check every saved order).
                            TRANSPORT_RETRIES.append(f"{path} {body}: {exc!r}")
                            if attempt == 2:
                                raise
                            continue
                        elapsed = time.monotonic() - started
                        break
                return Posted(
                    response.status_code, response.json(), elapsed, dict(response.headers)
                )

            return list(await asyncio.gather(*(one(body) for body in bodies)))

    return asyncio.run(main())


def task_statuses(base_url: str, task_ids: list[str], concurrency: int = 20) -> dict[str, Any]:
    """GET /tasks/{id} for each id; maps id -> (status code, body)."""

    async def main() -> dict[str, Any]:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

            async def one(task_id: str) -> tuple[str, Any]:
                async with gate:
                    response = await client.get(f"/tasks/{task_id}")
                return task_id, (response.status_code, response.json())

            return dict(await asyncio.gather(*(one(t) for t in task_ids)))

    return asyncio.run(main())


# --- throwaway servers and fault tools -------------------------------------------------


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
        wait_until(lambda: _port_open(self.port), bool, limit=30, what="redis-server to listen")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


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
