"""Glue: the FastAPI application that mounts the seed's routes."""

from fastapi import FastAPI

from app.api.routes import router

app = FastAPI(title="seed baseline")
app.include_router(router)
