"""The relay: publishes again the durable tasks whose message may never have reached a worker.

- `pending` records older than `stale_after_seconds`: committed, but their publish failed
  (the broker was down) or the process died before publishing;
- `queued` records not finished `requeue_queued_after_seconds` after their last publish: a
  broker can lose a message it had accepted (a Redis restarted without persistence).

Each keeps its task id, so status links go on working, and a task that was only slow finds
its record final and does nothing. Records are taken with FOR UPDATE SKIP LOCKED, so any
number of relays (every API process, Celery beat's task) can run at once. One implementation,
synchronous: the API runs it on its dispatcher thread, beat sends it as a task.
"""

import contextvars
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ..config import OutboxSettings
from ..core import alerts
from ..core.database import get_sync_session
from ..core.orm import utcnow
from . import signals
from .models import OPEN_STATUSES, TaskRecord, TaskRecordStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What publishing a task record takes."""

    task_id: uuid.UUID
    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str | None
    # The enqueuing code's context variables (its trace, for one): the publish runs in them,
    # though on the dispatcher's thread.
    context: contextvars.Context | None = None
    # The task may share a message with others of its name (durable/batch.py).
    batch: bool = False


def publish(app: Celery, envelope: Envelope, timeout: float, **options: Any) -> bool:
    """Publishes one task message; False when the broker did not take it within `timeout`
    seconds (per network wait: the write, and RabbitMQ's publisher confirm). `options` go to
    `send_task`."""
    send = envelope.context.run if envelope.context else _call
    try:
        send(
            app.send_task,
            envelope.name,
            args=envelope.args,
            kwargs=envelope.kwargs,
            task_id=str(envelope.task_id),
            queue=envelope.queue,  # None: `task_routes` decides by the name
            timeout=timeout,
            confirm_timeout=timeout,
            **options,
        )
    except (BrokerError, OSError, TimeoutError) as exc:
        logger.warning(
            "broker unavailable; the relay will publish the task",
            extra={"task_id": str(envelope.task_id), "error": repr(exc)},
        )
        return False
    return True


def _call(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


@dataclass(frozen=True)
class RelayRound:
    republished: int
    dead: int
    purged: int
    broker_unavailable: bool
    # Records waiting for the broker after the round, all processes together.
    pending: int


def relay_once(
    app: Celery, settings: OutboxSettings, stale_after: float | None = None
) -> RelayRound:
    """Publishes one batch of stale records again; dead-letters those published too often.

    Three short steps, so that no row lock is held while the broker is slow to answer (a
    worker running one of these tasks would wait for it): claim the batch (a lease: its
    `updated_at` moves to now, so other relays pass it by for `stale_after`), publish outside
    any transaction, record what was published. A relay that dies after claiming leaves the
    lease to expire: the next round takes the records again.
    """
    now = utcnow()
    if stale_after is None:
        stale_after = settings.stale_after_seconds
    stale_before = now - timedelta(seconds=stale_after)
    stale = and_(
        TaskRecord.status == TaskRecordStatus.PENDING,
        TaskRecord.created_at <= stale_before,
        TaskRecord.updated_at <= stale_before,
    )
    if settings.requeue_queued_after_seconds > 0:
        requeue_before = now - timedelta(seconds=settings.requeue_queued_after_seconds)
        lost = and_(
            TaskRecord.status == TaskRecordStatus.QUEUED,
            TaskRecord.created_at < requeue_before,
            TaskRecord.updated_at < requeue_before,
        )
        stale = or_(stale, lost)
    columns = (
        TaskRecord.id,
        TaskRecord.name,
        TaskRecord.args,
        TaskRecord.kwargs,
        TaskRecord.queue,
        TaskRecord.republishes,
    )
    with get_sync_session() as session:
        rows = session.execute(
            select(*columns)
            .where(stale)
            .order_by(TaskRecord.created_at)
            .limit(settings.relay_batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        dead = [(row.id, row.name) for row in rows if row.republishes >= settings.max_republishes]
        claimed = [row for row in rows if row.republishes < settings.max_republishes]
        reason = f"published {settings.max_republishes} times without an outcome"
        _set(
            session,
            [task_id for task_id, _ in dead],
            status=TaskRecordStatus.DEAD,
            error=reason,
            finished_at=now,
            updated_at=now,
        )
        # Counted now, while the rows are locked: a fast worker may finish one before step 3.
        _set(
            session,
            [row.id for row in claimed],
            updated_at=now,
            republishes=TaskRecord.republishes + 1,
        )
        session.commit()

        published: list[uuid.UUID] = []
        broker_unavailable = False
        for row in claimed:
            envelope = Envelope(row.id, row.name, row.args, row.kwargs, row.queue)
            if not publish(app, envelope, settings.publish_timeout_seconds):
                broker_unavailable = True
                break
            published.append(row.id)
        not_published = [row.id for row in claimed[len(published) :]]

        _set(session, published, status=TaskRecordStatus.QUEUED, updated_at=utcnow())
        # Back to pending (not published after all), and stale at once: the next round
        # tries them first.
        _set(
            session,
            not_published,
            status=TaskRecordStatus.PENDING,
            updated_at=stale_before,
            republishes=TaskRecord.republishes - 1,
        )
        purged = purge_succeeded(session, now - timedelta(seconds=settings.retention_seconds))
        pending = session.execute(
            select(func.count()).where(TaskRecord.status == TaskRecordStatus.PENDING)
        ).scalar_one()
        session.commit()
    for task_id, name in dead:
        report_dead(name, task_id, reason)
    if published:
        logger.info("relay published tasks again", extra={"count": len(published)})
    signals.relay_round.send(sender=None, republished=len(published), dead=len(dead))
    return RelayRound(len(published), len(dead), purged, broker_unavailable, pending)


def _set(session: Session, task_ids: list[uuid.UUID], **values: Any) -> None:
    """Updates the records that are still open (on SQLite, with no row locks, a worker may
    have finished one meanwhile)."""
    if task_ids:
        session.execute(
            update(TaskRecord)
            .where(TaskRecord.id.in_(task_ids), TaskRecord.status.in_(OPEN_STATUSES))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def purge_succeeded(session: Session, before: datetime, limit: int = 1000) -> int:
    """Deletes up to `limit` succeeded records created before `before` (the task records
    would otherwise grow forever). Failed and dead ones stay until redriven or deleted: they
    are what an operator acts on."""
    old = (
        select(TaskRecord.id)
        .where(TaskRecord.status == TaskRecordStatus.SUCCEEDED, TaskRecord.created_at < before)
        .limit(limit)
        .scalar_subquery()
    )
    deleted = session.execute(
        delete(TaskRecord)
        .where(TaskRecord.id.in_(old))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(deleted, "rowcount", 0) or 0)


def report_dead(task_name: str, task_id: uuid.UUID, reason: str) -> None:
    alerts.raise_alert(
        "task_dead", {"task_name": task_name, "task_id": str(task_id), "reason": reason}
    )
    signals.task_dead.send(sender=task_name, task_id=str(task_id), reason=reason)
