"""The API's view of durable tasks: state by task id, and redrive of failed or dead ones."""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..core.orm import utcnow
from .enqueue import publish_after_commit
from .models import OPEN_STATUSES, TaskRecord, TaskRecordStatus, TaskState

REDRIVABLE = (TaskRecordStatus.FAILED, TaskRecordStatus.DEAD)


def public_state(status: TaskRecordStatus, attempts: int) -> TaskState:
    if status in OPEN_STATUSES:
        return "RETRY" if attempts else "PENDING"
    return "SUCCESS" if status is TaskRecordStatus.SUCCEEDED else "FAILURE"


async def get_record(session: AsyncSession, task_id: uuid.UUID) -> TaskRecord | None:
    return await session.get(TaskRecord, task_id)


async def redrive(session: AsyncSession, task_ids: Sequence[uuid.UUID]) -> list[TaskRecord]:
    """Runs failed or dead tasks again with their ids (their counters reset); records in any
    other state are left alone, so redriving twice publishes once. Commits."""
    records = (
        (
            await session.execute(
                select(TaskRecord)
                .where(TaskRecord.id.in_(task_ids), TaskRecord.status.in_(REDRIVABLE))
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    for record in records:
        record.status = TaskRecordStatus.PENDING
        record.attempts = record.redeliveries = record.republishes = 0
        record.finished_at = None
        record.updated_at = utcnow()
        publish_after_commit(session, record)
    await session.commit()
    return list(records)


async def redrivable_ids(
    session: AsyncSession, status: TaskRecordStatus, name: str | None, limit: int
) -> list[uuid.UUID]:
    query = select(TaskRecord.id).where(TaskRecord.status == status)
    if name is not None:
        query = query.where(TaskRecord.name == name)
    rows = await session.execute(query.order_by(TaskRecord.created_at).limit(limit))
    return list(rows.scalars())
