"""Logging for API and worker: one JSON object per line, with the task id inside tasks."""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from celery import current_task

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged too.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


_HANDLER_NAME = "service"
# Uvicorn configures these loggers with its own plain-text handlers when it starts.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.access")
# The arguments of uvicorn's access log line, logged as fields.
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status_code")


class TaskContextFilter(logging.Filter):
    """Adds `task_id` and `task_name` to records emitted while a Celery task runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(current_task, "request", None)
        task_id = getattr(request, "id", None)
        if task_id and not hasattr(record, "task_id"):
            record.task_id = task_id
            record.task_name = getattr(current_task, "name", None)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
        )
        args = record.args
        if (
            record.name == "uvicorn.access"
            and isinstance(args, tuple)
            and len(args) == len(_ACCESS_FIELDS)
        ):
            entry.update(zip(_ACCESS_FIELDS, args, strict=True))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, json_format: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TaskContextFilter())
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler, so configuring twice (API, then worker) logs once.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != _HANDLER_NAME]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Route uvicorn's access and error lines through this handler too (JSON like the rest).
    # A logger without handlers is left alone: that is uvicorn's --no-access-log.
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        if uvicorn_logger.handlers:
            uvicorn_logger.handlers.clear()
            uvicorn_logger.propagate = True
