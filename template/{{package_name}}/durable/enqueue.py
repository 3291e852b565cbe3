"""Enqueueing durable tasks in the caller's transaction.

    record = send_invoice.enqueue(session, invoice.id)
    await session.commit()   # the invoice and its task, both or neither

`DurableTask.enqueue` adds the task's record to the session; the task is published only once
the transaction commits (by this process's dispatcher thread, never blocking the caller), and
not at all if it rolls back. It works with the API's AsyncSession and with a worker's or a
script's Session alike.
"""

import contextvars
import uuid
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from ..core.orm import utcnow
from . import dispatcher, signals
from .models import TaskRecord, TaskRecordStatus
from .relay import Envelope

_OUTBOX = "durable.outbox"  # Session.info key: the envelopes to publish after the commit


def add_task_record(
    session: Session | AsyncSession,
    name: str,
    queue: str | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    batch: bool = False,
) -> TaskRecord:
    """Adds a pending record to the session and schedules its publish for after the commit.
    Raises BacklogFullError while too many tasks wait for an unavailable broker."""
    try:
        dispatcher.current().check_accepting()
    except dispatcher.BacklogFullError:
        signals.enqueue_outcome.send(sender=name, outcome="rejected")
        raise
    now = utcnow()
    record = TaskRecord(
        id=uuid.uuid4(),
        name=name,
        # JSON-ready arguments: Pydantic models as dicts, UUIDs and datetimes as strings.
        args=to_jsonable_python(list(args)),
        kwargs=to_jsonable_python(kwargs),
        queue=queue,
        status=TaskRecordStatus.PENDING,
        attempts=0,
        redeliveries=0,
        republishes=0,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    publish_after_commit(session, record, batch)
    return record


def publish_after_commit(
    session: Session | AsyncSession, record: TaskRecord, batch: bool = False
) -> None:
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    envelope = Envelope(
        record.id,
        record.name,
        record.args,
        record.kwargs,
        record.queue,
        contextvars.copy_context(),
        batch,
    )
    sync_session.info.setdefault(_OUTBOX, []).append(envelope)


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    envelopes: list[Envelope] = session.info.pop(_OUTBOX, [])
    if envelopes:
        current = dispatcher.current()
        for envelope in envelopes:
            current.submit(envelope)


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # After a rollback (or a close without commit) of the outermost transaction; after a
    # commit, _publish_committed has taken the envelopes already.
    if transaction.parent is None:
        session.info.pop(_OUTBOX, None)
