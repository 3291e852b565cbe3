"""Publishing tasks from async code without blocking the event loop, within a time bound."""

import asyncio
import contextvars
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from celery import Celery, Task
from celery._state import get_current_app
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


class BrokerUnavailableError(RuntimeError):
    """The broker did not take the task within the publish timeout."""


class TaskPublisher:
    """Runs Celery's blocking `apply_async` on a dedicated thread pool.

    Starlette's shared pool is left to request handlers, and the pool size matches
    Celery's broker connection pool, so publishing threads never queue for a connection.
    """

    def __init__(self, *, threads: int, timeout: float, app: Celery | None = None) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="publish")
        self.timeout = timeout
        # The first publish imports the broker's client library and builds the connection
        # pool: over a second on a busy machine, enough to turn the first order after a start
        # into a 503. Do that now, in the background, outside any request's time bound.
        self._executor.submit(_prepare_producer_pool, app or get_current_app())

    async def send(self, task: Task[Any, Any], args: tuple[Any, ...], task_id: str) -> None:
        loop = asyncio.get_running_loop()
        # In this request's context (its trace, if any: the publish is part of it).
        call = partial(contextvars.copy_context().run, task.apply_async, args=args, task_id=task_id)
        try:
            await asyncio.wait_for(loop.run_in_executor(self._executor, call), self.timeout)
        except (TimeoutError, OperationalError, OSError) as exc:
            logger.warning("broker unavailable", extra={"task_id": task_id, "error": repr(exc)})
            raise BrokerUnavailableError(str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _prepare_producer_pool(app: Celery) -> None:
    try:
        app.amqp.producer_pool  # noqa: B018 - builds the pool; does not connect
    except Exception:  # the first publish will report it, within its time bound
        logger.warning("could not prepare the broker connection pool", exc_info=True)
