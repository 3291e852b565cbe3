"""Order use cases: the API saves orders, workers process them (through a durable task)."""

import logging
import uuid

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ..core.orm import utcnow
from ..durable import TaskRecord
from ..models import Order, OrderStatus
from ..schemas import OrderCreate

logger = logging.getLogger(__name__)


class OrderNotFoundError(LookupError):
    pass


# --- API side (async) -------------------------------------------------------


# One prebuilt INSERT rather than the ORM's flush of an Order: on the request path the flush
# cost more CPU than PostgreSQL spends storing the row (docs/performance.md).
_INSERT_ORDER = insert(Order.metadata.tables[Order.__tablename__])


async def add_order(
    session: AsyncSession, order_id: uuid.UUID, data: OrderCreate, task_id: uuid.UUID
) -> None:
    """Saves a pending order in the caller's transaction (committed with its processing task)."""
    now = utcnow()
    await session.execute(
        _INSERT_ORDER,
        {
            "id": order_id,
            "task_id": task_id,
            "product_id": data.product_id,
            "quantity": data.quantity,
            "status": OrderStatus.PENDING,
            "created_at": now,
            "updated_at": now,
        },
    )


async def get_order(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    return await session.get(Order, order_id)


async def get_order_by_task_id(session: AsyncSession, task_id: uuid.UUID) -> Order | None:
    result = await session.execute(select(Order).where(Order.task_id == task_id))
    return result.scalar_one_or_none()


# --- Worker side (sync) -----------------------------------------------------


def apply_order(order: Order) -> None:
    """The business work of processing one order. Replace with yours.

    It runs inside the transaction that marks the order processed and its task succeeded,
    so it runs to completion at most once per order (an error here rolls the marks back);
    side effects outside this database (emails, payments) must be idempotent on `order.id`,
    because a worker killed after such a call but before the commit runs it again.
    """
    logger.info("processing order", extra={"order_id": str(order.id), "quantity": order.quantity})


# Marks and locks the order, and loads it, in one statement; built once, because building a
# statement costs more CPU than PostgreSQL spends running it (docs/performance.md).
_MARK_PROCESSED = (
    update(Order)
    .where(Order.id == bindparam("order_id"))
    .values(status=OrderStatus.PROCESSED, processed_at=bindparam("now"), error=None)
    .returning(Order)
    .execution_options(synchronize_session=False)
)


def process_order(session: Session, order_id: uuid.UUID) -> Order:
    """Processes the order; the caller (the durable task) commits."""
    # The durable task's record, locked before this runs, keeps a duplicate delivery from
    # getting here. The order comes back attached to the session: changes to it commit too.
    order = session.scalars(_MARK_PROCESSED, {"order_id": order_id, "now": utcnow()}).one_or_none()
    if order is None:
        raise OrderNotFoundError(f"order {order_id} does not exist")
    apply_order(order)
    return order


def mark_failed(session: Session, record: TaskRecord) -> None:
    """The order's side of a failed processing task (in the same transaction as its record)."""
    session.execute(
        update(Order)
        .where(Order.task_id == record.id, Order.status == OrderStatus.PENDING)
        .values(status=OrderStatus.FAILED, error=record.error, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
