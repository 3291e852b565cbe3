"""Upgrading a running service from the previous released template (v0.1.0, whose orders were
their own outbox) to this one (durable tasks): `fastcelery update` with a user's edit in the
project, Alembic's migration 0003, and the new processes. Nothing accepted before the upgrade
is lost: orders left pending (never published) and queued (their messages still in the
broker) are all processed once, with their original task ids."""

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import REPO_ROOT, run, uv_bin, wait_until

from .conftest import BASE_ENV, require_postgres
from .db import order_rows, task_records
from .projects import Project
from .servers import RedisServer, postgres_database
from .stack import DRAIN_LIMIT, Stack

pytestmark = pytest.mark.services

PREVIOUS = "v0.1.0"
USER_EDIT = (
    "    worker_concurrency: int = 2\n",
    "    worker_concurrency: int = 4  # sized by the team\n",
)


def fastcelery(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "fastcelery"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def sync_and_commit(project: Path, message: str) -> None:
    """What the team does: install, and commit the change with its lock file."""
    run([uv_bin(), "sync", "--quiet", "--no-dev"], cwd=project)
    run(["git", "add", "-A"], cwd=project)
    identity = ["-c", "user.name=Team", "-c", "user.email=team@example.com"]
    run(["git", *identity, "commit", "-qm", message], cwd=project)


def test_update_from_the_previous_release_keeps_every_accepted_order(tmp_path: Path) -> None:
    require_postgres()
    rendered = fastcelery(
        "new", "legacy-svc", "--defaults", "--vcs-ref", PREVIOUS, "-o", str(tmp_path), cwd=tmp_path
    )
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    path = tmp_path / "legacy-svc"
    config = path / "app" / "config.py"
    config.write_text(config.read_text().replace(*USER_EDIT))  # the team's own change
    sync_and_commit(path, "Size the workers")
    project = Project(path=path, answers={"project_name": "legacy-svc", "beat": True})

    broker = RedisServer(tmp_path / "redis", persistent=True)
    broker.start()
    logs = tmp_path / "logs"
    logs.mkdir()
    with postgres_database() as database_url:
        env = {
            **BASE_ENV,
            "DATABASE__URL": database_url,
            "REDIS__HOST": "127.0.0.1",
            "REDIS__PORT": str(broker.port),
        }
        old = Stack(project, dict(env), logs / "old", database_url)
        try:
            old.migrate()
            api = old.start_api()
            with httpx.Client(base_url=api.url, timeout=10) as client:
                # Accepted and queued in the broker; no worker runs them before the upgrade.
                queued = [
                    client.post("/orders", json={"product_id": f"q-{i}", "quantity": 1})
                    for i in range(5)
                ]
                assert {r.status_code for r in queued} == {202}
                # The broker down: v0.1.0 answered 503 and kept the orders pending.
                broker.stop(signal.SIGKILL)
                pending = [
                    client.post("/orders", json={"product_id": f"p-{i}", "quantity": 1})
                    for i in range(3)
                ]
                assert {r.status_code for r in pending} == {503}
                broker.start()
        finally:
            old.close()
        before = order_rows(database_url)
        assert sorted(row["status"] for row in before.values()) == ["pending"] * 3 + ["queued"] * 5

        updated = fastcelery("update", "--defaults", cwd=path)
        assert updated.returncode == 0, updated.stdout + updated.stderr
        assert USER_EDIT[1] in config.read_text()  # the edit survived the update
        sync_and_commit(path, "Update the template")

        new = Stack(project, dict(env), logs / "new", database_url)
        try:
            new.migrate()  # 0003: task_records, with the open orders' tasks
            records = task_records(database_url)
            assert {str(row["task_id"]) for row in before.values()} <= set(records)
            new.start_api()  # its relay publishes the pending ones
            new.start_worker()
            wait_until(
                lambda: {row["status"] for row in order_rows(database_url).values()},
                lambda statuses: statuses == {"processed"},
                limit=DRAIN_LIMIT,
                what="every order accepted before the upgrade to be processed",
                diagnostics=new.diagnostics,
            )
            assert new.processing_counts() == {order: 1 for order in before}
            assert {row["status"] for row in task_records(database_url).values()} == {"succeeded"}
        finally:
            new.close()
            broker.stop(signal.SIGKILL)
    assert os.path.exists(path / "app" / "durable" / "task.py")
