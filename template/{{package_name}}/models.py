"""The service's business models. The schema is owned by Alembic (see migrations/).

Task state lives in the durable layer's `task_records` table (durable/models.py); an order
keeps only its business status and the id of the task that processes it.
"""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from .core.orm import Base, UTCDateTime, status_enum, utcnow

__all__ = ["Base", "Order", "OrderStatus"]


class OrderStatus(StrEnum):
    PENDING = "pending"  # accepted; its processing task has not finished
    PROCESSED = "processed"
    FAILED = "failed"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # The durable task that processes the order (its record in task_records).
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    product_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    status: Mapped[OrderStatus] = mapped_column(
        status_enum(OrderStatus), default=OrderStatus.PENDING
    )
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
