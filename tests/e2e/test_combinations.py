"""Every broker / result-backend combination, with and without Pydantic task payloads, run for
real: 200 orders posted at once all get a task id, every task ends SUCCESS, every order is
processed exactly once; an unknown task id is told apart from a queued one."""

import uuid
from typing import Any

import httpx
import pytest

from tests.support import wait_until

from .conftest import RenderFn, SharedStackFn
from .db import order_rows, status_counts
from .http_calls import post_invoices, post_orders, task_statuses
from .stack import DRAIN_LIMIT, Stack

pytestmark = pytest.mark.services

ORDERS = 200
ORDERS_PYDANTIC = 50
COMBINATIONS = [
    ("redis", "redis"),
    ("redis", "postgresql"),
    ("rabbitmq", "redis"),
    ("rabbitmq", "postgresql"),
    ("redis", "none"),
]


def wait_all_success(stack: Stack, base_url: str, task_ids: list[str]) -> dict[str, Any]:
    remaining = set(task_ids)
    last: dict[str, Any] = {}

    def probe() -> set[str]:
        answers = task_statuses(base_url, sorted(remaining))
        last.update(answers)
        failed = {t: a for t, a in answers.items() if a[1].get("status") == "FAILURE"}
        if failed:
            pytest.fail(f"tasks failed: {failed}\n{stack.diagnostics()}")
        remaining.difference_update(t for t, a in answers.items() if a[1]["status"] == "SUCCESS")
        return remaining

    wait_until(
        probe,
        lambda left: not left,
        limit=DRAIN_LIMIT,
        what="every task to reach SUCCESS",
        interval=0.5,
        diagnostics=stack.diagnostics,
    )
    return last


@pytest.mark.parametrize("pydantic", [False, True], ids=["plain", "pydantic"])
@pytest.mark.parametrize(("broker", "result_backend"), COMBINATIONS)
def test_concurrent_orders_are_all_processed_exactly_once(
    render: RenderFn,
    shared_stack: SharedStackFn,
    broker: str,
    result_backend: str,
    pydantic: bool,
) -> None:
    project = render(broker=broker, result_backend=result_backend, pydantic=pydantic)
    stack = shared_stack(project)
    api = stack.start_api()

    # Before any worker runs: an issued task id is PENDING (200); an id the service never
    # issued is 404 "unknown task id" (Celery alone would say PENDING for both).
    with httpx.Client(base_url=api.url, timeout=10) as client:
        first = client.post("/orders", json={"product_id": "first", "quantity": 1})
        assert first.status_code == 202, first.text
        first_task = first.json()["data"]["task_id"]
        queued = client.get(f"/tasks/{first_task}")
        assert (queued.status_code, queued.json()["status"]) == (200, "PENDING")
        unknown = client.get(f"/tasks/{uuid.uuid4()}")
        assert (unknown.status_code, unknown.json()) == (404, {"detail": "unknown task id"})

    stack.start_worker(concurrency=4)
    # 200 orders for each combination; the Pydantic variant of each (same broker and backend
    # code, other task signatures) with 50, to keep the suite inside CI's time.
    orders = ORDERS_PYDANTIC if pydantic else ORDERS
    posted = post_orders(api.url, orders, concurrency=50)

    assert [p.status for p in posted] == [202] * orders, [p.body for p in posted if p.status != 202]
    task_ids = [p.body["data"]["task_id"] for p in posted] + [first_task]
    order_ids = [p.body["data"]["order_id"] for p in posted] + [first.json()["data"]["order_id"]]
    assert len(set(task_ids)) == len(set(order_ids)) == orders + 1

    # Every saved order (a POST retried after a transport error may have saved one more).
    wait_until(
        lambda: status_counts(stack.database_url),
        lambda counts: set(counts) == {"processed"} and counts["processed"] >= orders + 1,
        limit=DRAIN_LIMIT,
        what="every order to be processed",
        interval=0.5,
        diagnostics=stack.diagnostics,
    )
    wait_all_success(stack, api.url, task_ids)

    # The task added with `fastcelery add task` works with this combination too.
    invoices = post_invoices(api.url, 20, concurrency=20)
    assert {p.status for p in invoices} == {202}
    wait_all_success(stack, api.url, [p.task_id for p in invoices])
    assert stack.invoice_counts() == {p.data["invoice_id"]: 1 for p in invoices}

    # Exactly once: the business work (apply_order) ran once per order, no more.
    counts = stack.processing_counts()
    assert set(counts) == set(order_rows(stack.database_url))
    assert set(order_ids) <= set(counts)
    assert {order: n for order, n in counts.items() if n != 1} == {}
