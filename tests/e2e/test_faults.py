"""Faults, against the real processes (API, worker, beat) of rendered projects, on both durable
tasks: the order example (`POST /orders`) and a task added as a user would
(`POST /invoices`: a task added with `fastcelery add task`, see projects.add_invoice_task).

Redis faults use a throwaway redis-server of the test's own; RabbitMQ faults use the shared
server in a vhost of the test's own (through a proxy where the connection is cut). Faults: a
worker SIGKILLed mid-run, the broker down while tasks are posted, a broker that lost its
queue, the broker restarted under a running worker, the database gone while tasks run
(shorter and longer than the retry window), the same task delivered more than once, a task
that kills its worker every time. See docs/faults.md for the results."""

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.support import wait_until

from .conftest import INTERNAL_TOKEN, FaultStackFn, RenderFn, SharedStackFn
from .db import order_rows, record_counts, task_records
from .http_calls import Posted, post_invoices, post_orders, task_statuses
from .servers import PG_ADMIN_URL, RABBIT_HOST, RABBIT_PORT, RedisServer, TcpProxy, WebhookReceiver
from .stack import DRAIN_LIMIT, STARTUP_LIMIT, Stack

pytestmark = pytest.mark.services

# Requests never wait for the broker: a generous bound on any answer while it is down.
ANSWER_BOUND = 2.0
# How a Redis-broker fault gets every task back within a test's wait: Redis redelivers a
# task a dead worker had taken once the visibility timeout has passed (10 min by default;
# short here, with time limits below it), and a message a worker had just popped when it was
# killed or its connection dropped is gone from Redis (the BRPOP window, kombu#305,
# celery#7950; seen once in five runs), so the relay publishes such queued-but-not-done
# records again after 30 s.
REDIS_RECOVERY = {
    "CELERY__VISIBILITY_TIMEOUT": "15",
    "CELERY__TASK_TIME_LIMIT": "8",
    "CELERY__TASK_SOFT_TIME_LIMIT": "6",
    "TASKS__RETRY_BACKOFF_MAX": "2",
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
        "'hostname' in restore_unacked) and were restarted; every task was still processed"
    )


def unfinished_report(stack: Stack, broker: RedisServer | None) -> str:
    """Which task records are not finished, whether any worker received them, and what the
    broker still holds: the evidence when a task goes missing."""
    records = task_records(stack.database_url)
    waiting = {task: row for task, row in records.items() if row["status"] != "succeeded"}
    logs = "".join(proc.log() for proc in stack.procs if proc.name == "worker")
    lines = [f"{len(waiting)} of {len(records)} tasks not succeeded:"]
    for task, row in list(waiting.items())[:20]:
        lines.append(
            f"  {row['name']} {task} status={row['status']} republishes={row['republishes']} "
            f"redeliveries={row['redeliveries']} received={logs.count(f'[{task}] received')}"
        )
    if broker is not None and broker.proc is not None:
        client = redis.Redis(host="127.0.0.1", port=broker.port, db=0)
        lines.append(
            f"  broker: LLEN orders={client.llen('orders')} default={client.llen('default')} "
            f"HLEN unacked={client.hlen('unacked')}"
        )
        client.close()
    return "\n".join(lines) + "\n" + stack.diagnostics()


def wait_all_succeeded(stack: Stack, expected: int, broker: RedisServer | None = None) -> None:
    """Every saved task record (a POST retried after a transport error may have saved one
    more) succeeded."""
    wait_until(
        lambda: record_counts(stack.database_url),
        lambda counts: set(counts) == {"succeeded"} and counts["succeeded"] >= expected,
        limit=DRAIN_LIMIT,
        what=f"{expected} succeeded tasks",
        interval=0.5,
        diagnostics=lambda: unfinished_report(stack, broker),
    )


def wait_succeeded(stack: Stack, at_least: int, what: str) -> None:
    wait_until(
        lambda: record_counts(stack.database_url).get("succeeded", 0),
        lambda n: n >= at_least,
        limit=DRAIN_LIMIT,
        what=what,
        diagnostics=stack.diagnostics,
    )


def assert_done_once(
    stack: Stack, orders: list[Posted], invoices: list[Posted], allowed_reruns: int = 0
) -> None:
    """Every order is processed whole and every invoice sent; the body of each ran once,
    except at most `allowed_reruns` cut by the fault before their transaction committed
    (those ran again; their effect in the database still counts once)."""
    rows = order_rows(stack.database_url)
    assert {p.order_id for p in orders} <= set(rows)
    half_done = {
        order: row
        for order, row in rows.items()
        if row["status"] != "processed" or row["processed_at"] is None or row["error"]
    }
    assert half_done == {}
    order_runs = stack.processing_counts()
    assert set(order_runs) == set(rows)
    invoice_runs = stack.invoice_counts()
    assert {p.data["invoice_id"] for p in invoices} <= set(invoice_runs)
    reruns = {key: n for key, n in (order_runs + invoice_runs).items() if n > 1}
    assert len(reruns) <= allowed_reruns, reruns
    records = task_records(stack.database_url)
    assert {p.task_id for p in orders + invoices} <= set(records)


def pool_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def kill_worker_mid_run(stack: Stack, broker: RedisServer | None) -> None:
    """300 orders and 100 invoices. While the worker drains them, first one pool process is
    SIGKILLed (as the OOM killer would), then the whole worker (main process and pool); a new
    worker. Every task ends succeeded, whole, its work done once except for the tasks cut."""
    api = stack.start_api()
    concurrency = 2
    # The tasks wait in the queue before the worker starts: a worker draining them while
    # they are still being posted can finish all of them before the kills (seen on a fast run).
    orders = post_orders(api.url, 300)
    invoices = post_invoices(api.url, 100)
    assert {p.status for p in orders + invoices} == {202}
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

    def in_flight_now() -> set[str]:
        """Tasks received by the worker and not finished, by its log."""
        log = worker.log()
        received = set(re.findall(r"Task \w+\.\w+\[([0-9a-f-]+)\] received", log))
        finished = set(re.findall(r"Task \w+\.\w+\[([0-9a-f-]+)\] succeeded", log))
        return received - finished

    # Killed while tasks are in flight: a task takes milliseconds, so the worker is frozen
    # (SIGSTOP) while its log is read, and let go again until the log shows one running.
    frozen_until = time.monotonic() + DRAIN_LIMIT
    worker.kill_group(signal.SIGSTOP)
    while not in_flight_now() and time.monotonic() < frozen_until:
        worker.kill_group(signal.SIGCONT)
        time.sleep(0.005)
        worker.kill_group(signal.SIGSTOP)
    worker.kill_group(signal.SIGKILL)
    worker.popen.wait(10)
    done_at_kill = record_counts(stack.database_url).get("succeeded", 0)
    assert done_at_kill < 400, "the worker finished before it was killed"
    # Tasks were in flight: received by the killed worker, never finished by it.
    log = worker.log()
    in_flight = in_flight_now()
    assert in_flight, "no task was running when the worker was killed"
    print(
        f"worker killed with {done_at_kill}/400 done, {len(in_flight)} in flight; "
        f"pool process killed before: {log.count('WorkerLostError')} WorkerLostError lines"
    )

    restarted = time.monotonic()
    stack.start_worker(concurrency=concurrency)
    wait_all_succeeded(stack, 400, broker)
    print(f"all 400 succeeded {time.monotonic() - restarted:.1f}s after the new worker started")
    assert_done_once(stack, orders, invoices, allowed_reruns=len(in_flight) + 1)
    statuses = task_statuses(api.url, [p.task_id for p in orders + invoices])
    assert {answer[1]["status"] for answer in statuses.values()} == {"SUCCESS"}
    # A task cut by a killed pool process was put back, not failed: no record failed or dead.
    assert set(record_counts(stack.database_url)) == {"succeeded"}


def test_worker_killed_mid_run_loses_no_task(render: RenderFn, fault_stack: FaultStackFn) -> None:
    stack, broker = fault_stack(render(), **REDIS_RECOVERY, OUTBOX__RELAY_INTERVAL_SECONDS="2")
    kill_worker_mid_run(stack, broker)


def test_worker_killed_mid_run_loses_no_task_rabbitmq(
    render: RenderFn, shared_stack: SharedStackFn
) -> None:
    # The server is not touched here, so the shared RabbitMQ serves, in a vhost of this test.
    # RabbitMQ takes back a dead consumer's unacknowledged messages at once: no timeout.
    kill_worker_mid_run(shared_stack(render(broker="rabbitmq", result_backend="postgresql")), None)


def test_broker_down_loses_no_task_with_only_the_api_and_a_worker(
    render: RenderFn, fault_stack: FaultStackFn
) -> None:
    """The seed's two processes, API and worker (no beat): tasks accepted while the broker is
    down are answered at once, kept in the database, and run once the broker is back."""
    # The broker keeps its data (AOF), as a production one does: what it held before the
    # outage is still there after it (losing it is the next test's fault).
    stack, broker = fault_stack(render(beat=False), persistent=True, **REDIS_RECOVERY)
    api = stack.start_api()
    # Supervised: see KOMBU_RECONNECT_CRASH (a deployment restarts a worker that exits).
    stack.start_worker(supervised=True)

    before = post_orders(api.url, 20, prefix="before") + post_invoices(api.url, 5, prefix="b")
    assert {p.status for p in before} == {202}

    broker.stop(signal.SIGKILL)
    # One at a time, then many at once: every answer is a 202 within the bound; the task is
    # saved, pending, and its id answers PENDING (accepted, waiting), not "unknown".
    sequential = [post_orders(api.url, 1, prefix=f"down-{i}")[0] for i in range(5)]
    burst = post_orders(api.url, 30, concurrency=30, prefix="burst")
    invoices_during = post_invoices(api.url, 10, prefix="d")
    during = sequential + burst + invoices_during
    slowest = max(p.elapsed for p in during)
    print(f"broker down: {len(during)} POSTs, slowest answer {slowest:.3f}s")
    for answer in during:
        assert answer.status == 202, answer.body
        assert answer.elapsed <= ANSWER_BOUND, f"answered after {answer.elapsed:.3f}s"
    records = task_records(stack.database_url)
    assert {records[p.task_id]["status"] for p in during} == {"pending"}
    with httpx.Client(base_url=api.url, timeout=10) as client:
        waiting = client.get(f"/tasks/{during[0].task_id}")
        assert (waiting.status_code, waiting.json()["status"]) == (200, "PENDING")
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert health["checks"]["broker"].startswith("unavailable")

    broker.start()  # the same port; the API's relay publishes what the broker never got
    back = time.monotonic()
    wait_all_succeeded(stack, len(before) + len(during), broker)
    print(f"every task succeeded {time.monotonic() - back:.1f}s after the broker was back")
    orders = [p for p in before + during if "order_id" in p.data]
    invoices = [p for p in before + during if "invoice_id" in p.data]
    # A task running when the broker went is cancelled (its transaction with it) and runs
    # again once the broker is back: at most one per pool process.
    assert_done_once(stack, orders, invoices, allowed_reruns=2)
    assert "relay published tasks again" in stack.diagnostics_full()
    xfail_if_worker_crashed_on_reconnect(stack)


@pytest.mark.parametrize("beat", [True, False], ids=["relay-in-beat-and-api", "relay-in-api"])
def test_tasks_the_broker_lost_are_published_again(
    render: RenderFn, fault_stack: FaultStackFn, beat: bool
) -> None:
    # A Redis broker without persistence, restarted while tasks wait in its queue: they are
    # gone. (So is the one message a worker killed at the wrong moment had just popped.) The
    # relay publishes tasks still `queued` after OUTBOX__REQUEUE_QUEUED_AFTER_SECONDS again.
    stack, broker = fault_stack(
        render(beat=beat),
        OUTBOX__REQUEUE_QUEUED_AFTER_SECONDS="5",
        OUTBOX__RELAY_INTERVAL_SECONDS="1",
    )
    api = stack.start_api(
        {"OUTBOX__RELAY_IN_API": "false"} if beat else None  # beat's relay alone, there
    )
    posted = post_orders(api.url, 20, prefix="lost")  # no worker yet: the tasks wait
    invoices = post_invoices(api.url, 5, prefix="lost")
    assert {p.status for p in posted + invoices} == {202}
    wait_until(  # the API records `queued` in batches, a moment after its 202
        lambda: record_counts(stack.database_url),
        lambda counts: counts == {"queued": 25},
        limit=STARTUP_LIMIT,
        what="all 25 tasks to be marked queued",
        interval=0.05,
    )
    broker.stop(signal.SIGKILL)
    broker.start()
    client = redis.Redis(host="127.0.0.1", port=broker.port, db=0)
    assert client.llen("orders") == client.llen("default") == 0  # every message is gone
    client.close()

    stack.start_relay()
    stack.start_worker()
    after = post_orders(api.url, 5, prefix="after")  # the API publishes again at once
    assert [p.status for p in after] == [202] * 5
    wait_all_succeeded(stack, 30, broker)
    assert_done_once(stack, posted + after, invoices)
    assert "relay published tasks again" in stack.diagnostics_full()


def test_broker_restart_under_a_running_worker(render: RenderFn, fault_stack: FaultStackFn) -> None:
    # A production Redis broker keeps its data (AOF); a broker that forgets its queues on a
    # restart loses queued tasks whatever the worker does (see docs/faults.md).
    stack, broker = fault_stack(
        render(), persistent=True, **REDIS_RECOVERY, OUTBOX__RELAY_INTERVAL_SECONDS="2"
    )
    api = stack.start_api()
    stack.start_relay()
    # Supervised only so that the known kombu crash (see KOMBU_RECONNECT_CRASH) ends in an
    # XFAIL with every task checked; without it, the worker reconnects by itself: PASS.
    worker = stack.start_worker(supervised=True)

    first = post_orders(api.url, 200, prefix="first") + post_invoices(api.url, 50, prefix="f")
    assert {p.status for p in first} == {202}
    wait_until(
        lambda: record_counts(stack.database_url).get("succeeded", 0),
        lambda n: n >= 30,
        limit=DRAIN_LIMIT,
        what="the worker to process some tasks",
        interval=0.05,
    )
    broker.stop(signal.SIGTERM)
    time.sleep(1)  # down for a moment, so the worker sees its connection drop
    broker.start()

    # The worker reconnects by itself (it is never restarted here) and work continues.
    after = post_orders(api.url, 50, concurrency=10, prefix="after")
    assert {p.status for p in after} == {202}, [p.body for p in after]
    wait_all_succeeded(stack, 300, broker)
    posted = first + after
    orders = [p for p in posted if "order_id" in p.data]
    assert_done_once(stack, orders, [p for p in posted if "invoice_id" in p.data], 2)
    xfail_if_worker_crashed_on_reconnect(stack)
    # No restart: the very worker started above reconnected by itself.
    assert worker.alive(), worker.tail()
    assert len([p for p in stack.procs if p.name == "worker"]) == 1


def _db_proxy_url(database_url: str, proxy: TcpProxy) -> str:
    return database_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


def _pg_proxy() -> TcpProxy:
    proxy = TcpProxy("127.0.0.1", int(PG_ADMIN_URL.split(":")[-1].split("/")[0]))
    proxy.start()
    return proxy


def test_a_database_outage_shorter_than_the_retry_window_delays_tasks_without_failing_them(
    render: RenderFn, fault_stack: FaultStackFn
) -> None:
    """The worker loses the database for longer than the seed's three retries would last
    (~9 s); tasks retry with backoff inside the window and all succeed once it is back."""
    webhook = WebhookReceiver()
    proxy = _pg_proxy()
    try:
        stack, _ = fault_stack(render(), ALERTS__WEBHOOK_URL=webhook.url)
        api = stack.start_api()  # the API reaches PostgreSQL directly
        worker_env = {  # the worker reaches it through the proxy, which the test cuts
            "DATABASE__URL": _db_proxy_url(stack.database_url, proxy),
            "TASKS__RETRY_BACKOFF_INITIAL": "0.5",
            "TASKS__RETRY_BACKOFF_MAX": "2",
            "TASKS__RETRY_JITTER": "0.1",
            "TASKS__TRANSIENT_RETRY_WINDOW_SECONDS": "120",
        }
        stack.start_worker(worker_env)
        warm = post_orders(api.url, 1, prefix="warm")
        wait_all_succeeded(stack, 1)  # the worker's pool holds live connections now

        proxy.cut()
        cut_at = time.monotonic()
        orders = post_orders(api.url, 10, prefix="outage")
        invoices = post_invoices(api.url, 5, prefix="outage")
        wait_until(  # the tasks are retrying
            lambda: sum('"retrying"' in line for line in stack.diagnostics_full().splitlines()),
            lambda n: n >= 10,
            limit=DRAIN_LIMIT,
            what="the tasks to retry",
        )
        time.sleep(max(0.0, 12 - (time.monotonic() - cut_at)))  # longer than 3 retries
        assert set(record_counts(stack.database_url)) <= {"succeeded", "queued"}
        proxy.restore()
        restored = time.monotonic()
        wait_all_succeeded(stack, 16)
        print(
            f"outage of {restored - cut_at:.1f}s: every task succeeded "
            f"{time.monotonic() - restored:.1f}s after the database was back"
        )
        assert_done_once(stack, warm + orders, invoices)
        assert not [r for r in stack.worker_log_records() if r.get("alert")]
        assert webhook.received == []
    finally:
        proxy.cut()
        webhook.close()


def test_a_database_outage_longer_than_the_window_fails_tasks_alerts_once_and_redrive_runs_them(
    render: RenderFn, fault_stack: FaultStackFn
) -> None:
    webhook = WebhookReceiver()
    proxy = _pg_proxy()
    try:
        stack, _ = fault_stack(render(), ALERTS__WEBHOOK_URL=webhook.url)
        api = stack.start_api()
        worker_env = {
            "DATABASE__URL": _db_proxy_url(stack.database_url, proxy),
            "TASKS__RETRY_BACKOFF_INITIAL": "0.5",
            "TASKS__RETRY_BACKOFF_MAX": "1",
            "TASKS__RETRY_JITTER": "0.1",
            "TASKS__TRANSIENT_RETRY_WINDOW_SECONDS": "3",
        }
        worker = stack.start_worker(worker_env)
        warm = post_orders(api.url, 1, prefix="warm")
        wait_all_succeeded(stack, 1)

        proxy.cut()
        doomed = post_orders(api.url, 5, prefix="doomed")
        doomed_invoices = post_invoices(api.url, 2, prefix="doomed")
        task_ids = [p.task_id for p in doomed + doomed_invoices]
        # Each task retries through the window, then fails; the database is still down for
        # the worker, so the failure is recorded through the broker once it is back.
        wait_until(
            lambda: sum(r.get("alert") == "task_failure" for r in stack.worker_log_records()),
            lambda n: n >= len(task_ids),
            limit=DRAIN_LIMIT,
            what="every task to fail after its retries",
            diagnostics=stack.diagnostics,
        )
        records = task_records(stack.database_url)
        assert {records[t]["status"] for t in task_ids} == {"queued"}
        assert {order_rows(stack.database_url)[p.order_id]["status"] for p in doomed} == {"pending"}
        proxy.restore()

        wait_until(
            lambda: {task_records(stack.database_url)[t]["status"] for t in task_ids},
            lambda statuses: statuses == {"failed"},
            limit=DRAIN_LIMIT,
            what="the failures to be recorded",
            diagnostics=stack.diagnostics,
        )
        # The order's view agrees with the task's (one transaction).
        rows = order_rows(stack.database_url)
        assert {rows[p.order_id]["status"] for p in doomed} == {"failed"}
        assert all("OperationalError" in (rows[p.order_id]["error"] or "") for p in doomed)
        # Alerts: every failure logged, but one webhook call per cause (task and exception).
        wait_until(lambda: len(webhook.received), bool, limit=30, what="the webhook call")
        causes = {(w["task_name"], w["exception_type"]) for w in webhook.received}
        assert len(webhook.received) == len(causes) <= 2, webhook.received
        assert ("orders.process_order", "OperationalError") in causes

        with httpx.Client(base_url=api.url, timeout=10) as client:
            public = client.get(f"/tasks/{task_ids[0]}")
            assert public.json() == {"task_id": task_ids[0], "status": "FAILURE"}
            assert "Traceback" not in public.text
            detail = client.get(
                f"/tasks/{task_ids[0]}/detail", headers={"X-Internal-Token": INTERNAL_TOKEN}
            ).json()
            assert "OperationalError" in (detail["traceback"] or "")
            assert detail["attempts"] > 3  # time-based: more tries than the seed's three
            # The operator redrives the failed tasks: they run, with their ids, once.
            redrive = client.post(
                "/tasks/redrive",
                json={"status": "failed"},
                headers={"X-Internal-Token": INTERNAL_TOKEN},
            )
            assert redrive.status_code == 200, redrive.text
            assert set(redrive.json()["task_ids"]) == set(task_ids)
        wait_all_succeeded(stack, 8)
        assert_done_once(stack, warm + doomed, doomed_invoices)
        assert worker.alive()
    finally:
        proxy.cut()
        webhook.close()


def test_duplicate_deliveries_do_the_work_once(render: RenderFn, fault_stack: FaultStackFn) -> None:
    stack, _ = fault_stack(render())
    api = stack.start_api()
    orders = post_orders(api.url, 1, prefix="dup")
    invoices = post_invoices(api.url, 1, prefix="dup")
    # The broker now holds each task once; publish the very same tasks (same ids, same
    # arguments) three more times each, as a redelivery or a relay re-publish would.
    pkg = stack.project.package
    stack.python(
        f"from {pkg}.core.celery import celery_app\n"
        f"from {pkg}.durable import TaskRecord\n"
        f"from {pkg}.core.database import get_sync_session\n"
        "with get_sync_session() as session:\n"
        "    for record in session.query(TaskRecord).all():\n"
        "        for _ in range(3):\n"
        "            celery_app.send_task(record.name, args=record.args, task_id=str(record.id))\n"
    )
    # Four processes take the four copies of each at once.
    stack.start_worker(concurrency=4)
    wait_all_succeeded(stack, 2)
    finished = re.compile(r"Task \w+\.\w+\[([0-9a-f-]+)\] succeeded")
    wait_until(
        lambda: len(finished.findall(stack.diagnostics_full())),
        lambda n: n >= 8,
        limit=DRAIN_LIMIT,
        what="all eight deliveries to run",
        diagnostics=stack.diagnostics,
    )
    assert stack.processing_counts() == {orders[0].order_id: 1}
    assert stack.invoice_counts() == {invoices[0].data["invoice_id"]: 1}
    statuses = task_statuses(api.url, [orders[0].task_id, invoices[0].task_id])
    assert {answer[1]["status"] for answer in statuses.values()} == {"SUCCESS"}


def assert_dead_lettered(stack: Stack, client: httpx.Client, task_id: str) -> None:
    """Waits until the poison task is `dead` after TASKS__MAX_REDELIVERIES (3) + 1 deliveries."""
    wait_until(
        lambda: task_records(stack.database_url)[task_id]["status"],
        lambda status: status == "dead",
        limit=DRAIN_LIMIT,
        what="the poison task to be dead-lettered",
        diagnostics=stack.diagnostics,
    )
    record = task_records(stack.database_url)[task_id]
    assert record["redeliveries"] == 4
    assert "crash its worker" in record["error"]
    assert client.get(f"/tasks/{task_id}").json()["status"] == "FAILURE"


def test_a_task_that_kills_its_worker_is_dead_lettered(
    render: RenderFn, fault_stack: FaultStackFn
) -> None:
    """A poison message: every delivery kills the worker process running it. After
    TASKS__MAX_REDELIVERIES it is marked dead and alerted, and the worker serves the rest."""
    webhook = WebhookReceiver()
    try:
        stack, _ = fault_stack(render(), ALERTS__WEBHOOK_URL=webhook.url, **REDIS_RECOVERY)
        api = stack.start_api()
        worker = stack.start_worker(concurrency=2)
        with httpx.Client(base_url=api.url, timeout=10) as client:
            poison = client.post("/invoices", json={"invoice_id": "poison", "crash": True})
            assert poison.status_code == 202
            task_id = poison.json()["data"]["task_id"]
            posted_at = time.monotonic()
            assert_dead_lettered(stack, client, task_id)
            print(f"dead-lettered {time.monotonic() - posted_at:.1f}s after it was posted")
        wait_until(
            lambda: [w for w in webhook.received if w["alert"] == "task_dead"],
            bool,
            limit=30,
            what="the task_dead alert",
        )
        # The worker goes on serving other tasks.
        after = post_orders(api.url, 5, prefix="after-poison")
        wait_succeeded(stack, 5, "the other tasks to run")
        assert set(stack.processing_counts()) == {p.order_id for p in after}
        assert worker.alive()
    finally:
        webhook.close()


def test_a_task_that_kills_its_worker_in_a_batch_is_dead_lettered_alone(
    render: RenderFn, fault_stack: FaultStackFn
) -> None:
    """A poison task between good ones in one batch message: the batch comes back when the
    worker dies, is split into one message per unfinished task, and only the poison task is
    dead-lettered; the good ones each run once."""
    stack, _ = fault_stack(
        render(),
        **REDIS_RECOVERY,
        OUTBOX__BATCH_LINGER_SECONDS="2",  # the four posts below go in one batch
    )
    api = stack.start_api()
    good = ["before-poison", "after-poison-1", "after-poison-2"]
    with httpx.Client(base_url=api.url, timeout=10) as client:
        bodies = [
            {"invoice_id": good[0]},
            {"invoice_id": "poison", "crash": True},
            {"invoice_id": good[1]},
            {"invoice_id": good[2]},
        ]
        answers = [client.post("/invoices", json=body) for body in bodies]
        assert [answer.status_code for answer in answers] == [202] * 4
        poison_id = answers[1].json()["data"]["task_id"]
        time.sleep(2.5)  # the linger is over: the batch is in the broker
        worker = stack.start_worker(concurrency=2)
        assert_dead_lettered(stack, client, poison_id)  # its redeliveries counted as alone
    log = worker.log()
    assert "durable.run_batch" in log, "the four were not batched"
    assert "batch delivered again" in log
    wait_succeeded(stack, 3, "the good tasks to run")
    assert stack.invoice_counts() == dict.fromkeys(good, 1)
    assert worker.alive()


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
        worker = stack.start_worker()
        before = post_orders(api.url, 50, prefix="before") + post_invoices(api.url, 10, prefix="b")
        assert {p.status for p in before} == {202}

        proxy.cut()
        during = post_orders(api.url, 20, concurrency=10, prefix="cut")
        during += post_invoices(api.url, 5, prefix="cut")
        slowest = max(p.elapsed for p in during)
        print(f"rabbitmq cut: {len(during)} POSTs, slowest answer {slowest:.3f}s")
        for answer in during:
            assert answer.status == 202, answer.body
            assert answer.elapsed <= ANSWER_BOUND, f"answered after {answer.elapsed:.3f}s"
        proxy.restore()

        wait_all_succeeded(stack, 85)
        assert worker.alive(), worker.tail()
        posted = before + during
        orders = [p for p in posted if "order_id" in p.data]
        assert_done_once(stack, orders, [p for p in posted if "invoice_id" in p.data], 2)
        assert len([p for p in stack.procs if p.name == "worker"]) == 1
    finally:
        proxy.cut()
