"""The service's ASGI app after bench_overlay applied its Celery overrides.

BENCH_ASGI_APP names it as `module:attribute` (default `app.main:app`).
"""

import importlib
import os
from typing import Any

import bench_overlay

_spec = os.environ.get("BENCH_ASGI_APP", "app.main:app")
_module, _, _attr = _spec.partition(":")

celery_app: Any = bench_overlay.app
app: Any = getattr(importlib.import_module(_module), _attr or "app")
