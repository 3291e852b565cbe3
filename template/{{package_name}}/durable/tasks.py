"""The durable layer's own Celery tasks (found by `autodiscover_tasks`)."""

import logging
import uuid

from ..config import get_settings
from ..core.celery import celery_app
from ..core.database import get_sync_session
from .relay import relay_once
from .retry import TRANSIENT_ERRORS
from .task import record_failure

logger = logging.getLogger(__name__)

RELAY_TASK = "durable.relay"


@celery_app.task(name=RELAY_TASK, ignore_result=True)
def relay() -> int:
    """One relay round, for Celery beat; returns how many tasks it published again."""
    try:
        return relay_once(celery_app, get_settings().outbox).republished
    except Exception as exc:
        # The database or broker is down: the next round retries. A log line, not a task
        # failure, so an outage does not raise an alert every round.
        logger.warning("relay round failed", extra={"error": repr(exc)})
        return 0


@celery_app.task(
    name="durable.mark_failed",
    ignore_result=True,
    # Sent when a task failed while the database was down: wait for it, up to about a day.
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=300,
)
def mark_failed(task_id: str, attempts: int, error: str, trace: str | None) -> bool:
    with get_sync_session() as session:
        marked = record_failure(session, uuid.UUID(task_id), attempts, error, trace)
        session.commit()
    return marked
