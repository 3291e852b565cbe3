"""Enqueueing durable tasks in the caller's transaction.

    record = send_invoice.enqueue(session, invoice.id)
    await session.commit()   # the invoice and its task, both or neither

`DurableTask.enqueue` adds the task's record to the session's transaction; the task is published
only once the transaction commits (by this process's dispatcher thread, never blocking the
caller), and not at all if it rolls back. It works with the API's AsyncSession and with a
worker's or a script's Session alike.

The records a transaction enqueues are written by one prebuilt INSERT before the session's
next statement or flush, or at the commit, rather than by the ORM's unit of work: the ORM's
flush of a record cost the API more CPU than the database spent storing it
(docs/performance.md). So the returned record is not in the session: it keeps the values it
was created with, and a change to it counts only until the session's next statement. Inside
a savepoint (`begin_nested`) a record is added to the session instead, so that rolling the
savepoint back drops it.
"""

import contextvars
import uuid
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from ..core.orm import utcnow
from . import dispatcher, signals
from .models import TaskRecord, TaskRecordStatus
from .relay import Envelope

# Session.info keys: the envelopes to publish after the commit; the records to insert; the
# envelopes enqueued within each open savepoint (dropped if it rolls back).
_OUTBOX = "durable.outbox"
_RECORDS = "durable.records"
_SAVEPOINTS = "durable.savepoints"

_INSERT_RECORDS = insert(TaskRecord.metadata.tables[TaskRecord.__tablename__])
# The columns a new record sets; the others start NULL.
_NEW_RECORD_COLUMNS = (
    "id",
    "name",
    "args",
    "kwargs",
    "queue",
    "status",
    "attempts",
    "redeliveries",
    "republishes",
    "idempotency_key",
    "request_fingerprint",
    "created_at",
    "updated_at",
)


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
    sync_session = _sync(session)
    if sync_session.in_nested_transaction():
        sync_session.add(record)
    else:
        sync_session.info.setdefault(_RECORDS, []).append(record)
    publish_after_commit(session, record, batch)
    return record


def _sync(session: Session | AsyncSession) -> Session:
    return session.sync_session if isinstance(session, AsyncSession) else session


def publish_after_commit(
    session: Session | AsyncSession, record: TaskRecord, batch: bool = False
) -> None:
    envelope = Envelope(
        record.id,
        record.name,
        record.args,
        record.kwargs,
        record.queue,
        contextvars.copy_context(),
        batch,
    )
    sync_session = _sync(session)
    _hold(sync_session, [envelope], sync_session.get_nested_transaction())


def _hold(
    session: Session, envelopes: list[Envelope], savepoint: SessionTransaction | None
) -> None:
    if savepoint is None:
        session.info.setdefault(_OUTBOX, []).extend(envelopes)
    else:
        session.info.setdefault(_SAVEPOINTS, {}).setdefault(savepoint, []).extend(envelopes)


@event.listens_for(Session, "do_orm_execute")
def _insert_before_statement(state: ORMExecuteState) -> None:
    # A statement in the same transaction sees the records enqueued before it.
    _insert_records_outside_savepoints(state.session)


@event.listens_for(Session, "before_flush")
def _insert_before_flush(session: Session, *_: object) -> None:
    # Before the session's own rows: a row referring to a record finds it.
    _insert_records_outside_savepoints(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    savepoint = session.get_nested_transaction()
    if savepoint is not None:
        # A savepoint being released: its tasks now belong to the enclosing transaction.
        envelopes = session.info.get(_SAVEPOINTS, {}).pop(savepoint, [])
        enclosing = savepoint.parent
        if enclosing is not None and enclosing.nested:
            _hold(session, envelopes, enclosing)
            return  # the records wait: the enclosing savepoint's rollback would take them
        _hold(session, envelopes, None)
    # The transaction commits, or a savepoint is released into it (`commit()` on the
    # transaction releases the savepoints still open first, then may have nothing to flush).
    _insert_records(session)


def _insert_records_outside_savepoints(session: Session) -> None:
    # Not within a savepoint: its rollback would take records enqueued outside it along.
    if not session.in_nested_transaction():
        _insert_records(session)


def _insert_records(session: Session) -> None:
    if _RECORDS in session.info:
        records: list[TaskRecord] = session.info.pop(_RECORDS)
        rows = [
            {column: getattr(record, column) for column in _NEW_RECORD_COLUMNS}
            for record in records
        ]
        session.execute(_INSERT_RECORDS, rows)


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction itself is not committed yet
    envelopes: list[Envelope] = session.info.pop(_OUTBOX, [])
    if envelopes:
        current = dispatcher.current()
        for envelope in envelopes:
            current.submit(envelope)


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # After a rollback (or a close without commit) of the outermost transaction or of a
    # savepoint; after a commit or a release, the envelopes were taken already.
    if transaction.parent is None:
        for key in (_OUTBOX, _RECORDS, _SAVEPOINTS):
            session.info.pop(key, None)
    elif transaction.nested:
        session.info.get(_SAVEPOINTS, {}).pop(transaction, None)
