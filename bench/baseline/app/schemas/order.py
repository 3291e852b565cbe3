"""Glue: the payload the seed's route accepts."""

from pydantic import BaseModel


class OrderCreate(BaseModel):
    product_id: str
    quantity: int
