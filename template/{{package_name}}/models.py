"""SQLAlchemy models. The schema is owned by Alembic (see migrations/)."""

import uuid
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import DateTime, Enum, Index, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class OrderStatus(StrEnum):
    PENDING = "pending"  # saved; its task is not yet confirmed as published
    QUEUED = "queued"  # the broker has its task
    PROCESSED = "processed"
    FAILED = "failed"


class Order(Base):
    __tablename__ = "orders"
    # The outbox relay looks for old pending orders.
    __table_args__ = (Index("ix_orders_status_created_at", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Chosen before publishing, so a re-published task keeps its id and status URL.
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    product_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    status: Mapped[OrderStatus] = mapped_column(
        Enum(
            OrderStatus,
            native_enum=False,
            length=16,
            values_callable=lambda statuses: [status.value for status in statuses],
        ),
        default=OrderStatus.PENDING,
    )
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
