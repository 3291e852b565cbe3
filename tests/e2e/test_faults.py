"""Faults, against the real processes (API, worker, beat) of rendered projects.

Redis faults use a throwaway redis-server of the test's own (the default project: redis
broker and results, PostgreSQL, beat); RabbitMQ faults use the shared server in a vhost of
the test's own (through a proxy where the connection is cut). Faults: a worker SIGKILLed mid-run,
the broker down while orders are posted, a broker that lost its queue, the broker restarted
under a running worker, the database gone while a task runs, the same task delivered more
than once. See docs/faults.md for the results."""

import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis

from .conftest import INTERNAL_TOKEN, FaultStackFn, RenderFn, SharedStackFn
from .harness import (
    DRAIN_LIMIT,
    PG_ADMIN_URL,
    RABBIT_HOST,
    RABBIT_PORT,
    STARTUP_LIMIT,
    RedisServer,
    Stack,
    TcpProxy,
    WebhookReceiver,
    order_rows,
    post_orders,
    status_counts,
    task_statuses,
    wait_order_status,
    wait_task_status,
    wait_until,
)

pytestmark = pytest.mark.services

# The only timed assertion of the suite: the bound on a 503 from POST /orders.
PUBLISH_503_BOUND = 2.0
# How a Redis-broker fault gets every order back within a test's wait: Redis redelivers a
# task a dead worker had taken once the visibility timeout has passed (an hour by default;
# short here), and a message a worker had just popped when it was killed or its connection
# dropped is gone from Redis (the BRPOP window, kombu#305, celery#7950; seen once in five
# runs), so the relay publishes such queued-but-not-done orders again after 30 s.
REDIS_RECOVERY = {
    "CELERY__VISIBILITY_TIMEOUT": "10",
    "OUTBOX__REQUEUE_QUEUED_AFTER_SECONDS": "30",
}


# Celery 5.7.0 / kombu 5.7.0: on a lost Redis connection with tasks in flight, the consumer's
# cleanup (Connection.release -> Channel.close -> restore_unacked -> _connparams) meets a
# transport whose client is already None; the AttributeError is not a connection error, so
# the worker stops ("Unrecoverable error"). Seen in 2 of about 10 runs of faults 2 and 3.
KOMBU_RECONNECT_CRASH = "no attribute 'hostname'"


def xfail_if_worker_crashed_on_reconnect(stack: Stack) -> None:
    """Call last, once everything else is asserted. A worker that exited is acceptable only
    with the known kombu crash above, restarted by the supervisor (as a deployment's restart
    policy does): the test then reports XFAIL, not PASS, so the upstream bug stays visible."""
    if not stack.restarts:
        return
    for dead in stack.restarts:
        log = dead.log()
        if "Unrecoverable error" not in log or KOMBU_RECONNECT_CRASH not in log:
            pytest.fail(f"a worker exited for an unknown reason\n{dead.tail()}")
    pytest.xfail(
        f"{len(stack.restarts)} worker(s) exited on reconnecting (kombu 5.7 AttributeError "
        "'hostname' in restore_unacked) and were restarted; every order was still processed"
    )


def unprocessed_report(stack: Stack, broker: RedisServer | None) -> str:
    """Which orders are not processed, whether any worker received their task, and what the
    broker still holds: the evidence when an order goes missing."""
    rows = order_rows(stack.database_url)
    open_rows = {order: row for order, row in rows.items() if row["status"] != "processed"}
    logs = "".join(proc.log() for proc in stack.procs if proc.name == "worker")
    lines = [f"{len(open_rows)} of {len(rows)} orders not processed:"]
    for order, row in list(open_rows.items())[:20]:
        task = str(row["task_id"])
        lines.append(
            f"  order {order} status={row['status']} task={task} "
            f"received={logs.count(f'process_order[{task}] received')} "
            f"processing_lines={logs.count(order)}"
        )
    if broker is not None and broker.proc is not None:
        client = redis.Redis(host="127.0.0.1", port=broker.port, db=0)
        lines.append(
            f"  broker: LLEN orders={client.llen('orders')} "
            f"HLEN unacked={client.hlen('unacked')} ZCARD unacked_index="
            f"{client.zcard('unacked_index')}"
        )
        client.close()
    return "\n".join(lines) + "\n" + stack.diagnostics()


def wait_all_processed(stack: Stack, expected: int, broker: RedisServer | None = None) -> None:
    wait_until(
        lambda: status_counts(stack.database_url),
        # Every saved order (a POST retried after a transport error may have saved one more).
        lambda counts: set(counts) == {"processed"} and counts["processed"] >= expected,
        limit=DRAIN_LIMIT,
        what=f"{expected} processed orders",
        interval=0.5,
        diagnostics=lambda: unprocessed_report(stack, broker),
    )


def assert_all_processed_once(stack: Stack, order_ids: set[str], allowed_reruns: int = 0) -> None:
    """Every order is processed (whole: processed_at set, no error). The business work ran
    once per order, except at most `allowed_reruns` orders whose run was cut by the fault
    before its transaction committed (those ran again; their effect still counts once)."""
    rows = order_rows(stack.database_url)
    assert order_ids <= set(rows)
    half_done = {
        order: row
        for order, row in rows.items()
        if row["status"] != "processed" or row["processed_at"] is None or row["error"]
    }
    assert half_done == {}
    counts = stack.processing_counts()
    assert set(counts) == set(rows)
    reruns = {order: n for order, n in counts.items() if n > 1}
    assert len(reruns) <= allowed_reruns, reruns


def pool_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def kill_worker_mid_run(stack: Stack, broker: RedisServer | None) -> None:
    """300 orders. While the worker drains them, first one pool process is SIGKILLed (as the
    OOM killer would), then the whole worker (main process and pool); a new worker. Every
    order ends processed, whole, the work done once except for the tasks cut mid-run."""
    api = stack.start_api()
    stack.start_relay()
    concurrency = 2
    # The orders wait in the queue before the worker starts: a worker draining them while
    # they are still being posted can finish all 300 before the kills (seen on a fast run).
    posted = post_orders(api.url, 300)
    assert [p.status for p in posted] == [202] * 300
    order_ids = {p.body["data"]["order_id"] for p in posted}
    worker = stack.start_worker(concurrency=concurrency)

    def processed_lines(count: int) -> None:
        wait_until(
            lambda: worker.log().count('"processing order"'),
            lambda n: n >= count,
            limit=DRAIN_LIMIT,
            what=f"the worker to process {count} orders",
            interval=0.02,
            diagnostics=stack.diagnostics,
        )

    processed_lines(40)
    os.kill(pool_children(worker.pid)[0], signal.SIGKILL)  # the worker replaces it
    processed_lines(80)
    worker.kill_group(signal.SIGKILL)
    worker.popen.wait(10)
    processed_at_kill = status_counts(stack.database_url).get("processed", 0)
    assert processed_at_kill < 300, "the worker finished before it was killed"
    # Tasks were in flight: received by the killed worker, never finished by it.
    log = worker.log()
    received = set(re.findall(r"Task orders\.process_order\[([0-9a-f-]+)\] received", log))
    finished = set(re.findall(r"Task orders\.process_order\[([0-9a-f-]+)\] succeeded", log))
    in_flight = received - finished
    assert in_flight, "no task was running when the worker was killed"
    print(
        f"worker killed with {processed_at_kill}/300 processed, {len(in_flight)} in flight; "
        f"pool process killed before: {log.count('WorkerLostError')} WorkerLostError lines"
    )

    stack.start_worker(concurrency=concurrency)
    wait_all_processed(stack, 300, broker)
    assert_all_processed_once(stack, order_ids, allowed_reruns=len(in_flight) + 1)
    statuses = task_statuses(api.url, [p.body["data"]["task_id"] for p in posted])
    assert {answer[1]["status"] for answer in statuses.values()} == {"SUCCESS"}
    # A task cut by a killed pool process was put back, not failed: no failure alert.
    assert not [r for r in stack.worker_log_records() if r.get("alert") == "task_failure"]


def test_worker_killed_mid_run_loses_no_order(render: RenderFn, fault_stack: FaultStackFn) -> None:
    stack, broker = fault_stack(
        render(),
        **REDIS_RECOVERY,
        OUTBOX__RELAY_INTERVAL_SECONDS="2",
    )
    kill_worker_mid_run(stack, broker)


def test_worker_killed_mid_run_loses_no_order_rabbitmq(
    render: RenderFn, shared_stack: SharedStackFn
) -> None:
    # The server is not touched here, so the shared RabbitMQ serves, in a vhost of this test.
    # RabbitMQ takes back a dead consumer's unacknowledged messages at once: no timeout.
    kill_worker_mid_run(shared_stack(render(broker="rabbitmq", result_backend="postgresql")), None)


def test_broker_down_answers_503_in_time_and_loses_no_order(
    render: RenderFn, fault_stack: FaultStackFn
) -> None:
    # The broker keeps its data (AOF), as a production one does: what it held before the
    # outage is still there after it (losing it is the next test's fault).
    stack, broker = fault_stack(
        render(),
        persistent=True,
        **REDIS_RECOVERY,
        OUTBOX__STALE_AFTER_SECONDS="2",
        OUTBOX__RELAY_INTERVAL_SECONDS="1",
    )
    api = stack.start_api()
    stack.start_relay()
    # Supervised: see KOMBU_RECONNECT_CRASH (a deployment restarts a worker that exits).
    stack.start_worker(supervised=True)

    before = post_orders(api.url, 20, prefix="before")
    assert [p.status for p in before] == [202] * 20

    broker.stop(signal.SIGKILL)
    # One at a time, then many at once: every answer is a 503 within the bound, naming the
    # saved order, and the order is kept (pending) in the database.
    sequential = [post_orders(api.url, 1, prefix=f"down-{i}")[0] for i in range(5)]
    burst = post_orders(api.url, 30, concurrency=30, prefix="burst")
    during = sequential + burst
    slowest = max(p.elapsed for p in during)
    print(f"broker down: {len(during)} POSTs, slowest answer {slowest:.3f}s")
    for answer in during:
        assert answer.status == 503, answer.body
        assert answer.headers.get("retry-after"), answer.headers
        assert answer.body["order_id"]
        assert answer.body["task_id"]
        assert "broker unavailable" in answer.body["detail"]
        assert answer.elapsed <= PUBLISH_503_BOUND, f"503 after {answer.elapsed:.3f}s"
    rows = order_rows(stack.database_url)
    assert {rows[p.body["order_id"]]["status"] for p in during} == {"pending"}
    # A client holding a 503's task id is told "accepted, waiting" (not "unknown").
    with httpx.Client(base_url=api.url, timeout=10) as client:
        queued = client.get(f"/tasks/{during[0].body['task_id']}")
        assert (queued.status_code, queued.json()["status"]) == (200, "PENDING")

    broker.start()  # the same port; the relay must publish what the broker never got
    total = len(before) + len(during)
    wait_all_processed(stack, total, broker)
    order_ids = {p.body["data"]["order_id"] for p in before} | {p.body["order_id"] for p in during}
    assert_all_processed_once(stack, order_ids)
    task_ids = [p.body["task_id"] for p in during]
    wait_until(
        lambda: {a[1]["status"] for a in task_statuses(api.url, task_ids).values()},
        lambda states: states == {"SUCCESS"},
        limit=DRAIN_LIMIT,
        what="the relayed tasks to read SUCCESS",
        diagnostics=stack.diagnostics,
    )
    assert "outbox relay re-published orders" in stack.diagnostics_full()
    xfail_if_worker_crashed_on_reconnect(stack)


@pytest.mark.parametrize("beat", [True, False], ids=["relay-in-beat", "relay-in-api"])
def test_tasks_the_broker_lost_are_published_again(
    render: RenderFn, fault_stack: FaultStackFn, beat: bool
) -> None:
    # A Redis broker without persistence, restarted while tasks wait in its queue: they are
    # gone. (So is the one message a worker killed at the wrong moment had just popped.) The
    # relay publishes orders still `queued` after OUTBOX__REQUEUE_QUEUED_AFTER_SECONDS again.
    stack, broker = fault_stack(
        render(beat=beat),
        OUTBOX__REQUEUE_QUEUED_AFTER_SECONDS="5",
        OUTBOX__RELAY_INTERVAL_SECONDS="1",
    )
    api = stack.start_api()
    posted = post_orders(api.url, 20, prefix="lost")  # no worker yet: the tasks wait
    assert [p.status for p in posted] == [202] * 20
    wait_until(  # the API records `queued` in batches, a moment after its 202
        lambda: status_counts(stack.database_url),
        lambda counts: counts == {"queued": 20},
        limit=STARTUP_LIMIT,
        what="all 20 orders to be marked queued",
        interval=0.05,
    )
    broker.stop(signal.SIGKILL)
    broker.start()
    client = redis.Redis(host="127.0.0.1", port=broker.port, db=0)
    assert client.llen("orders") == 0  # every waiting task message is gone
    client.close()

    stack.start_relay()
    stack.start_worker()
    after = post_orders(api.url, 5, prefix="after")  # the API publishes again at once
    assert [p.status for p in after] == [202] * 5
    wait_all_processed(stack, 25, broker)
    order_ids = {p.body["data"]["order_id"] for p in posted + after}
    assert_all_processed_once(stack, order_ids)
    assert "outbox relay re-published orders" in stack.diagnostics_full()


def test_broker_restart_under_a_running_worker(render: RenderFn, fault_stack: FaultStackFn) -> None:
    # A production Redis broker keeps its data (AOF); a broker that forgets its queues on a
    # restart loses queued tasks whatever the worker does (see docs/faults.md).
    stack, broker = fault_stack(
        render(),
        persistent=True,
        **REDIS_RECOVERY,
        OUTBOX__RELAY_INTERVAL_SECONDS="2",
    )
    api = stack.start_api()
    stack.start_relay()
    # Supervised only so that the known kombu crash (see KOMBU_RECONNECT_CRASH) ends in an
    # XFAIL with every order checked; without it, the worker reconnects by itself: PASS.
    worker = stack.start_worker(supervised=True)

    first = post_orders(api.url, 200, prefix="first")
    assert [p.status for p in first] == [202] * 200
    wait_until(
        lambda: status_counts(stack.database_url).get("processed", 0),
        lambda n: n >= 30,
        limit=DRAIN_LIMIT,
        what="the worker to process some orders",
        interval=0.05,
    )
    broker.stop(signal.SIGTERM)
    time.sleep(1)  # down for a moment, so the worker sees its connection drop
    broker.start()

    # The worker reconnects by itself (it is never restarted here) and work continues. A
    # POST racing the API's own reconnect may get the designed 503 (order kept, relayed).
    after = post_orders(api.url, 50, concurrency=10, prefix="after")
    assert {p.status for p in after} <= {202, 503}, [p.body for p in after]
    assert sum(p.status == 202 for p in after) >= 40, [p.body for p in after]
    wait_all_processed(stack, 250, broker)
    order_ids = {p.body["data"]["order_id"] for p in first} | {p.order_id for p in after}
    assert_all_processed_once(stack, order_ids, allowed_reruns=2)
    xfail_if_worker_crashed_on_reconnect(stack)
    # No restart: the very worker started above reconnected by itself.
    assert worker.alive(), worker.tail()
    assert len([p for p in stack.procs if p.name == "worker"]) == 1


def _db_proxy_url(database_url: str, proxy: TcpProxy) -> str:
    return database_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


def test_database_down_while_a_task_runs_retries_then_fails_and_alerts(
    render: RenderFn, fault_stack: FaultStackFn
) -> None:
    webhook = WebhookReceiver()
    proxy = TcpProxy("127.0.0.1", int(PG_ADMIN_URL.split(":")[-1].split("/")[0]))
    proxy.start()
    try:
        stack, _ = fault_stack(render(), ALERTS__WEBHOOK_URL=webhook.url)
        api = stack.start_api()  # the API reaches PostgreSQL directly
        # The worker reaches it through the proxy, which the test cuts.
        worker_env = {
            "DATABASE__URL": _db_proxy_url(stack.database_url, proxy),
            "TASKS__MAX_RETRIES": "3",
            "TASKS__RETRY_BACKOFF_INITIAL": "0.5",
            "TASKS__RETRY_JITTER": "0.1",
        }
        worker = stack.start_worker(worker_env)
        with httpx.Client(base_url=api.url, timeout=10) as client:
            ok = client.post("/orders", json={"product_id": "warm", "quantity": 1}).json()["data"]
            wait_all_processed(stack, 1)  # the worker's pool holds live connections now

            proxy.cut()
            doomed = client.post("/orders", json={"product_id": "doomed", "quantity": 1})
            assert doomed.status_code == 202
            order_id, task_id = doomed.json()["data"]["order_id"], doomed.json()["data"]["task_id"]
            wait_task_status(
                client,
                task_id,
                lambda status: status == "FAILURE",
                stack,
                limit=DRAIN_LIMIT,
                what="the task to fail after its retries",
            )
            # The database is still down for the worker: the order is not final yet.
            assert order_rows(stack.database_url)[order_id]["status"] == "queued"
            proxy.restore()
            wait_order_status(stack, order_id, "failed", what="the order to be marked failed")
            assert "OperationalError" in (order_rows(stack.database_url)[order_id]["error"] or "")
            assert order_rows(stack.database_url)[ok["order_id"]]["status"] == "processed"
            public = client.get(f"/tasks/{task_id}")
            assert public.json() == {"task_id": task_id, "status": "FAILURE"}
            assert "Traceback" not in public.text
            # The traceback is there, for internal callers only.
            assert client.get(f"/tasks/{task_id}/detail").status_code == 401
            detail = client.get(
                f"/tasks/{task_id}/detail", headers={"X-Internal-Token": INTERNAL_TOKEN}
            ).json()
            assert "Traceback" in (detail["traceback"] or "")
            assert detail["order_status"] == "failed"

        records = [r for r in stack.worker_log_records() if r.get("task_id") == task_id]
        # Retried with exponential backoff: 0.5, 1, 2 s (+ up to 0.1 s jitter).
        countdowns = [
            r["countdown"] for r in records if r["message"] == "transient error; retrying"
        ]
        assert len(countdowns) == 3, countdowns
        for attempt, countdown in enumerate(countdowns):
            assert 0.5 * 2**attempt <= countdown <= 0.5 * 2**attempt + 0.1, countdowns
        # The structured alert line, once.
        alerts = [r for r in records if r.get("alert") == "task_failure"]
        assert len(alerts) == 1, alerts
        alert = alerts[0]
        assert alert["level"] == "ERROR"
        assert alert["task_name"] == "orders.process_order"
        assert alert["exception_type"] == "OperationalError"
        assert alert["retries"] == 3
        # The same alert, received by the webhook.
        wait_until(
            lambda: [w for w in webhook.received if w.get("task_id") == task_id],
            bool,
            limit=30,
            what="the webhook call",
        )
        hook = next(w for w in webhook.received if w.get("task_id") == task_id)
        assert hook["alert"] == "task_failure"
        assert hook["exception_type"] == "OperationalError"
        assert hook["task_name"] == "orders.process_order"
        assert worker.alive()
    finally:
        proxy.cut()
        webhook.close()


def test_duplicate_delivery_processes_the_order_once(
    render: RenderFn, fault_stack: FaultStackFn
) -> None:
    stack, _ = fault_stack(render())
    api = stack.start_api()
    with httpx.Client(base_url=api.url, timeout=10) as client:
        accepted = client.post("/orders", json={"product_id": "dup", "quantity": 2})
    assert accepted.status_code == 202
    order_id, task_id = accepted.json()["data"]["order_id"], accepted.json()["data"]["task_id"]

    # The broker now holds the task once; publish the very same task (same id, same
    # arguments) three more times, as a redelivery or a relay re-publish would.
    pkg = stack.project.package
    stack.python(
        f"from {pkg}.tasks.orders import process_order, process_order_args\n"
        "import uuid\n"
        "for _ in range(3):\n"
        f"    process_order.apply_async(args=process_order_args(uuid.UUID({order_id!r})),"
        f" task_id={task_id!r})\n"
    )
    # Four processes take the four copies at once.
    stack.start_worker(concurrency=4)
    wait_all_processed(stack, 1)
    wait_until(
        lambda: Counter(
            r["message"] for r in stack.worker_log_records() if r.get("task_id") == task_id
        ),
        lambda seen: seen["processing order"] + seen["order already final; nothing to do"] == 4,
        limit=DRAIN_LIMIT,
        what="all four deliveries to run",
        diagnostics=stack.diagnostics,
    )
    assert stack.processing_counts() == {order_id: 1}
    row = order_rows(stack.database_url)[order_id]
    assert row["status"] == "processed"
    statuses = task_statuses(api.url, [task_id])
    assert statuses[task_id][1]["status"] == "SUCCESS"
    succeeded = [
        r
        for r in stack.worker_log_records()
        if r.get("message", "").startswith(f"Task orders.process_order[{task_id}] succeeded")
    ]
    assert len(succeeded) == 4  # every delivery ended SUCCESS; one of them did the work


def test_rabbitmq_connection_cut_then_restored(
    render: RenderFn, shared_stack: SharedStackFn
) -> None:
    # RabbitMQ is shared, so it is not stopped: every process reaches it through a proxy of
    # this test, which cuts all their connections (reset) and refuses new ones, then returns.
    proxy = TcpProxy(RABBIT_HOST, RABBIT_PORT)
    proxy.start()
    try:
        stack = shared_stack(
            render(broker="rabbitmq", result_backend="postgresql"),
            RABBITMQ__PORT=str(proxy.port),
            OUTBOX__STALE_AFTER_SECONDS="2",
            OUTBOX__RELAY_INTERVAL_SECONDS="1",
        )
        api = stack.start_api()
        stack.start_relay()
        worker = stack.start_worker()
        before = post_orders(api.url, 50, prefix="before")
        assert [p.status for p in before] == [202] * 50

        proxy.cut()
        during = post_orders(api.url, 20, concurrency=10, prefix="cut")
        slowest = max(p.elapsed for p in during)
        print(f"rabbitmq cut: {len(during)} POSTs, slowest answer {slowest:.3f}s")
        for answer in during:
            assert answer.status == 503, answer.body
            assert answer.elapsed <= PUBLISH_503_BOUND, f"503 after {answer.elapsed:.3f}s"
        proxy.restore()

        wait_all_processed(stack, 70)
        assert worker.alive(), worker.tail()
        order_ids = {p.body["data"]["order_id"] for p in before} | {
            p.body["order_id"] for p in during
        }
        assert_all_processed_once(stack, order_ids, allowed_reruns=2)
        assert len([p for p in stack.procs if p.name == "worker"]) == 1
    finally:
        proxy.cut()
