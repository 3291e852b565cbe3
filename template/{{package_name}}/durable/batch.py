"""Several durable tasks in one broker message, for short tasks declared with `batch=True`.

A broker message costs more CPU than a short task's own work: the publish, the worker's fetch
and acknowledgement, the hand-over to a pool process and back. The dispatcher puts the tasks of
one name that a process publishes within `OUTBOX__BATCH_LINGER_SECONDS` into one `durable.run_batch`
message (up to `OUTBOX__BATCH_MAX_TASKS`). The pool process that receives it runs each task in
turn through Celery's own tracer, with the task's own id: its record, transaction, retries,
failure, log lines, metrics, alerts and trace are those of a task sent alone.

- A retry goes back to the broker as a message of its own (`task.retry`, as for any task).
- A redelivered batch (its worker died) is not run: each of its open tasks is published
  alone, so a task that kills its worker is counted and dead-lettered alone.
- A batch that has run for `BATCH_RUN_BUDGET_SECONDS` publishes the tasks it has not started
  alone: a slow task holds back the others for that long at most, and Celery's time limits
  (per message) stay those of one task.
"""

import logging
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery, Task
from celery.app import trace as celery_trace
from celery.exceptions import Reject
from sqlalchemy import select

from ..config import get_settings
from ..core.celery import celery_app
from ..core.database import get_sync_session
from .models import OPEN_STATUSES, TaskRecord
from .relay import Envelope, publish

logger = logging.getLogger(__name__)

RUN_BATCH = "durable.run_batch"
# Batches are for tasks of milliseconds: past this, the rest go back one per message.
BATCH_RUN_BUDGET_SECONDS = 1.0

# Writes the enqueuing code's trace context into a batched task's headers (set by
# core/tracing.py when tracing is on): the batch message's own headers are the dispatcher's.
inject_trace_headers: Callable[[dict[str, str]], None] | None = None

# One Celery tracer per task name, built on first use (as a worker builds its own).
_tracers: dict[str, Callable[..., Any]] = {}


def publish_tasks(app: Celery, envelopes: Sequence[Envelope], timeout: float) -> bool:
    """Publishes tasks of one name and queue: one alone in a message of its own, several in one
    `durable.run_batch` message. False when the broker did not take it within `timeout` s."""
    if len(envelopes) == 1:
        return publish(app, envelopes[0], timeout)
    first = envelopes[0]
    task = app.tasks[first.name]
    items = [_item(envelope) for envelope in envelopes]
    # The task's own time limits, if it declares any (else the defaults apply to the batch).
    limits = {
        option: limit
        for option, limit in (
            ("time_limit", task.time_limit),
            ("soft_time_limit", task.soft_time_limit),
        )
        if limit
    }
    batch = Envelope(uuid.uuid4(), RUN_BATCH, [first.name, items], {}, _queue_of(app, first))
    # What logs and monitors show as the message's arguments. Celery's own (`saferepr` of
    # every item) cost 3% of the API's CPU, in the dispatcher thread.
    summary = f"[{first.name!r}, <{len(items)} tasks>]"
    return publish(app, batch, timeout, argsrepr=summary, kwargsrepr="{}", **limits)


def _item(envelope: Envelope) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": str(envelope.task_id),
        "args": envelope.args,
        "kwargs": envelope.kwargs,
    }
    if inject_trace_headers is not None and envelope.context is not None:
        headers: dict[str, str] = {}
        envelope.context.run(inject_trace_headers, headers)
        item["headers"] = headers
    return item


def _queue_of(app: Celery, envelope: Envelope) -> str:
    if envelope.queue is not None:
        return envelope.queue
    routed: Any = app.amqp.router.route({}, envelope.name)
    return str(routed["queue"].name)


@celery_app.task(name=RUN_BATCH, bind=True, ignore_result=True)
def run_batch(self: Task[Any, Any], name: str, items: list[dict[str, Any]]) -> int:
    """Runs the batch's tasks one after the other; returns how many it ran."""
    task = celery_app.tasks[name]
    delivery_info = dict(self.request.delivery_info or {})
    if delivery_info.get("redelivered"):
        # Its worker died running one of these: alone, each is counted for its own deliveries.
        _publish_alone(task, items, "batch delivered again")
        return 0
    delivery_info["redelivered"] = False
    hostname = self.request.hostname or socket.gethostname()
    started = time.monotonic()
    tracer = _tracers.get(name)
    if tracer is None:
        # Looked up now, not imported: Sentry's Celery integration wraps build_tracer.
        tracer = _tracers[name] = celery_trace.build_tracer(
            name, task, eager=True, propagate=False, app=celery_app
        )
    for ran, item in enumerate(items):
        if ran and time.monotonic() - started > BATCH_RUN_BUDGET_SECONDS:
            _publish_alone(task, items[ran:], "batch over its time budget")
            return ran
        request = {
            **item.get("headers", {}),  # where the trace instrumentation looks for them
            "id": item["id"],
            "task": name,
            "retries": 0,
            # Not eager as apply() is: a retry is published, not run here at once.
            "is_eager": False,
            "hostname": hostname,
            "delivery_info": delivery_info,
            "ignore_result": task.ignore_result,
        }
        tracer(item["id"], item["args"], item["kwargs"], request)
    return len(items)


def _publish_alone(task: Task[Any, Any], items: list[dict[str, Any]], why: str) -> None:
    """Publishes the unfinished tasks among `items` one per message."""
    ids = [uuid.UUID(item["id"]) for item in items]
    try:
        with get_sync_session() as session:
            open_ids = set(
                session.scalars(
                    select(TaskRecord.id).where(
                        TaskRecord.id.in_(ids), TaskRecord.status.in_(OPEN_STATUSES)
                    )
                )
            )
    except Exception:
        logger.warning("could not read the batch's records; publishing all", exc_info=True)
        open_ids = set(ids)
    timeout = get_settings().outbox.publish_timeout_seconds
    queue: str | None = getattr(task, "queue_name", None)
    unfinished = [item for item, task_id in zip(items, ids, strict=True) if task_id in open_ids]
    for item in unfinished:
        envelope = Envelope(uuid.UUID(item["id"]), task.name, item["args"], item["kwargs"], queue)
        if not publish(celery_app, envelope, timeout, headers=item.get("headers") or None):
            # Back to the queue, to be split again once the broker takes messages.
            raise Reject("could not publish the batch's tasks one by one", requeue=True)
    logger.info(
        "%s: its unfinished tasks published one per message",
        why,
        extra={"task_name": task.name, "count": len(unfinished)},
    )
