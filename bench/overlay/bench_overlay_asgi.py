"""The service's ASGI app after bench_overlay applied its Celery overrides.

BENCH_ASGI_APP names it as `module:attribute` (default `app.main:app`). BENCH_DEFAULT_GC=1
leaves Python's garbage collector as it is (the service's `tune_gc()` is not called).
"""

import importlib
import os
from typing import Any

import bench_overlay

_spec = os.environ.get("BENCH_ASGI_APP", "app.main:app")
_module, _, _attr = _spec.partition(":")

celery_app: Any = bench_overlay.app
_app_module: Any = importlib.import_module(_module)
if os.environ.get("BENCH_DEFAULT_GC") == "1":
    _app_module.tune_gc = lambda: None  # looked up by the lifespan when it runs
app: Any = getattr(_app_module, _attr or "app")
