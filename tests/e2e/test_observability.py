"""Metrics and traces of the default project (option `observability` on), with the real uvicorn
and a prefork Celery worker.

Metrics: the worker's pool processes are recycled every few tasks; a Prometheus server (Debian's
`prometheus`, started here on a free port) scrapes the API, with the bearer token it asks for,
and the worker, and evaluates the project's alert rules. The test posts orders, makes one task
fail, and reads the counters, the runtime histogram and the task backlog back through
Prometheus's HTTP API.

Traces: an OTLP/HTTP receiver started here (it decodes the exports with the project's own
opentelemetry-proto) collects the spans of the API and of the worker's pool process: one trace
runs from the POST through the publish to the task's run and its SQL."""

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from tests.support import free_port, require_debian_tool, wait_until

from .conftest import RenderFn, SharedStackFn
from .db import order_rows, psycopg_url
from .http_calls import post_orders
from .stack import DRAIN_LIMIT, STARTUP_LIMIT, Stack

pytestmark = pytest.mark.services

ORDERS = 10
METRICS_TOKEN = "e2e-metrics-token"
TASK = "orders.process_order"
# The backlog probe: a task record queued two minutes ago, which nothing touches.
BACKLOG_AGE = 120.0


class Prometheus:
    """Debian's prometheus server on a free port, scraping the given targets every second."""

    def __init__(self, stack: Stack, workdir: Path, api_port: int, worker_port: int) -> None:
        binary = require_debian_tool("prometheus", "prometheus")
        workdir.mkdir(parents=True, exist_ok=True)
        rules = stack.project.path / "monitoring" / "prometheus" / "alerts.yml"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": "api",
                    "authorization": {"type": "Bearer", "credentials": METRICS_TOKEN},
                    "static_configs": [{"targets": [f"127.0.0.1:{api_port}"]}],
                },
                {
                    "job_name": "worker",
                    "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
                },
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = stack.spawn(
            "prometheus",
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
        )

        def ready() -> bool:
            if not self.proc.alive():
                pytest.fail(f"prometheus exited\n{self.proc.tail()}")
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, bool, limit=STARTUP_LIMIT, what="prometheus to be ready")

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> dict[str, float]:
        """Instant query: each series's labels but its name (as `k=v,...`) mapped to its value."""
        return {
            ",".join(
                f"{k}={v}" for k, v in sorted(series["metric"].items()) if k != "__name__"
            ): float(series["value"][1])
            for series in self.api("query", query=expression)["result"]
        }

    def scalar(self, expression: str) -> float | None:
        found = list(self.query(expression).values())
        assert len(found) <= 1, found
        return found[0] if found else None


def add_waiting_record(database_url: str) -> None:
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as conn:
        created = datetime.now(UTC) - timedelta(seconds=BACKLOG_AGE)
        conn.execute(
            "INSERT INTO task_records (id, name, args, kwargs, queue, status, attempts,"
            " redeliveries, republishes, created_at, updated_at) VALUES (%s,"
            " 'e2e.backlog_probe', '[]', '{}', 'default', 'queued', 0, 0, 0, %s, %s)",
            (uuid.uuid4(), created, created),
        )


def publish_failing_task(stack: Stack) -> None:
    """A process_order for an order that does not exist: it fails at once (no retry)."""
    script = (
        f"from {stack.project.package}.tasks.orders import process_order\n"
        f"process_order.delay('{uuid.uuid4()}')\n"
    )
    subprocess.run(
        [stack.project.bin("python"), "-c", script],
        cwd=stack.project.path,
        env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | stack.env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_prometheus_scrapes_task_and_request_metrics_from_the_api_and_a_prefork_worker(
    render: RenderFn, shared_stack: SharedStackFn, tmp_path: Path
) -> None:
    project = render()
    worker_port = free_port()
    stack = shared_stack(
        project,
        METRICS__TOKEN=METRICS_TOKEN,
        METRICS__WORKER_PORT=str(worker_port),
        # Pool processes are replaced after each message (a batch of orders is one message):
        # their counts must still add up.
        CELERY__WORKER_MAX_TASKS_PER_CHILD="1",
    )
    api = stack.start_api()
    worker = stack.start_worker(concurrency=2)
    add_waiting_record(stack.database_url)
    prometheus = Prometheus(stack, tmp_path / "prometheus", api.port, worker_port)

    posted = post_orders(api.url, ORDERS, concurrency=5)
    assert [answer.status for answer in posted] == [202] * ORDERS
    publish_failing_task(stack)
    wait_until(
        lambda: [row["status"] for row in order_rows(stack.database_url).values()],
        lambda statuses: statuses == ["processed"] * ORDERS,
        limit=DRAIN_LIMIT,
        what="every order to be processed",
        diagnostics=stack.diagnostics,
    )

    expected = {
        f'sum(celery_task_started_total{{task="{TASK}"}})': ORDERS + 1,
        f'sum(celery_task_succeeded_total{{task="{TASK}"}})': ORDERS,
        f'sum(celery_task_failed_total{{task="{TASK}"}})': 1,
        f'sum(celery_task_runtime_seconds_count{{task="{TASK}"}})': ORDERS + 1,
        f'sum(celery_task_runtime_seconds_bucket{{task="{TASK}",le="+Inf"}})': ORDERS + 1,
        'sum(http_request_duration_seconds_count{route="/orders",method="POST",status="202"})': (
            ORDERS
        ),
        'task_backlog_records{status="queued"}': 1,
        'task_backlog_records{status="pending"}': 0,
    }

    def figures() -> dict[str, float | None]:
        return {expression: prometheus.scalar(expression) for expression in expected}

    wait_until(
        figures,
        lambda found: found == expected,
        limit=STARTUP_LIMIT,
        what="Prometheus to see the expected figures",
        diagnostics=stack.diagnostics,
    )
    assert prometheus.query("up") == {
        f"instance=127.0.0.1:{api.port},job=api": 1.0,
        f"instance=127.0.0.1:{worker_port},job=worker": 1.0,
    }
    # Recycled pool processes folded their counts into the worker's archive files.
    # (the stack's processes have a temporary folder of their own, see Stack._process_env)
    (directory,) = (stack.log_dir / "tmp").glob(f"e2e-svc-metrics-{worker.pid}-*")
    assert {"counter_archive.db", "histogram_archive.db"} <= {p.name for p in directory.iterdir()}
    # The runtime histogram has real timings; the oldest waiting record is as old as we made it.
    assert (prometheus.scalar(f'sum(celery_task_runtime_seconds_sum{{task="{TASK}"}})') or 0) > 0
    age = prometheus.scalar('task_backlog_oldest_age_seconds{status="queued"}')
    assert age is not None
    assert BACKLOG_AGE <= age < BACKLOG_AGE + DRAIN_LIMIT + STARTUP_LIMIT
    # The broker's queues, and the queues this worker consumes.
    lengths = prometheus.query("celery_queue_length")
    assert {key.split("queue=")[1].split(",")[0] for key in lengths} == {
        "default",
        "orders",
        "priority",
    }
    assert set(prometheus.query("celery_worker_consuming")) == {
        f"instance=127.0.0.1:{worker_port},job=worker,queue={queue}"
        for queue in ("default", "orders", "priority")
    }

    # The project's alert rules load and evaluate against these series without error.
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 8
    wait_until(
        lambda: [
            rule["health"] for group in prometheus.api("rules")["groups"] for rule in group["rules"]
        ],
        lambda health: health == ["ok"] * 8,
        limit=STARTUP_LIMIT,
        what="every alert rule to evaluate",
    )
    firing = prometheus.api("alerts")["alerts"]
    assert not [alert for alert in firing if alert["state"] == "firing"], firing


# Decodes each OTLP/HTTP export and prints one JSON line per span (run by the project's Python,
# which has opentelemetry-proto).
OTLP_RECEIVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
            service = next(a.value.string_value for a in resource.resource.attributes
                           if a.key == "service.name")
            for scope in resource.scope_spans:
                for span in scope.spans:
                    print(json.dumps({"service": service, "name": span.name, "kind": span.kind,
                                      "trace": span.trace_id.hex(), "span": span.span_id.hex(),
                                      "parent": span.parent_span_id.hex()}), flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
"""
SPAN_KIND = {"server": 2, "client": 3, "producer": 4, "consumer": 5}


def test_one_trace_runs_from_the_post_through_the_publish_to_the_task_and_its_sql(
    render: RenderFn, shared_stack: SharedStackFn, tmp_path: Path
) -> None:
    project = render()
    receiver_port = free_port()
    stack = shared_stack(project, TRACING__OTLP_ENDPOINT=f"http://127.0.0.1:{receiver_port}")
    script = tmp_path / "otlp_receiver.py"
    script.write_text(OTLP_RECEIVER)
    receiver = stack.spawn(
        "otlp-receiver", [project.bin("python"), str(script), str(receiver_port)]
    )
    api = stack.start_api()
    stack.start_worker(concurrency=2)
    with httpx.Client(base_url=api.url, timeout=10) as client:
        response = client.post("/orders", json={"product_id": "traced", "quantity": 1})
    assert response.status_code == 202, response.text

    def spans() -> list[dict[str, Any]]:
        return [json.loads(line) for line in receiver.log().splitlines() if line.startswith("{")]

    # Each process exports on its own schedule: wait for the API's spans and the worker's.
    needed = {"POST /orders", f"apply_async/{TASK}", f"run/{TASK}"}

    def all_exported(found: list[dict[str, Any]]) -> bool:
        return needed <= {span["name"] for span in found}

    found = wait_until(
        spans,
        all_exported,
        limit=STARTUP_LIMIT,
        what="the request's, the publish's and the task's spans",
        diagnostics=stack.diagnostics,
    )
    post = next(
        s for s in found if s["name"] == "POST /orders" and s["kind"] == SPAN_KIND["server"]
    )
    trace = [span for span in found if span["trace"] == post["trace"]]
    by_id = {span["span"]: span for span in trace}

    def ancestors(span: dict[str, Any]) -> list[str]:
        chain = []
        while span["parent"] in by_id:
            span = by_id[span["parent"]]
            chain.append(span["span"])
        return chain

    publish = next(s for s in trace if s["name"] == f"apply_async/{TASK}")
    run = next(s for s in trace if s["name"] == f"run/{TASK}")
    assert post["service"] == publish["service"] == "e2e-svc-api"
    assert run["service"] == "e2e-svc-worker", "the worker's pool process exported its spans"
    assert post["span"] in ancestors(publish)
    assert run["parent"] == publish["span"], "the run continues the publish"
    task_sql = [
        s for s in trace if s["kind"] == SPAN_KIND["client"] and run["span"] in ancestors(s)
    ]
    assert task_sql, trace
    assert {s["service"] for s in task_sql} == {"e2e-svc-worker"}
    # The task's log lines carry the trace.
    lines = [r for r in stack.worker_log_records() if r.get("trace_id") == post["trace"]]
    assert lines, "no worker log line carries the trace id"
    assert all(r["task_id"] == response.json()["data"]["task_id"] for r in lines if "task_id" in r)
