# The seed's two routes, as written: the order is committed, then `delay()`
# publishes it from inside the async route (blocking the event loop).
from typing import Any

from celery.result import AsyncResult
from fastapi import APIRouter

from app.schemas.order import OrderCreate
from app.schemas.response import ApiResponse
from app.services.order import OrderServiceDep
from app.tasks.orders import process_order

router = APIRouter()


@router.post("/orders", response_model=ApiResponse[dict[str, str]])
async def create_order(order: OrderCreate, service: OrderServiceDep) -> ApiResponse[dict[str, str]]:
    db_order = await service.create(order)
    task = process_order.delay(db_order.id)
    return ApiResponse(data={"order_id": str(db_order.id), "task_id": task.id})


@router.get("/tasks/{task_id}")
async def get_task_status(task_id: str) -> dict[str, Any]:
    result: AsyncResult[Any] = AsyncResult(task_id)
    return {"task_id": task_id, "status": result.status}
