"""GET /tasks/{task_id}: the minimal public status of any durable task; detail and redrive
for internal callers only (X-Internal-Token)."""

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, status

from ...durable import TaskRecord, TaskRecordStatus
from ...durable import status as task_status
from ...schemas import ErrorResponse, RedriveRequest, RedriveResult, TaskDetail, TaskStatus
from ..deps import InternalOnly, SessionDep

router = APIRouter(prefix="/tasks", tags=["tasks"])

UNKNOWN_TASK: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "This service never issued the id"}
}
INTERNAL: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Token missing"},
    403: {"model": ErrorResponse, "description": "Token invalid, or internal routes disabled"},
}


async def _record(session: SessionDep, task_id: uuid.UUID) -> TaskRecord:
    record = await task_status.get_record(session, task_id)
    if record is None:
        # Celery itself would say PENDING here; the task records know better.
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="unknown task id")
    return record


@router.get("/{task_id}", response_model=TaskStatus, responses=UNKNOWN_TASK)
async def get_task_status(task_id: uuid.UUID, session: SessionDep) -> TaskStatus:
    record = await _record(session, task_id)
    return TaskStatus(
        task_id=task_id, status=task_status.public_state(record.status, record.attempts)
    )


@router.get(
    "/{task_id}/detail",
    response_model=TaskDetail,
    responses={**UNKNOWN_TASK, **INTERNAL},
    dependencies=[InternalOnly],
)
async def get_task_detail(task_id: uuid.UUID, session: SessionDep) -> TaskDetail:
    """The task's record: arguments, result, error and traceback (internal callers only)."""
    return task_detail(await _record(session, task_id))


def task_detail(record: TaskRecord) -> TaskDetail:
    return TaskDetail(
        task_id=record.id,
        status=task_status.public_state(record.status, record.attempts),
        record_status=record.status,
        name=record.name,
        arguments=record.args,
        keyword_arguments=record.kwargs,
        queue=record.queue,
        attempts=record.attempts,
        redeliveries=record.redeliveries,
        republishes=record.republishes,
        result=record.result,
        error=record.error,
        traceback=record.traceback,
        created_at=record.created_at,
        updated_at=record.updated_at,
        finished_at=record.finished_at,
    )


@router.post(
    "/{task_id}/redrive",
    response_model=TaskDetail,
    responses={
        **UNKNOWN_TASK,
        **INTERNAL,
        409: {"model": ErrorResponse, "description": "The task succeeded: nothing to redrive"},
    },
    dependencies=[InternalOnly],
)
async def redrive_task(task_id: uuid.UUID, session: SessionDep) -> TaskDetail:
    """Runs a failed or dead task again, with the same id. A task already pending or queued
    (redriven before) is left as it is, so calling this twice publishes it once."""
    record = await _record(session, task_id)
    if record.status is TaskRecordStatus.SUCCEEDED:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the task succeeded")
    await task_status.redrive(session, [task_id])
    return task_detail(await _record(session, task_id))


@router.post(
    "/redrive", response_model=RedriveResult, responses=INTERNAL, dependencies=[InternalOnly]
)
async def redrive_tasks(request: RedriveRequest, session: SessionDep) -> RedriveResult:
    """Runs again up to `limit` tasks that are `failed` (or `dead`), optionally of one name."""
    ids = await task_status.redrivable_ids(session, request.status, request.name, request.limit)
    redriven = await task_status.redrive(session, ids)
    return RedriveResult(task_ids=[record.id for record in redriven])
