"""Fixtures of the end-to-end tests: rendered projects and their stacks on real servers."""

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import require_service

from .harness import (
    PG_ADMIN_URL,
    RABBIT_HOST,
    RABBIT_PORT,
    REDIS_HOST,
    REDIS_PORT,
    Project,
    Stack,
    postgres_database,
    rabbit_vhost,
    redis_db_lease,
    render_project,
)

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


@pytest.fixture
def shared_stack(tmp_path: Path) -> Iterator[SharedStackFn]:
    """shared_stack(project, **env) -> a migrated Stack on the machine's shared servers.

    Each stack has its own PostgreSQL database, its own Redis database numbers and, with
    RabbitMQ, its own vhost; all are removed (and every process killed) after the test.
    """
    with contextlib.ExitStack() as resources:

        def _make(project: Project, **env: str) -> Stack:
            require_services_for(project)
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
            log_dir = tmp_path / f"logs-{len(list(tmp_path.glob('logs-*')))}"
            log_dir.mkdir()
            stack = Stack(project, stack_env, log_dir, database_url)
            resources.callback(stack.close)
            stack.migrate()
            return stack

        yield _make
