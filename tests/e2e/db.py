"""Database reads of the end-to-end tests: what the service recorded, read directly."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg


def psycopg_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")


def order_rows(database_url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(psycopg_url(database_url)) as conn:
        cursor = conn.execute("SELECT id, task_id, status, processed_at, error FROM orders")
        names = [column.name for column in cursor.description or []]
        return {str(row[0]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def status_counts(database_url: str) -> Counter[str]:
    return Counter(row["status"] for row in order_rows(database_url).values())


def task_records(database_url: str, name: str | None = None) -> dict[str, dict[str, Any]]:
    """The durable task records (of one task name), by task id."""
    with psycopg.connect(psycopg_url(database_url)) as conn:
        cursor = conn.execute(
            "SELECT * FROM task_records WHERE %(name)s::text IS NULL OR name = %(name)s",
            {"name": name},
        )
        names = [column.name for column in cursor.description or []]
        return {str(row[0]): dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def record_counts(database_url: str, name: str | None = None) -> Counter[str]:
    return Counter(row["status"] for row in task_records(database_url, name).values())
