"""A database that stops answering without closing anything, against the real API and worker.

The API and the worker reach PostgreSQL each through a proxy of the test's own (`proxy.py`)
that stalls: every connection stays open, nothing is forwarded, no error is seen by anyone.
Before the fix the API gave no answer for 90 s, `/health` took 12 s against its 2 s timeout,
and the worker's processes were blocked until the task's soft time limit (240 s) and then
failed with a non-transient `ProgrammingError` ("can't change 'autocommit' now"). The test
runs with the default settings, so the times it prints are what a deployment gets."""

import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.support import Proc, wait_until

from .conftest import RenderFn, SharedStackFn
from .db import order_rows
from .servers import PG_ADMIN_URL, TcpProxy
from .stack import DRAIN_LIMIT, Stack

pytestmark = pytest.mark.services

PG_PORT = int(PG_ADMIN_URL.split(":")[-1].split("/")[0])
# The generated defaults: DATABASE__COMMAND_TIMEOUT, DATABASE__CONNECT_TIMEOUT,
# API__HEALTH_TIMEOUT.
COMMAND_TIMEOUT, CONNECT_TIMEOUT, HEALTH_TIMEOUT = 5.0, 2.0, 2.0
# A request meets at most one command to a stalled connection (the pool's ping of an idle
# connection, or a query) and then one connection attempt: its answer comes within the sum.
API_BOUND = COMMAND_TIMEOUT + CONNECT_TIMEOUT
# Generous: these bounds are checked, not the machine's speed (before the fix: no answer).
MARGIN = 8.0
HEALTH_MARGIN = 3.0  # small enough to catch the old 10 s of query cancellation


@dataclass
class Answer:
    what: str
    status: int | None  # None: no answer (a transport error or the client's timeout)
    elapsed: float
    body: str


def timed(
    client: httpx.Client, what: str, call: Callable[[httpx.Client], httpx.Response]
) -> Answer:
    started = time.monotonic()
    try:
        response = call(client)
    except httpx.HTTPError as exc:
        return Answer(what, None, time.monotonic() - started, repr(exc))
    return Answer(what, response.status_code, time.monotonic() - started, response.text)


def proxied(database_url: str, proxy: TcpProxy) -> str:
    return database_url.replace(f"127.0.0.1:{PG_PORT}", f"127.0.0.1:{proxy.port}")


def wait_processed(stack: Stack, order_ids: list[str], what: str) -> None:
    wait_until(
        lambda: [order_rows(stack.database_url)[i]["status"] for i in order_ids],
        lambda statuses: all(status == "processed" for status in statuses),
        limit=DRAIN_LIMIT,
        what=what,
        diagnostics=stack.diagnostics,
    )


def stall_the_workers_database(
    stack: Stack, client: httpx.Client, worker: Proc, proxy: TcpProxy
) -> float:
    """Tasks arrive while the worker's database is silent: each attempt fails within the bound
    as a transient error and is retried; once the database answers, the orders are processed.
    Returns how long the worker took to give up on the silent database."""
    proxy.stall()
    stalled_at = time.monotonic()
    during = [
        client.post("/orders", json={"product_id": f"stalled-{i}", "quantity": 1}) for i in range(2)
    ]
    assert [r.status_code for r in during] == [202] * 2, [r.text for r in during]
    wait_until(
        worker.log,
        lambda log: "OperationalError" in log,
        limit=DRAIN_LIMIT,
        what="the worker to see the silent database as an OperationalError",
        diagnostics=stack.diagnostics,
    )
    gave_up_after = time.monotonic() - stalled_at
    proxy.resume()
    wait_processed(stack, [r.json()["data"]["order_id"] for r in during], "the retried orders")
    for bad in ("ProgrammingError", "can't change 'autocommit'"):
        assert bad not in worker.log(), worker.tail()
    return gave_up_after


def stall_the_apis_database(client: httpx.Client, order: dict[str, str]) -> list[Answer]:
    """Every route that needs the database answers 503 within the bound (twice: first on
    pooled connections, then on new ones), /health within its own timeout, /health/live at
    once."""
    order_id, task_id = order["order_id"], order["task_id"]
    calls: list[tuple[str, Callable[[httpx.Client], httpx.Response]]] = [
        ("POST /orders", lambda c: c.post("/orders", json={"product_id": "x", "quantity": 1})),
        ("GET /orders/{id}", lambda c: c.get(f"/orders/{order_id}")),
        ("GET /tasks/{id}", lambda c: c.get(f"/tasks/{task_id}")),
        ("GET /health", lambda c: c.get("/health")),
        ("GET /health/live", lambda c: c.get("/health/live")),
    ]
    answers: list[Answer] = []
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        for _ in range(2):
            answers += pool.map(lambda call: timed(client, *call), calls)
    for answer in answers:
        print(f"silent database: {answer.what} -> {answer.status} in {answer.elapsed:.2f} s")
    for answer in answers:
        if answer.what == "GET /health/live":
            assert answer.status == 200, answer
            assert answer.elapsed <= HEALTH_MARGIN, answer
        elif answer.what == "GET /health":
            assert answer.status == 503, answer
            assert '"database":"unavailable' in answer.body, answer
            assert answer.elapsed <= HEALTH_TIMEOUT + HEALTH_MARGIN, answer
        else:
            assert answer.status == 503, answer
            assert "database unavailable" in answer.body, answer
            assert answer.elapsed <= API_BOUND + MARGIN, answer
    return answers


def test_a_silent_database_gets_bounded_answers_and_task_retries(
    render: RenderFn, shared_stack: SharedStackFn
) -> None:
    api_proxy, worker_proxy = TcpProxy("127.0.0.1", PG_PORT), TcpProxy("127.0.0.1", PG_PORT)
    api_proxy.start()
    worker_proxy.start()
    try:
        stack = shared_stack(render())
        api = stack.start_api({"DATABASE__URL": proxied(stack.database_url, api_proxy)})
        worker = stack.start_worker({"DATABASE__URL": proxied(stack.database_url, worker_proxy)})
        with httpx.Client(base_url=api.url, timeout=60) as client:
            # Warm up: the API's and both worker processes' pools hold open connections.
            warm = [
                client.post("/orders", json={"product_id": f"warm-{i}", "quantity": 1})
                for i in range(6)
            ]
            assert [r.status_code for r in warm] == [202] * 6, [r.text for r in warm]
            wait_processed(stack, [r.json()["data"]["order_id"] for r in warm], "warm-up")

            gave_up_after = stall_the_workers_database(stack, client, worker, worker_proxy)
            print(f"silent database: the worker gave up after {gave_up_after:.2f} s")
            assert gave_up_after <= API_BOUND + MARGIN, gave_up_after

            api_proxy.stall()
            stall_the_apis_database(client, warm[0].json()["data"])
            api_proxy.resume()
            after = client.post("/orders", json={"product_id": "after", "quantity": 1})
            assert after.status_code == 202, after.text
            wait_processed(stack, [after.json()["data"]["order_id"]], "an order after the stall")
        assert worker.alive()
        assert "ProgrammingError" not in stack.diagnostics_full()
    finally:
        api_proxy.close()
        worker_proxy.close()
