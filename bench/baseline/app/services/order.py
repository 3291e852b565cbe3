"""Glue: the service the seed's route depends on (insert, commit, return the row)."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import get_async_session
from app.models import Order
from app.schemas.order import OrderCreate


class OrderService:
    def __init__(self, session: Annotated[AsyncSession, Depends(get_async_session)]) -> None:
        self.session = session

    async def create(self, data: OrderCreate) -> Order:
        order = Order(product_id=data.product_id, quantity=data.quantity)
        self.session.add(order)
        await self.session.commit()
        return order


OrderServiceDep = Annotated[OrderService, Depends()]
