"""Liveness and readiness: /health/live never touches dependencies; /health checks them.

Readiness fails (503) only when the database is unavailable: with the broker down the API
still accepts tasks (they wait in the database for the relay), so /health says "degraded"
and names the cause, as it does when the relay is off or stalled.
"""

import asyncio
import math
from collections.abc import Awaitable

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ...config import get_settings
from ...core.celery import celery_app
from ...durable import dispatcher
from ...schemas import HealthStatus
from ..deps import SessionDep

router = APIRouter(prefix="/health", tags=["health"])


def _ping_broker(seconds: float) -> None:
    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=math.ceil(seconds))


async def _check(probe: Awaitable[object], seconds: float) -> str:
    try:
        await asyncio.wait_for(probe, seconds)
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


@router.get("/live", response_model=HealthStatus)
async def live() -> HealthStatus:
    return HealthStatus(status="ok", checks={})


@router.get(
    "",
    response_model=HealthStatus,
    responses={503: {"model": HealthStatus, "description": "A dependency is unavailable"}},
)
async def ready(session: SessionDep) -> HealthStatus | JSONResponse:
    timeout = get_settings().api.health_timeout
    database, broker = await asyncio.gather(
        _check(session.execute(text("SELECT 1")), timeout),
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
