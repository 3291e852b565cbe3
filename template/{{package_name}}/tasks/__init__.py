"""Celery tasks. `autodiscover_tasks` imports this package, and this package imports every
module in it: a new task module needs no registration anywhere."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
