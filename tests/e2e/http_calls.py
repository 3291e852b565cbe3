"""HTTP helpers of the end-to-end tests: bursts of POSTs, status reads and waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support import wait_until

from .db import order_rows
from .stack import DRAIN_LIMIT, Stack

# POSTs sent again after a transport error (reported by the tests that care).
TRANSPORT_RETRIES: list[str] = []


@dataclass
class Posted:
    status: int
    body: dict[str, Any]
    elapsed: float
    headers: dict[str, str]

    @property
    def data(self) -> dict[str, Any]:
        """The answer's fields: in `data` (orders, added tasks' routes), else the body."""
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
