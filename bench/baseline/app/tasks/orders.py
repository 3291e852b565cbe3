# app/tasks/orders.py -- the seed's task, as written (type annotations and the
# `Order` import added: the seed uses `Order` without importing it).
from typing import Any
from uuid import UUID

from celery import Task

from app.core.celery import celery_app
from app.core.database import get_sync_session
from app.models import Order


@celery_app.task(bind=True, max_retries=3)
def process_order(self: Task[Any, Any], order_id: UUID) -> dict[str, Any]:
    try:
        with get_sync_session() as db:
            order = db.get(Order, order_id)
            if order:
                order.status = "processed"
                db.commit()
        return {"order_id": order_id, "status": "processed"}
    except Exception as exc:
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
