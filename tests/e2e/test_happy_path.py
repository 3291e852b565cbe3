"""The default project, rendered and run for real: uvicorn + a Celery worker on the machine's
Redis and PostgreSQL. An order goes in; the task reaches SUCCESS; the order row is processed."""

import uuid

import httpx
import pytest

from .conftest import RenderFn, SharedStackFn
from .db import order_rows
from .http_calls import wait_task_status
from .stack import STARTUP_LIMIT

pytestmark = pytest.mark.services


def test_default_project_processes_an_order_with_real_api_and_worker(
    render: RenderFn, shared_stack: SharedStackFn
) -> None:
    project = render()  # every default: redis broker, redis results, postgresql, no pydantic
    stack = shared_stack(project)
    api = stack.start_api()

    with httpx.Client(base_url=api.url, timeout=10) as client:
        response = client.post("/orders", json={"product_id": "sku-1", "quantity": 3})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["success"] is True
        order_id, task_id = body["data"]["order_id"], body["data"]["task_id"]
        assert body["data"]["status"] == "pending"

        # No worker yet: an issued id is PENDING, an id never issued is 404.
        assert client.get(f"/tasks/{task_id}").json() == {"task_id": task_id, "status": "PENDING"}
        unknown = client.get(f"/tasks/{uuid.uuid4()}")
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "unknown task id"}

        stack.start_worker()
        final = wait_task_status(
            client,
            task_id,
            lambda status: status in {"SUCCESS", "FAILURE"},
            stack,
            limit=STARTUP_LIMIT,
            what="the task to finish",
        )
        assert final == "SUCCESS", stack.diagnostics()

        row = order_rows(stack.database_url)[order_id]
        assert row["status"] == "processed"
        assert row["processed_at"] is not None
        assert str(row["task_id"]) == task_id
        read = client.get(f"/orders/{order_id}").json()["data"]
        assert read["status"] == "processed"

        detail = client.get(
            f"/tasks/{task_id}/detail", headers={"X-Internal-Token": "e2e-internal-token"}
        )
        assert detail.status_code == 200
        assert detail.json()["result"]["status"] == "processed"
        assert detail.json()["record_status"] == "succeeded"

        # A task added with `fastcelery add task` (projects.add_invoice_task) is served and
        # tracked the same way, and links to its status.
        invoice = client.post("/invoices", json={"invoice_id": "inv-1"})
        assert invoice.status_code == 202, invoice.text
        invoice_task = invoice.json()["data"]["task_id"]
        assert invoice.json()["data"]["status_url"] == f"/tasks/{invoice_task}"
        assert (
            wait_task_status(
                client,
                invoice_task,
                lambda status: status in {"SUCCESS", "FAILURE"},
                stack,
                limit=STARTUP_LIMIT,
                what="the invoice task to finish",
            )
            == "SUCCESS"
        )
    assert stack.processing_counts() == {order_id: 1}
    assert stack.invoice_counts() == {"inv-1": 1}
