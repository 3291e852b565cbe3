"""The rendered service's operational parts run for real on this machine's servers.

No Docker engine here, so the commands and health checks of compose.yaml are run directly
(from `docker compose config`), against the shared PostgreSQL, Redis and RabbitMQ, each test
with its own database, Redis database or vhost. Also: Alembic upgrade and downgrade on
PostgreSQL, and start-up of the API and a worker creates no table behind Alembic's back.
"""

import base64
import contextlib
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.servers import postgres_database, rabbit_vhost, redis_db_lease
from tests.support import Proc, free_port, require_service, run, uv_bin

from .conftest import RenderFn
from .helpers import compose_config

pytestmark = [pytest.mark.services, pytest.mark.slow]

BASE = {"broker": "redis", "database": "postgresql", "pydantic": False}
ALL_OPS = {"beat": True, "flower": True, "sentry": True, "kubernetes": False}
# Settings compose points at its containers; the tests point them at this machine instead.
HOST_SPECIFIC = ("DATABASE__URL", "REDIS__", "RABBITMQ__", "CELERY__BROKER_URL")


def require_servers(answers: Mapping[str, Any]) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    if "redis" in (answers["broker"], answers["result_backend"]):
        require_service("Redis", "127.0.0.1", 6379)
    if answers["broker"] == "rabbitmq":
        require_service("RabbitMQ", "127.0.0.1", 5672)


def synced(rendered: RenderFn, answers: dict[str, Any]) -> Path:
    project = rendered(answers)
    if not (project / ".venv" / "bin" / "celery").exists():
        run([uv_bin(), "sync", "--quiet", "--no-dev"], cwd=project)
    return project


def tables(database_url: str) -> set[str]:
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        names = {row[0] for row in rows}
        sequences = conn.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
        )
        return names | {f"sequence:{row[0]}" for row in sequences}


@contextlib.contextmanager
def broker_urls(answers: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """CELERY__BROKER_URL / CELERY__RESULT_BACKEND on servers of this test's own."""
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if "redis" in (answers["broker"], answers["result_backend"]):
            db = stack.enter_context(redis_db_lease())
            env["REDIS__HOST"], env["REDIS__PORT"] = "127.0.0.1", "6379"
            env["REDIS__BROKER_DB"] = env["REDIS__RESULT_DB"] = str(db)
        if answers["broker"] == "rabbitmq":
            vhost = stack.enter_context(rabbit_vhost())
            env["CELERY__BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        yield env


def project_env(project: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = f"{project / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env["HOSTNAME"] = socket.gethostname()  # what Docker sets; the health checks use it
    return {**env, "ENVIRONMENT": "test", "LOG_JSON": "true", **extra}


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's own environment, less what points at compose's containers."""
    environment = service.get("environment") or {}
    return {
        k: str(v)
        for k, v in environment.items()
        if v is not None and not k.startswith(HOST_SPECIFIC)
    }


def healthcheck_argv(service: Mapping[str, Any]) -> list[str]:
    test = [part.replace("$$", "$") for part in service["healthcheck"]["test"]]
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", test[1]]
    assert test[0] == "CMD", test
    return test[1:]


def healthy(argv: list[str], project: Path, env: Mapping[str, str]) -> bool:
    result = subprocess.run(
        argv, cwd=project, env=dict(env), capture_output=True, timeout=60, check=False
    )
    return result.returncode == 0


def wait_for(probe: Any, what: str, procs: list[Proc], limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while not probe():
        if time.monotonic() > deadline:
            logs = "\n".join(proc.tail() for proc in procs)
            pytest.fail(f"gave up after {limit:.0f}s waiting for {what}\n{logs}")
        time.sleep(0.5)


def http_status(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)  # noqa: S310 - a local test server
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@contextlib.contextmanager
def processes() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.stop(grace=10)


def alembic(project: Path, env: Mapping[str, str], *args: str) -> str:
    return run(["alembic", *args], cwd=project, env=dict(env), timeout=120).stdout


def test_alembic_upgrade_and_downgrade_on_postgresql(rendered: RenderFn) -> None:
    answers = {**BASE, "result_backend": "postgresql", **ALL_OPS}
    require_servers(answers)
    project = synced(rendered, answers)
    with postgres_database() as url:
        env = project_env(project, {"DATABASE__URL": url})
        alembic(project, env, "upgrade", "head")
        assert tables(url) == {
            "alembic_version",
            "orders",
            "task_records",
            "celery_taskmeta",
            "celery_tasksetmeta",
            "sequence:task_id_sequence",
            "sequence:taskset_id_sequence",
        }
        # The migrations match the models (the service's and Celery's result tables).
        alembic(project, env, "check")
        alembic(project, env, "downgrade", "base")
        assert tables(url) == {"alembic_version"}
        alembic(project, env, "upgrade", "head")
        assert "0003 (head)" in alembic(project, env, "current")


@pytest.mark.parametrize("result_backend", ["redis", "postgresql"])
def test_api_and_worker_start_up_without_creating_tables(
    rendered: RenderFn, tmp_path: Path, result_backend: str
) -> None:
    answers = {**BASE, "result_backend": result_backend, **ALL_OPS}
    require_servers(answers)
    project = synced(rendered, answers)
    services = compose_config(project, "compose.yaml")["services"]
    port = free_port()
    api_argv = [arg for arg in services["api"]["command"] if arg != "--reload"]
    api_argv[api_argv.index("8000")] = str(port)
    with postgres_database() as url, broker_urls(answers) as urls, processes() as procs:
        env = project_env(project, {"DATABASE__URL": url, **urls})
        procs.append(Proc("api", api_argv, project, env, tmp_path / "api.log"))
        worker_env = {**env, **service_env(services["worker"])}
        procs.append(
            Proc("worker", services["worker"]["command"], project, worker_env, tmp_path / "w.log")
        )
        live = f"http://127.0.0.1:{port}/health/live"
        wait_for(lambda: http_status(live) == 200, "the API", procs)
        check = healthcheck_argv(services["worker"])
        wait_for(lambda: healthy(check, project, worker_env), "the worker's health check", procs)
        assert tables(url) == set(), "start-up created tables: only Alembic may"

        # Uvicorn's access line is JSON, with its fields.
        def access_line() -> dict[str, Any] | None:
            for line in procs[0].log().splitlines():
                if line.startswith("{") and '"uvicorn.access"' in line:
                    entry: dict[str, Any] = json.loads(line)
                    return entry
            return None

        wait_for(lambda: access_line() is not None, "a JSON access log line", procs)
        entry = access_line()
        assert entry is not None
        assert entry["path"] == "/health/live"
        assert entry["status_code"] == 200


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_compose_commands_and_health_checks_run_the_service(
    rendered: RenderFn, tmp_path: Path, broker: str
) -> None:
    """Workers, beat and Flower started with compose's commands and settings; every health
    check passes; beat's relay re-publishes a stuck task, which a worker then processes."""
    answers = {**BASE, "broker": broker, "result_backend": "redis", **ALL_OPS}
    require_servers(answers)
    project = synced(rendered, answers)
    services = compose_config(project, "compose.yaml")["services"]
    flower_port = free_port()
    with postgres_database() as url, broker_urls(answers) as urls, processes() as procs:
        env = project_env(project, {"DATABASE__URL": url, **urls})
        alembic(project, env, "upgrade", "head")
        order_id, task_id = uuid.uuid4(), uuid.uuid4()
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            # An order whose task was saved an hour ago and never published.
            conn.execute(
                "INSERT INTO orders (id, task_id, product_id, quantity, status, created_at,"
                " updated_at) VALUES (%s, %s, 'sku-ops', 1, 'pending', now() - interval '1 hour',"
                " now() - interval '1 hour')",
                (order_id, task_id),
            )
            conn.execute(
                "INSERT INTO task_records (id, name, args, kwargs, status, attempts,"
                " redeliveries, republishes, created_at, updated_at) VALUES (%s,"
                " 'orders.process_order', %s, '{}', 'pending', 0, 0, 0,"
                " now() - interval '1 hour', now() - interval '1 hour')",
                (task_id, json.dumps([str(order_id)])),
            )

        overrides = {
            "worker": {},
            "worker-priority": {},
            "beat": {
                "CELERY__BEAT_SCHEDULE_FILE": str(tmp_path / "celerybeat-schedule"),
                "OUTBOX__RELAY_INTERVAL_SECONDS": "1",
            },
            "flower": {"FLOWER__PORT": str(flower_port), "FLOWER__PASSWORD": "ops-secret"},
        }
        envs = {}
        for name, extra in overrides.items():
            envs[name] = {**env, **service_env(services[name]), **extra}
            argv = services[name]["command"]
            procs.append(Proc(name, argv, project, envs[name], tmp_path / f"{name}.log"))

        for name in ("worker", "worker-priority", "beat"):
            check = healthcheck_argv(services[name])
            wait_for(
                lambda c=check, n=name: healthy(c, project, envs[n]),
                f"{name}'s health check",
                procs,
            )

        # Beat sends the relay; a worker re-publishes the stuck order; a worker processes it.
        def status() -> str:
            with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
                row = conn.execute(
                    "SELECT status FROM orders WHERE id = %s", (order_id,)
                ).fetchone()
                return str(row[0]) if row else ""

        wait_for(lambda: status() == "processed", "beat's relay to process the order", procs)

        base = f"http://127.0.0.1:{flower_port}"
        wait_for(lambda: http_status(f"{base}/healthcheck") == 200, "Flower", procs)
        check = healthcheck_argv(services["flower"])
        check = [part.replace("5555", str(flower_port)) for part in check]
        assert healthy(check, project, envs["flower"])
        assert http_status(f"{base}/") == 401
        assert http_status(f"{base}/", auth=("admin", "wrong")) == 401
        assert http_status(f"{base}/", auth=("admin", "ops-secret")) == 200


def readme_test_command(project: Path) -> dict[str, str]:
    """The TEST_* variables of the generated README's "run them against real services"
    command, as a user would copy them."""
    readme = (project / "README.md").read_text()
    block = readme.split("To run them against real services", 1)[1].split("```bash\n", 1)[1]
    block = block.split("```", 1)[0]
    assert block.rstrip().endswith("uv run pytest     # the test database is wiped first"), block
    return dict(re.findall(r"^(TEST_\w+)=(\S+) \\$", block, re.M))


@pytest.mark.parametrize(
    ("database", "broker", "result_backend"),
    [
        ("postgresql", "redis", "redis"),
        ("postgresql", "rabbitmq", "postgresql"),
        ("sqlite", "redis", "redis"),
    ],
)
def test_generated_tests_pass_with_the_readmes_real_services_command(
    rendered: RenderFn, database: str, broker: str, result_backend: str
) -> None:
    """The generated README's command for running the tests against real services, as
    written (its hosts and database numbers pointed at this test's own), including the
    relay's FOR UPDATE SKIP LOCKED test (PostgreSQL only): what the generated CI runs too."""
    answers = {
        **BASE,
        "database": database,
        "broker": broker,
        "result_backend": result_backend,
        **ALL_OPS,
    }
    require_servers(answers)
    project = rendered(answers)
    run([uv_bin(), "sync", "--quiet"], cwd=project)
    command = readme_test_command(project)
    expected = {"TEST_BROKER_URL"} | ({"TEST_DATABASE_URL"} if database == "postgresql" else set())
    if result_backend != "none":
        expected.add("TEST_RESULT_BACKEND")
    assert set(command) == expected, command
    with contextlib.ExitStack() as servers:
        env = dict(command)
        if database == "postgresql":
            url = servers.enter_context(postgres_database())
            env["TEST_DATABASE_URL"] = url
            if result_backend == "postgresql":
                env["TEST_RESULT_BACKEND"] = f"db+{url}"
        urls = servers.enter_context(broker_urls(answers))
        if broker == "redis" or result_backend == "redis":
            db = urls["REDIS__BROKER_DB"]
            for key in ("TEST_BROKER_URL", "TEST_RESULT_BACKEND"):
                if env.get(key, "").startswith("redis://"):
                    env[key] = f"redis://127.0.0.1:6379/{db}"
        if broker == "rabbitmq":
            env["TEST_BROKER_URL"] = urls["CELERY__BROKER_URL"]
        result = run(
            [uv_bin(), "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
            cwd=project,
            env=env,
            timeout=600,
        )
    summary = result.stdout.splitlines()[-1]
    assert " passed" in summary, result.stdout[-2000:]
    if database == "postgresql":
        assert "skipped" not in summary, result.stdout[-2000:]
