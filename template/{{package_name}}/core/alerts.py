"""Alerts: a structured log line, and a webhook call when one is configured.

Repeats of one cause (the same alert, task and exception type) within
`ALERTS__REPEAT_AFTER_SECONDS` are logged but not sent again: a database outage that fails
tasks one after another pages once, not once per task. The first alert after the quiet period
says how many were held back. Each process keeps its own count.
"""

import json
import logging
import threading
import time
import urllib.request
from typing import Any

from celery.signals import task_failure

from ..config import get_settings

logger = logging.getLogger(__name__)

_last_sent: dict[tuple[Any, ...], float] = {}
_held_back: dict[tuple[Any, ...], int] = {}
_lock = threading.Lock()


def send_webhook(url: str, payload: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - the URL comes from the operator's settings
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310
        pass


def _due(cause: tuple[Any, ...], repeat_after: float) -> int | None:
    """How many repeats were held back, if this cause may be sent now; else None."""
    now = time.monotonic()
    with _lock:
        last = _last_sent.get(cause)
        if last is not None and now - last < repeat_after:
            _held_back[cause] = _held_back.get(cause, 0) + 1
            return None
        _last_sent[cause] = now
        return _held_back.pop(cause, 0)


def raise_alert(name: str, payload: dict[str, Any]) -> None:
    """Logs the alert at ERROR and POSTs it to ALERTS__WEBHOOK_URL (rate-limited per cause)."""
    settings = get_settings().alerts
    alert = {"alert": name, **payload}
    cause = (name, payload.get("task_name"), payload.get("exception_type"))
    held_back = _due(cause, settings.repeat_after_seconds)
    if held_back is None:
        logger.error("%s: %s (repeat, not sent)", name, payload.get("task_name"), extra=alert)
        return
    alert["repeats_held_back"] = held_back
    logger.error("%s: %s", name, payload.get("task_name"), extra=alert)
    if not settings.webhook_url:
        return
    try:
        send_webhook(settings.webhook_url, alert, settings.webhook_timeout)
    except OSError:
        # An alert that cannot be delivered must not hide the failure itself.
        logger.exception("alert webhook failed", extra={"alert": "webhook_failed"})


def alert_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    """Runs for every task that ends in FAILURE, including a worker killed mid-task."""
    request = getattr(sender, "request", None)
    raise_alert(
        "task_failure",
        {
            "task_name": getattr(sender, "name", None),
            "task_id": task_id,
            "exception_type": type(exception).__name__ if exception else None,
            "exception": str(exception) if exception else None,
            "retries": getattr(request, "retries", None),
        },
    )


def connect_failure_alerts() -> None:
    task_failure.connect(alert_task_failure, weak=False, dispatch_uid="alert_task_failure")
