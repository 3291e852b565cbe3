"""Alerts: a structured log line, and a webhook call when one is configured.

Repeats of one cause (the same alert, task and exception type) within
`ALERTS__REPEAT_AFTER_SECONDS` are logged but not sent again: a database outage that fails
tasks one after another pages once, not once per task. The first alert after the quiet period
says how many were held back. The count is kept in small files shared by the processes of one
host (a worker's pool processes, the API), so each host pages once per cause.
"""

import fcntl
import hashlib
import json
import logging
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from celery.signals import task_failure

from ..config import get_settings

logger = logging.getLogger(__name__)


def send_webhook(url: str, payload: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - the URL comes from the operator's settings
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310
        pass


def _state_file(cause: tuple[Any, ...]) -> Path:
    folder = Path(tempfile.gettempdir()) / f"{get_settings().app_name}-alerts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / hashlib.sha256(repr(cause).encode()).hexdigest()[:32]


def _due(cause: tuple[Any, ...], repeat_after: float) -> int | None:
    """How many repeats were held back, if this cause may be sent now; else None."""
    with _state_file(cause).open("a+") as state:
        fcntl.flock(state, fcntl.LOCK_EX)  # released when the file closes
        state.seek(0)
        seen = json.loads(state.read() or "{}")
        now = time.time()
        if now - seen.get("sent", 0.0) < repeat_after:
            seen["held_back"] = seen.get("held_back", 0) + 1
            held_back = None
        else:
            held_back = seen.get("held_back", 0)
            seen = {"sent": now, "held_back": 0}
        state.seek(0)
        state.truncate()
        state.write(json.dumps(seen))
    return held_back


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
