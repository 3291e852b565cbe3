"""Durable tasks: `@durable_task`, and what a worker does with one.

    @durable_task(name="invoices.send_invoice")
    def send_invoice(session: Session, invoice_id: str) -> dict[str, str]:
        ...  # database work through `session`; no commit

    send_invoice.enqueue(session, invoice_id)  # in the transaction that needs it done

The body gets a synchronous Session. Its writes and the record's `succeeded` mark commit in
one transaction, with the record's row locked, so a message delivered twice (a worker died
before acknowledging it, the relay published it again) finds the record final and changes
nothing: effects inside the service's database happen once. Effects outside it (an email, a
payment call) can run again after a crash: key them on the task id or your own ids.
"""

import inspect
import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from celery import Task
from pydantic_core import to_jsonable_python
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ..config import get_settings
from ..core.celery import celery_app
from ..core.database import get_sync_session
from ..core.orm import utcnow
from .enqueue import add_task_record
from .models import FINAL_STATUSES, OPEN_STATUSES, TaskRecord, TaskRecordStatus
from .relay import report_dead
from .retry import RetryPolicy

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
# Runs in the transaction that marks the record failed: keep business state consistent
# (an order marked failed together with its task).
FailureHook = Callable[[Session, TaskRecord], None]

# Results and errors are kept small: the record is read on every status request.
MAX_RESULT_BYTES = 4096
MAX_ERROR_CHARS = 2000
MAX_TRACEBACK_CHARS = 8000

# The two statements every task run makes on its record, built once: building a statement
# and its cache key cost more Python time than running it. Core, on the session's connection,
# not the ORM: its loading and flushing cost more than the queries.
_LOCK_STATUS = (
    select(TaskRecord.status).where(TaskRecord.id == bindparam("task_id")).with_for_update()
)
_MARK_SUCCEEDED = (
    update(TaskRecord)
    .where(TaskRecord.id == bindparam("task_id"))
    .values(
        status=TaskRecordStatus.SUCCEEDED,
        result=bindparam("run_result"),
        attempts=bindparam("run_attempts"),
        error=None,
        traceback=None,
        finished_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
)


class DurableTask(Task[P, R]):
    """The base class of tasks declared with `@durable_task`."""

    # Errors the task declares retryable besides the transient ones, up to `max_retries_on`.
    retry_on: tuple[type[BaseException], ...] = ()
    max_retries_on: int = 3
    failure_hook: FailureHook | None = None
    # The queue its messages go to; None: `task_routes` decides by name.
    queue_name: str | None = None
    # May share a message with other tasks of its name (durable/batch.py).
    batch: bool = False
    # The body's signature without its session: what enqueue() checks arguments against.
    call_signature: inspect.Signature
    # Celery's own argument check would count the session; enqueue() checks instead.
    typing = False

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, run_durably(self, args, kwargs))

    def enqueue(
        self, session: Session | AsyncSession, /, *args: P.args, **kwargs: P.kwargs
    ) -> TaskRecord:
        """Adds this task to the session's transaction; it is published after the commit
        (durable/enqueue.py). Wrong arguments raise TypeError here, before anything is saved."""
        self.call_signature.bind(*args, **kwargs)
        return add_task_record(session, self.name, self.queue_name, args, kwargs, self.batch)


def durable_task(
    *,
    name: str,
    queue: str | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    max_retries: int | None = None,
    on_failure: FailureHook | None = None,
    pydantic: bool = False,
    batch: bool = False,
    **celery_options: Any,
) -> Callable[[Callable[Concatenate[Session, P], R]], "DurableTask[P, R]"]:
    """Declares a durable task; see the module docstring and the README's "Adding a durable
    task". `retry_on` errors are retried up to `max_retries` (TASKS__MAX_RETRIES, 3) times;
    `on_failure(session, record)` runs when the task fails for good. `batch=True` lets
    tasks published together share a message (durable/batch.py): for tasks of milliseconds."""

    def register(body: Callable[Concatenate[Session, P], R]) -> DurableTask[P, R]:
        signature = inspect.signature(body)
        parameters = list(signature.parameters.values())
        if not parameters:
            raise TypeError(f"{name}: a durable task's first parameter is its Session")
        declared = {queue.name for queue in celery_app.conf.task_queues or ()}
        if queue is not None and queue not in declared:  # Celery would refuse every publish
            raise ValueError(f"{name}: queue {queue!r} is not in task_queues {sorted(declared)}")
        settings = get_settings().tasks
        # Celery turns extra options into attributes of the task class (the stubs do not
        # know ours, hence Any).
        register_task: Any = celery_app.task
        task = register_task(
            body,
            name=name,
            base=DurableTask,
            pydantic=pydantic,
            # Retries follow the durable policy (durable/retry.py), not a count.
            max_retries=None,
            ignore_result=not settings.store_backend_results,
            retry_on=retry_on,
            max_retries_on=settings.max_retries if max_retries is None else max_retries,
            failure_hook=staticmethod(on_failure) if on_failure else None,
            queue_name=queue,
            # Batched tasks have no result in the backend: keep one message per task then.
            batch=batch and not settings.store_backend_results,
            call_signature=signature.replace(parameters=parameters[1:]),
            **celery_options,
        )
        return cast(DurableTask[P, R], task)

    return register


def run_durably(task: DurableTask[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    request = task.request
    task_id = uuid.UUID(str(request.id))
    try:
        if (request.delivery_info or {}).get("redelivered") and not _count_redelivery(
            task, task_id
        ):
            return None  # dead-lettered: not run again
        with get_sync_session() as session:
            final = _claim(session, task, task_id, args, kwargs)
            if final is not None:
                session.commit()
                logger.info("task already %s; nothing to do", final.status.value)
                return final.result
            result = task.run(session, *args, **kwargs)
            session.connection().execute(
                _MARK_SUCCEEDED,
                {
                    "task_id": task_id,
                    "run_result": _small_json(result),
                    "run_attempts": request.retries + 1,
                    "now": utcnow(),
                },
            )
            session.commit()
        return result
    except Exception as exc:
        policy = RetryPolicy.from_settings(get_settings().tasks)
        countdown = policy.countdown_for(exc, request.retries, task.retry_on, task.max_retries_on)
        if countdown is not None:
            logger.warning("retrying", extra={"countdown": round(countdown, 2), "error": repr(exc)})
            _note_retry(task_id, request.retries + 1, exc)
            raise task.retry(exc=exc, countdown=countdown) from exc
        _fail(task, task_id, request.retries + 1, exc)
        raise


def _claim(
    session: Session,
    task: DurableTask[Any, Any],
    task_id: uuid.UUID,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> TaskRecord | None:
    """Locks the task's record; returns it if final (a duplicate delivery), else None."""
    # The status alone: the common case needs nothing else from the row.
    status = session.connection().execute(_LOCK_STATUS, {"task_id": task_id}).scalar_one_or_none()
    if status in FINAL_STATUSES:
        return session.get(TaskRecord, task_id)
    if status is not None:
        return None
    # Sent with delay() rather than enqueue(): record it now, so that from here on it has
    # status, deduplication and a failure record like any other durable task.
    session.add(
        TaskRecord(
            id=task_id,
            name=task.name,
            args=to_jsonable_python(list(args)),
            kwargs=to_jsonable_python(kwargs),
            queue=task.queue_name,
            status=TaskRecordStatus.QUEUED,
        )
    )
    try:
        session.flush()
    except IntegrityError:  # a duplicate of the same message recorded it first
        session.rollback()
        query = select(TaskRecord).where(TaskRecord.id == task_id).with_for_update()
        record = session.execute(query).scalar_one()
        if record.status in FINAL_STATUSES:
            return record
    return None


def _count_redelivery(task: DurableTask[Any, Any], task_id: uuid.UUID) -> bool:
    """Counts a redelivered message in a transaction of its own, committed before the task
    runs (so a task that kills its worker is still counted); dead-letters the task past
    TASKS__MAX_REDELIVERIES. Returns whether to run it."""
    limit = get_settings().tasks.max_redeliveries
    with get_sync_session() as session:
        redeliveries = session.execute(
            update(TaskRecord)
            .where(TaskRecord.id == task_id, TaskRecord.status.in_(OPEN_STATUSES))
            .values(redeliveries=TaskRecord.redeliveries + 1, updated_at=utcnow())
            .returning(TaskRecord.redeliveries)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if redeliveries is None or redeliveries <= limit:
            session.commit()
            return True
        reason = f"delivered again {redeliveries} times: it may crash its worker"
        session.execute(
            update(TaskRecord)
            .where(TaskRecord.id == task_id)
            .values(status=TaskRecordStatus.DEAD, error=reason, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.commit()
    report_dead(task.name, task_id, reason)
    return False


def _note_retry(task_id: uuid.UUID, attempts: int, exc: BaseException) -> None:
    """Records the retry (shown as RETRY); best effort: the database may be what failed."""
    try:
        with get_sync_session() as session:
            session.execute(
                update(TaskRecord)
                .where(TaskRecord.id == task_id, TaskRecord.status.in_(OPEN_STATUSES))
                .values(
                    status=TaskRecordStatus.QUEUED,
                    attempts=attempts,
                    error=_describe(exc),
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            session.commit()
    except Exception:
        logger.debug("could not record the retry", exc_info=True)


def _fail(
    task: DurableTask[Any, Any], task_id: uuid.UUID, attempts: int, exc: BaseException
) -> None:
    error = _describe(exc)
    trace = traceback.format_exc()[-MAX_TRACEBACK_CHARS:]
    try:
        with get_sync_session() as session:
            record_failure(session, task_id, attempts, error, trace)
            session.commit()
    except Exception:
        # The database is down too: record the failure through the broker, once it is back.
        from .tasks import mark_failed

        try:
            mark_failed.delay(str(task_id), attempts, error, trace)
        except Exception:
            logger.exception("could not record the failure", extra={"error": error})


def record_failure(
    session: Session, task_id: uuid.UUID, attempts: int, error: str, trace: str | None
) -> bool:
    """Marks an open record failed and runs its task's failure hook, in one transaction.
    Returns False if the record is missing or already final."""
    record = session.get(TaskRecord, task_id, with_for_update=True)
    if record is None or record.status in FINAL_STATUSES:
        return False
    record.status = TaskRecordStatus.FAILED
    record.attempts = attempts
    record.error = error
    record.traceback = trace
    record.finished_at = utcnow()
    task = celery_app.tasks.get(record.name)
    hook = getattr(task, "failure_hook", None)
    if hook is not None:
        hook(session, record)
    return True


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def _small_json(result: Any) -> Any:
    """The result as JSON, if it is small; larger results are not kept in the record."""
    value = to_jsonable_python(result, fallback=repr)
    if len(repr(value)) > MAX_RESULT_BYTES:
        return {"omitted": f"result larger than {MAX_RESULT_BYTES} bytes"}
    return value
