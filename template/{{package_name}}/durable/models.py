"""The task record: one row per durable task, the source of truth for its state."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import JSON, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..core.orm import Base, UTCDateTime, status_enum, utcnow


class TaskRecordStatus(StrEnum):
    PENDING = "pending"  # committed; its message is not yet confirmed as published
    QUEUED = "queued"  # the broker took its message (or a retry is scheduled)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a non-transient error, or retries exhausted
    DEAD = "dead"  # redelivered or re-published too often: never run again unless redriven


# What GET /tasks/{id} shows, in Celery's names (durable/status.py maps the records).
TaskState = Literal["PENDING", "RETRY", "SUCCESS", "FAILURE"]

# A record in one of these states still waits for a worker.
OPEN_STATUSES = (TaskRecordStatus.PENDING, TaskRecordStatus.QUEUED)
FINAL_STATUSES = (TaskRecordStatus.SUCCEEDED, TaskRecordStatus.FAILED, TaskRecordStatus.DEAD)


class TaskRecord(Base):
    __tablename__ = "task_records"
    # The relay looks for old pending and queued records; metrics count them by status.
    __table_args__ = (Index("ix_task_records_status_created_at", "status", "created_at"),)

    # The Celery task id: chosen before publishing, so every re-publish keeps it.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    # Arguments exactly as published (JSON), so the relay can publish the task again.
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # None: the queue `task_routes` gives the task name.
    queue: Mapped[str | None] = mapped_column(String(100), default=None)
    status: Mapped[TaskRecordStatus] = mapped_column(
        status_enum(TaskRecordStatus), default=TaskRecordStatus.PENDING
    )
    # Runs that ended (succeeded, failed, or scheduled a retry).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Messages the broker delivered again after a worker died or lost its connection.
    redeliveries: Mapped[int] = mapped_column(Integer, default=0)
    # Times the relay published the task again.
    republishes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    traceback: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[Any] = mapped_column(JSON, nullable=True, default=None)
    # Set by a client's Idempotency-Key header: one record per key.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    # What the request with that key asked for (a hash), to refuse the key for another request.
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
