"""The processes of a rendered project in one test: its API, workers, beat and migrations.

Every process is started in its own process group (tests.support.Proc) and killed on
teardown; a supervised worker is started again when it exits, as a deployment's restart
policy does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Proc, free_port, run, wait_until

from .projects import Project

# Safety limits for waits: a test that needs longer has hung. These are not assertions
# about speed (the only timed assertion is the 2 s bound on 503s, asserted where it is).
STARTUP_LIMIT = 90.0
DRAIN_LIMIT = 240.0


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
    _closing: threading.Event = field(default_factory=threading.Event)
    _supervisors: list[threading.Thread] = field(default_factory=list)

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
            supervisor = threading.Thread(
                target=self._supervise, args=(proc, extra_env, concurrency), daemon=True
            )
            self._supervisors.append(supervisor)
            supervisor.start()
        return proc

    def _supervise(self, proc: Proc, extra_env: Mapping[str, str] | None, concurrency: int) -> None:
        while not self._closing.is_set():
            if not proc.exited_within(0.5):  # waits on the process itself
                continue
            if self._closing.is_set():
                return
            self.restarts.append(proc)
            proc = self._spawn_worker(extra_env, concurrency)

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
        self._closing.set()
        for supervisor in self._supervisors:  # once they end, nothing is started again
            supervisor.join()
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
