"""POST /orders saves an order with its processing task; GET /orders/{id} reads it."""

import uuid

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse

from ...durable import TaskRecord
from ...durable.idempotency import REPLAYED_HEADER, IdempotencyDep
from ...models import OrderStatus
from ...schemas import (
    ENQUEUE_ERRORS,
    ApiResponse,
    ErrorResponse,
    OrderAccepted,
    OrderCreate,
    OrderRead,
)
from ...services import orders as order_service
from ...tasks.orders import enqueue_processing
from ..deps import SessionDep

router = APIRouter(prefix="/orders", tags=["orders"])


def accepted(order_id: uuid.UUID, record: TaskRecord) -> ApiResponse[OrderAccepted]:
    return ApiResponse(
        data=OrderAccepted(order_id=order_id, task_id=record.id, status=OrderStatus.PENDING)
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ApiResponse[OrderAccepted],
    responses=ENQUEUE_ERRORS,
)
async def create_order(
    payload: OrderCreate, session: SessionDep, idempotency: IdempotencyDep
) -> ApiResponse[OrderAccepted] | JSONResponse:
    """Saves the order and its processing task in one transaction, then answers 202: the task
    is published right after, off the request (or by the relay if the broker is down)."""
    if idempotency is not None and (earlier := await idempotency.earlier(session)):
        return await _replay(session, earlier)
    order_id = uuid.uuid4()
    record = enqueue_processing(session, order_id)
    if idempotency is not None:
        idempotency.claim(record)  # before the next statement writes the record
    await order_service.add_order(session, order_id, payload, task_id=record.id)
    if idempotency is None:
        await session.commit()
        return accepted(order_id, record)
    if earlier := await idempotency.commit(session):  # a concurrent retry saved it first
        return await _replay(session, earlier)
    return accepted(order_id, record)


async def _replay(session: SessionDep, record: TaskRecord) -> JSONResponse:
    """The answer the first request with this Idempotency-Key got."""
    order = await order_service.get_order_by_task_id(session, record.id)
    if order is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the first request is in flight")
    body = accepted(order.id, record).model_dump(mode="json")
    return JSONResponse(body, status.HTTP_202_ACCEPTED, headers={REPLAYED_HEADER: "true"})


@router.get(
    "/{order_id}",
    response_model=ApiResponse[OrderRead],
    responses={404: {"model": ErrorResponse, "description": "No such order"}},
)
async def read_order(order_id: uuid.UUID, session: SessionDep) -> ApiResponse[OrderRead]:
    order = await order_service.get_order(session, order_id)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="order not found")
    return ApiResponse(data=OrderRead.model_validate(order))
