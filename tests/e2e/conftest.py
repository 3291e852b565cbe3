"""Fixtures of the end-to-end tests: rendered projects and their stacks on real servers."""

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import require_service

from .projects import Project, render_project
from .servers import (
    PG_ADMIN_URL,
    RABBIT_HOST,
    RABBIT_PORT,
    REDIS_HOST,
    REDIS_PORT,
    RedisServer,
    postgres_database,
    rabbit_vhost,
    redis_db_lease,
)
from .stack import Stack

INTERNAL_TOKEN = "e2e-internal-token"
# Settings every e2e stack gets: JSON logs (the tests read them), an internal token.
BASE_ENV = {
    "ENVIRONMENT": "test",
    "LOG_JSON": "true",
    "LOG_LEVEL": "INFO",
    "API__INTERNAL_TOKEN": INTERNAL_TOKEN,
}


def require_postgres() -> None:
    require_service("PostgreSQL", "127.0.0.1", int(PG_ADMIN_URL.rsplit(":", 1)[1].split("/")[0]))


def require_services_for(project: Project) -> None:
    require_postgres()
    if project.broker == "redis" or project.result_backend == "redis":
        require_service("Redis", REDIS_HOST, REDIS_PORT)
    if project.broker == "rabbitmq":
        require_service("RabbitMQ", RABBIT_HOST, RABBIT_PORT)


@pytest.fixture(scope="session")
def project_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # Under xdist every worker has its own basetemp; their parent is shared by the run.
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return root / "e2e-projects"


RenderFn = Callable[..., Project]


@pytest.fixture(scope="session")
def render(project_cache: Path) -> RenderFn:
    """render(broker=..., result_backend=..., pydantic=...) -> a rendered, synced Project."""

    def _render(**answers: Any) -> Project:
        return render_project({"project_name": "e2e-svc", **answers}, project_cache)

    return _render


SharedStackFn = Callable[..., Stack]


@contextlib.contextmanager
def stack_on_shared_servers(project: Project, log_dir: Path, **env: str) -> Iterator[Stack]:
    """A migrated Stack on the machine's shared servers.

    It has its own PostgreSQL database, its own Redis database numbers and, with RabbitMQ,
    its own vhost; all are removed (and every process killed) on exit.
    """
    require_services_for(project)
    with contextlib.ExitStack() as resources:
        database_url = resources.enter_context(postgres_database())
        stack_env = {**BASE_ENV, "DATABASE__URL": database_url}
        if project.broker == "redis" or project.result_backend == "redis":
            stack_env["REDIS__HOST"] = REDIS_HOST
            stack_env["REDIS__PORT"] = str(REDIS_PORT)
        if project.broker == "redis":
            stack_env["REDIS__BROKER_DB"] = str(resources.enter_context(redis_db_lease()))
        if project.result_backend == "redis":
            stack_env["REDIS__RESULT_DB"] = str(resources.enter_context(redis_db_lease()))
        if project.broker == "rabbitmq":
            stack_env.update(
                {
                    "RABBITMQ__HOST": RABBIT_HOST,
                    "RABBITMQ__PORT": str(RABBIT_PORT),
                    "RABBITMQ__USER": "guest",
                    "RABBITMQ__PASSWORD": "guest",
                    "RABBITMQ__VHOST": resources.enter_context(rabbit_vhost()),
                }
            )
        stack_env.update(env)
        log_dir.mkdir(parents=True, exist_ok=True)
        stack = Stack(project, stack_env, log_dir, database_url)
        resources.callback(stack.close)
        stack.migrate()
        yield stack


@pytest.fixture
def shared_stack(tmp_path: Path) -> Iterator[SharedStackFn]:
    """shared_stack(project, **env) -> a Stack on the shared servers, torn down after the test."""
    with contextlib.ExitStack() as resources:

        def _make(project: Project, **env: str) -> Stack:
            log_dir = tmp_path / f"logs-{len(list(tmp_path.glob('logs-*')))}"
            return resources.enter_context(stack_on_shared_servers(project, log_dir, **env))

        yield _make


FaultStackFn = Callable[..., tuple[Stack, RedisServer]]


@pytest.fixture
def fault_stack(tmp_path: Path) -> Iterator[FaultStackFn]:
    """fault_stack(project, persistent=False, **env) -> (Stack, RedisServer).

    Broker and result backend on a throwaway redis-server of this test (which the test may
    stop and start), the database a fresh one on the shared PostgreSQL.
    """
    require_postgres()
    with contextlib.ExitStack() as resources:

        def _make(
            project: Project, persistent: bool = False, **env: str
        ) -> tuple[Stack, RedisServer]:
            assert project.broker == "redis", "fault tests run the redis broker"
            server = RedisServer(tmp_path / "redis", persistent=persistent)
            server.start()
            resources.callback(server.stop, signal.SIGKILL)
            database_url = resources.enter_context(postgres_database())
            stack_env = {
                **BASE_ENV,
                "DATABASE__URL": database_url,
                "REDIS__HOST": "127.0.0.1",
                "REDIS__PORT": str(server.port),
                "REDIS__BROKER_DB": "0",
                "REDIS__RESULT_DB": "1",
                **env,
            }
            log_dir = tmp_path / "logs"
            log_dir.mkdir(exist_ok=True)
            stack = Stack(project, stack_env, log_dir, database_url)
            resources.callback(stack.close)
            stack.migrate()
            return stack, server

        yield _make
