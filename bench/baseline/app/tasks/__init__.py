# Glue: the seed's `autodiscover_tasks(["app.tasks"])` looks for `app.tasks.tasks`,
# but its task lives in `app/tasks/orders.py`; without this import the worker
# rejects every message as an unregistered task.
from app.tasks import orders

__all__ = ["orders"]
