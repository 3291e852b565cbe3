"""What the durable layer announces, for metrics and anything else that wants to listen.

Celery-style signals: `signal.connect(handler)`; the layer calls `signal.send(...)`.
"""

from celery.utils.dispatch import Signal

# sender: the task name; outcome: "published" (the broker has it), "deferred" (saved; the relay
# publishes it later) or "rejected" (not saved: the caller got a 503).
enqueue_outcome = Signal(name="enqueue_outcome", providing_args=["outcome"])
# One relay round: `republished` records published again, `dead` records given up as poison.
relay_round = Signal(name="relay_round", providing_args=["republished", "dead"])
# sender: the task name; a record marked dead (never run again; needs a human).
task_dead = Signal(name="task_dead", providing_args=["task_id"])
