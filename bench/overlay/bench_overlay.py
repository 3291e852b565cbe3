"""The service's own Celery app, with a no-op task and optional config overrides.

Put this folder and the service's project on PYTHONPATH. BENCH_CELERY_APP names the
service's Celery app as `module:attribute` (default `app.core.celery:celery_app`);
BENCH_CELERY_CONF, a JSON object, overrides Celery settings (to measure one tuning
undone at a time without editing the service). Then:

- `celery -A bench_overlay worker ...` runs the service's worker (it finds `app`);
- `uvicorn bench_overlay_asgi:app` serves the service's API with the same overrides;
- `python -m bench_overlay COUNT` publishes COUNT no-op tasks (the engine's ceiling).
"""

import importlib
import json
import os
import sys
from typing import Any


def _load() -> Any:
    spec = os.environ.get("BENCH_CELERY_APP", "app.core.celery:celery_app")
    module, _, attr = spec.partition(":")
    celery_app = getattr(importlib.import_module(module), attr or "celery_app")
    overrides = json.loads(os.environ.get("BENCH_CELERY_CONF") or "{}")
    if overrides:
        celery_app.conf.update(overrides)
    return celery_app


app: Any = _load()


def noop() -> None:
    return None


noop_task: Any = app.task(name="bench.noop")(noop)


def publish(count: int) -> None:
    """Publish `count` no-op messages over one producer connection."""
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            noop_task.apply_async(producer=producer)


if __name__ == "__main__":
    publish(int(sys.argv[1]))
