"""Durable tasks: saved with the caller's data, published after the commit, run once.

- `@durable_task(name=...)` declares one (durable/task.py); its body gets a Session.
- `task.enqueue(session, *args)` adds it to the caller's transaction (durable/enqueue.py).
- Its `TaskRecord` (table `task_records`) is the source of truth for its state.
- The API's Idempotency-Key support: durable/idempotency.py.

See the README's "Adding a durable task".
"""

from .dispatcher import BacklogFullError
from .models import TaskRecord, TaskRecordStatus
from .task import DurableTask, durable_task

__all__ = ["BacklogFullError", "DurableTask", "TaskRecord", "TaskRecordStatus", "durable_task"]
