"""Enqueue a backlog of orders fast, in exactly the form the service's own code produces.

`python -m bench_enqueue COUNT` (service project and this folder on PYTHONPATH, the
service's environment variables set):

1. inserts COUNT orders with the service's own `Order` model (ORM bulk insert), marked
   `queued` where the model has that status, and, in a service with durable tasks, their
   task records, `queued` as after the API's publish;
2. publishes `process_order` for the first one with the service's own Celery app, reads
   that message back from the Redis broker, and pushes one copy per order with the
   order's id, its task id and a fresh delivery tag (Redis pipelines of 1,000).

Posting 100,000 orders over HTTP, or publishing them one by one, would take longer than
the rest of the benchmarks; the worker sees the same messages the API would have sent.
Redis brokers only.
"""

import base64
import copy
import importlib
import importlib.util
import json
import sys
import uuid
from typing import Any

import bench_overlay

BATCH = 2000


def _module(name: str) -> Any:
    return importlib.import_module(name)


def _rows(count: int, models: Any) -> list[dict[str, Any]]:
    order_cls = models.Order
    status_enum = getattr(models, "OrderStatus", None)
    rows = []
    for _ in range(count):
        row: dict[str, Any] = {"id": uuid.uuid4(), "product_id": "sku-1", "quantity": 1}
        if hasattr(order_cls, "task_id"):
            row["task_id"] = uuid.uuid4()
        if status_enum is not None and hasattr(status_enum, "QUEUED"):
            row["status"] = status_enum.QUEUED
        rows.append(row)
    return rows


def _insert(rows: list[dict[str, Any]], models: Any, database: Any) -> None:
    sqlalchemy = _module("sqlalchemy")
    orm = _module("sqlalchemy.orm")
    engine_obj = database.sync_engine
    engine = engine_obj() if callable(engine_obj) else engine_obj
    for start in range(0, len(rows), BATCH):
        with orm.Session(engine) as session:
            session.execute(sqlalchemy.insert(models.Order), rows[start : start + BATCH])
            session.commit()


def _message_for(template: dict[str, Any], args: Any, task_id: str) -> str:
    msg = copy.deepcopy(template)
    body = json.loads(base64.b64decode(msg["body"]))
    body[0] = list(args)
    msg["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    headers = msg["headers"]
    headers["id"] = headers["root_id"] = task_id
    headers["argsrepr"] = repr(tuple(args))
    msg["properties"]["correlation_id"] = task_id
    msg["properties"]["delivery_tag"] = str(uuid.uuid4())
    return json.dumps(msg)


def _insert_task_records(
    rows: list[dict[str, Any]], task_name: str, args_of: Any, database: Any
) -> None:
    """The durable task records the API would have committed with the orders, `queued` (as
    after the dispatcher's publish), so the worker claims them as it would in service."""
    sqlalchemy = _module("sqlalchemy")
    orm = _module("sqlalchemy.orm")
    durable = _module("app.durable.models")
    engine_obj = database.sync_engine
    engine = engine_obj() if callable(engine_obj) else engine_obj
    records = [
        {
            "id": row["task_id"],
            "name": task_name,
            "args": args_of(row),
            "kwargs": {},
            "status": durable.TaskRecordStatus.QUEUED,
        }
        for row in rows
    ]
    for start in range(0, len(records), BATCH):
        with orm.Session(engine) as session:
            session.execute(sqlalchemy.insert(durable.TaskRecord), records[start : start + BATCH])
            session.commit()


def enqueue(count: int) -> None:
    models = _module("app.models")
    database = _module("app.core.database")
    tasks = _module("app.tasks.orders")
    make_args = getattr(tasks, "process_order_args", lambda order_id: (order_id,))
    rows = _rows(count, models)
    _insert(rows, models, database)

    def args_of(row: dict[str, Any]) -> list[Any]:
        # JSON form of the task's arguments (UUIDs as the service would serialize them).
        return [str(a) if isinstance(a, uuid.UUID) else a for a in make_args(row["id"])]

    def task_id_of(row: dict[str, Any]) -> str:
        return str(row.get("task_id") or uuid.uuid4())

    if importlib.util.find_spec("app.durable") is not None:
        _insert_task_records(rows, tasks.process_order.name, args_of, database)

    app = bench_overlay.app
    app.conf.task_send_sent_event = False  # monitors only; none here
    first = rows[0]
    tasks.process_order.apply_async(args=make_args(first["id"]), task_id=task_id_of(first))
    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        queue = max(
            (k for k in client.scan_iter(count=1000) if client.type(k) == b"list"),
            key=lambda k: int(client.llen(k)),
        )
        template = json.loads(client.lindex(queue, 0))
        pipe = client.pipeline(transaction=False)
        for i, row in enumerate(rows[1:], start=1):
            pipe.lpush(queue, _message_for(template, args_of(row), task_id_of(row)))
            if i % 1000 == 0:
                pipe.execute()
        pipe.execute()


if __name__ == "__main__":
    enqueue(int(sys.argv[1]))
