"""Bad input against the running API and worker of the default project: the API fuzzed from its
own OpenAPI schema, malformed bodies, the internal detail view without its token, and a
pickled message published straight to the broker."""

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import REPO_ROOT, wait_until

from .conftest import INTERNAL_TOKEN, RenderFn, stack_on_shared_servers
from .http_calls import wait_order_status, wait_task_status
from .stack import DRAIN_LIMIT, Api, Stack

pytestmark = pytest.mark.services

SCHEMATHESIS_EXAMPLES = 60  # per operation and phase


@pytest.fixture(scope="module")
def running(
    render: RenderFn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Api]]:
    project = render()
    with stack_on_shared_servers(project, tmp_path_factory.mktemp("bad-input")) as stack:
        api = stack.start_api()
        stack.start_worker()
        yield stack, api


def assert_no_traceback(response: httpx.Response) -> None:
    assert "Traceback" not in response.text
    assert 'File "' not in response.text


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    running: tuple[Stack, Api], tmp_path: Path
) -> None:
    _, api = running
    report = tmp_path / "schemathesis.json"
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,"
            "content_type_conformance,response_headers_conformance,negative_data_rejection,"
            "positive_data_acceptance",
            "--max-examples",
            str(SCHEMATHESIS_EXAMPLES),
            "--seed",
            "20261124",
            "--header",
            f"X-Internal-Token: {INTERNAL_TOKEN}",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO_ROOT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks"},
    )
    output = result.stdout + result.stderr
    cases = re.search(r"(\d+) generated", output)
    print(output[-3000:])
    assert result.returncode == 0, output[-6000:]
    assert cases is not None, output[-3000:]
    print(f"schemathesis: {cases.group(1)} test cases, no failure")


def raw_json(body: bytes) -> dict[str, Any]:
    return {"content": body, "headers": {"Content-Type": "application/json"}}


def test_malformed_bodies_get_4xx_with_a_reason(running: tuple[Stack, Api]) -> None:
    _, api = running
    json_header = {"Content-Type": "application/json"}
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("not JSON", {"content": b"{product_id: sku", "headers": json_header}, 422, "JSON"),
        (
            "not UTF-8",
            {"content": b'{"product_id": "\xc3\x28"}', "headers": json_header},
            422,
            "utf-8",
        ),
        ("plain text", {"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 422, ""),
        ("empty", {"content": b"", "headers": json_header}, 422, ""),
        ("a JSON array", {"json": [1, 2]}, 422, ""),
        ("quantity a string", {"json": {"product_id": "a", "quantity": "many"}}, 422, "quantity"),
        # Issue 12: values JSON cannot carry back gave 500 (FastAPI's 422 echoed them), deep
        # nesting 400, and lax types were accepted.
        *(
            (
                f"quantity {raw.decode()}",
                raw_json(b'{"product_id": "a", "quantity": ' + raw + b"}"),
                422,
                "quantity",
            )
            for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"true", b'"5"', b"1.5")
        ),
        ("product_id NaN", raw_json(b'{"product_id": NaN, "quantity": 1}'), 422, "product_id"),
        ("NaN elsewhere", raw_json(b'{"product_id": "a", "quantity": 1, "x": NaN}'), 422, "x"),
        (
            "lone surrogate",
            raw_json(b'{"product_id": "\\ud800", "quantity": 1}'),
            422,
            "product_id",
        ),
        (
            "lone surrogate key",
            raw_json(b'{"\\ud800": 1, "product_id": "a", "quantity": 1}'),
            422,
            "body",
        ),
        ("nested 20,000 deep", raw_json(b"[" * 20_000 + b"]" * 20_000), 422, "json_invalid"),
        ("nested 900 deep", raw_json(b"[" * 900 + b"]" * 900), 422, "body"),
        (
            "a 5,000-digit number",
            raw_json(b'{"quantity": ' + b"9" * 5000 + b"}"),
            422,
            "json_invalid",
        ),
        ("quantity zero", {"json": {"product_id": "a", "quantity": 0}}, 422, "quantity"),
        ("quantity huge", {"json": {"product_id": "a", "quantity": 10**30}}, 422, "quantity"),
        ("product_id a number", {"json": {"product_id": 5, "quantity": 1}}, 422, "product_id"),
        ("product_id spaces", {"json": {"product_id": "a b", "quantity": 1}}, 422, "product_id"),
        ("missing field", {"json": {"quantity": 1}}, 422, "product_id"),
        ("unknown field", {"json": {"product_id": "a", "quantity": 1, "x": 1}}, 422, "x"),
        ("oversized", {"json": {"product_id": "a" * 70_000, "quantity": 1}}, 413, "larger"),
        (
            "oversized, chunked",
            {
                "content": iter([b'{"product_id": "', b"a" * 70_000, b'", "quantity": 1}']),
                "headers": json_header,
            },
            413,
            "larger",
        ),
    ]
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for name, request, expected, reason in cases:
            response = client.post("/orders", **request)
            assert response.status_code == expected, (name, response.status_code, response.text)
            detail = response.json()["detail"]
            assert detail, name
            assert reason in json.dumps(detail), (name, detail)
            if isinstance(detail, list):  # the reason, not the input echoed back
                assert all("input" not in error for error in detail), (name, detail)
            assert_no_traceback(response)
        for path in ("/tasks/not-a-uuid", "/orders/not-a-uuid", "/tasks/1/detail"):
            response = client.get(path, headers={"X-Internal-Token": INTERNAL_TOKEN})
            assert response.status_code == 422, (path, response.text)
            assert_no_traceback(response)
        wrong_method = client.delete("/orders")
        assert wrong_method.status_code == 405


def test_task_detail_needs_the_internal_token(running: tuple[Stack, Api]) -> None:
    stack, api = running
    with httpx.Client(base_url=api.url, timeout=10) as client:
        accepted = client.post("/orders", json={"product_id": "token", "quantity": 1})
        task_id = accepted.json()["data"]["task_id"]
        wait_task_status(
            client,
            task_id,
            lambda status: status == "SUCCESS",
            stack,
            limit=DRAIN_LIMIT,
            what="the task to succeed",
        )
        missing = client.get(f"/tasks/{task_id}/detail")
        assert missing.status_code == 401
        assert missing.json() == {"detail": "X-Internal-Token header required"}
        wrong = client.get(f"/tasks/{task_id}/detail", headers={"X-Internal-Token": "guess"})
        assert wrong.status_code == 403
        assert wrong.json() == {"detail": "invalid internal token"}
        for response in (missing, wrong):
            assert "result" not in response.json()
            assert_no_traceback(response)
        public = client.get(f"/tasks/{task_id}")
        assert set(public.json()) == {"task_id", "status"}
        allowed = client.get(
            f"/tasks/{task_id}/detail", headers={"X-Internal-Token": INTERNAL_TOKEN}
        )
        assert allowed.status_code == 200
        assert allowed.json()["status"] == "SUCCESS"
        assert allowed.json()["record_status"] == "succeeded"
        # Without the token even an unknown id is 401: no probing for which ids exist.
        assert client.get(f"/tasks/{uuid.uuid4()}/detail").status_code == 401


def test_a_pickled_message_is_rejected_not_executed(
    running: tuple[Stack, Api], tmp_path: Path
) -> None:
    stack, api = running
    marker = tmp_path / "pickle-was-executed"
    task_id = str(uuid.uuid4())
    pkg = stack.project.package
    # A pickle whose loading runs os.mkdir(marker): if any process unpickles it, we see it.
    stack.python(
        "import os, pickle\n"
        f"from {pkg}.core.celery import celery_app\n"
        "class Payload:\n"
        "    def __reduce__(self):\n"
        f"        return (os.mkdir, ({str(marker)!r},))\n"
        "celery_app.send_task('orders.process_order', args=[Payload()],"
        f" serializer='pickle', task_id={task_id!r})\n"
    )
    worker = next(proc for proc in stack.procs if proc.name == "worker")
    wait_until(
        worker.log,
        lambda log: task_id in log or "untrusted content" in log,
        limit=DRAIN_LIMIT,
        what="the worker to see the pickled message",
        diagnostics=stack.diagnostics,
    )
    log = worker.log()
    assert "Refusing to deserialize untrusted content of type pickle" in log, worker.tail()
    assert not marker.exists()
    assert worker.alive()
    # The worker goes on with JSON tasks.
    with httpx.Client(base_url=api.url, timeout=10) as client:
        order_id = client.post("/orders", json={"product_id": "after", "quantity": 1}).json()[
            "data"
        ]["order_id"]
    wait_order_status(stack, order_id, "processed", what="a JSON task after the pickled one")
    assert not marker.exists()
