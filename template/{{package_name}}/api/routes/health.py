"""Liveness and readiness: /health/live never touches dependencies; /health checks them.

Readiness fails (503) only when the database is unavailable: with the broker down the API
still accepts tasks (they wait in the database for the relay), so /health says "degraded"
and names the cause, as it does when the relay is off or stalled.
"""

import asyncio
import math
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ...config import get_settings
from ...core.celery import celery_app
from ...core.database import async_engine
from ...durable import dispatcher
from ...schemas import HealthStatus

router = APIRouter(prefix="/health", tags=["health"])


def _ping_broker(seconds: float) -> None:
    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=math.ceil(seconds))


async def _ping_database() -> None:
    # Its own connection, not the request's session: the probe may outlive the request.
    async with async_engine().connect() as connection:
        await connection.execute(text("SELECT 1"))


# Probes that outlived their timeout, referenced until they end (the database's within
# DATABASE__COMMAND_TIMEOUT + DATABASE__CONNECT_TIMEOUT).
_late_probes: set[asyncio.Task[object]] = set()


def _forget(task: asyncio.Task[object]) -> None:
    _late_probes.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a late failure is expected, not worth a warning


async def _check(probe: Coroutine[Any, Any, object], seconds: float) -> str:
    task = asyncio.create_task(probe)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        # Left running, not cancelled: cancelling a database command makes psycopg send a
        # cancel request and wait for it, which a silent database stretches by 10 s.
        _late_probes.add(task)
        task.add_done_callback(_forget)
        return "unavailable: TimeoutError"
    error = task.exception()
    return f"unavailable: {type(error).__name__}" if error else "ok"


@router.get("/live", response_model=HealthStatus)
async def live() -> HealthStatus:
    return HealthStatus(status="ok", checks={})


@router.get(
    "",
    response_model=HealthStatus,
    responses={503: {"model": HealthStatus, "description": "A dependency is unavailable"}},
)
async def ready() -> HealthStatus | JSONResponse:
    timeout = get_settings().api.health_timeout
    database, broker = await asyncio.gather(
        _check(_ping_database(), timeout),
        _check(asyncio.to_thread(_ping_broker, timeout), timeout),
    )
    checks = {"database": database, "broker": broker, **dispatcher.current().health()}
    if database != "ok":
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content=HealthStatus(status="unavailable", checks=checks).model_dump(),
        )
    healthy = broker == "ok" and checks["relay"] in {"ok", "starting"}
    return HealthStatus(status="ok" if healthy else "degraded", checks=checks)
